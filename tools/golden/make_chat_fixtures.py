"""Chat-template golden renderings from transformers 4.46 for tests/unit/test_tokenizer_chat*.cpp.

Renders a set of conversations with `tokenizer.apply_chat_template(..., tokenize=False)`:
the Qwen2.5 and Qwen3 tokenizers from tests/data/qwen-tokenizer/ with their own templates,
and the Llama 3, Llama 3.1 and Mistral v0.1 templates from tests/data/chat-templates/
(passed as `chat_template=` to the Qwen2.5 tokenizer object, with those models' bos/eos as
keyword arguments, which override the tokenizer's own special tokens in the template).
Template errors (raise_exception) are recorded with their message.

It also renders small Jinja snippets (JINJA_CASES) with transformers' own compiled
environment (`_compile_jinja_template`: trim_blocks, lstrip_blocks, loopcontrols, its tojson
and raise_exception) to pin the interpreter's semantics; errors keep their line number.

Regenerate (from the repository root):
    /opt/gv/bin/python tools/golden/make_chat_fixtures.py
writes tests/fixtures/chat/chat_renderings.json and tests/fixtures/chat/jinja_cases.json.
"""
import json
import os
import sys

import transformers
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import _compile_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "tests", "fixtures", "chat", "chat_renderings.json")
JINJA_OUT = os.path.join(ROOT, "tests", "fixtures", "chat", "jinja_cases.json")

CTX = {"d": {"b": 1, "a": [1, 2], "s": " x "}, "msgs": [{"role": "user", "content": "hi"},
       {"role": "assistant", "content": "yo"}, {"role": "tool", "content": "42"}], "n": None, "e": ""}
JINJA_CASES = [
    # whitespace control: trim_blocks, lstrip_blocks, -, +
    "{% if true %}\n  hello\n{% endif %}\nend",
    "  {% if true %}\n    x\n  {% endif %}\n",
    "a  {%- if true %} b {% endif -%}  \n c",
    "line\n    {# comment #}\nnext",
    "  {%+ if true %}x{% endif %}",
    "{% if true +%}\nx{% endif %}",
    "{{ 'a' }}  \n  {{ 'b' -}}  \n  c",
    "x {% if true %}y{% endif %}\n z",
    "{%- for m in msgs %}\n    {{- m.role }}\n{%- endfor %}",
    "{% for m in msgs %}\n  {{ m.role }}\n{% endfor %}",
    # loops
    "{% for x in [1, 2, 3, 4] if x != 2 %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.length }}/{{ loop.revindex }}:{{ x }}{% if loop.first %}F{% endif %}{% if not loop.last %},{% endif %}{% endfor %}",
    "{% for x in [] %}a{% else %}empty{% endfor %}",
    "{% for x in [1, 2, 3, 4, 5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for k, v in d | items %}{{ k }};{% endfor %}",
    "{% for m in msgs[::-1] %}{{ loop.index0 }}{{ m.role }}{% endfor %}",
    "{% for x in [1, 2] %}{{ loop.previtem is defined }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{% for c in 'héllo' %}{{ c }}|{% endfor %}",
    # scoping and namespace
    "{% set ns = namespace(a=1, found=false) %}{% for x in [1, 2] %}{% set ns.a = ns.a + x %}{% endfor %}{{ ns.a }}{{ ns.found }}",
    "{% set y = 1 %}{% for x in [1] %}{% set y = 2 %}{{ y }}{% endfor %}{{ y }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}",
    "{% set msgs = msgs[1:] %}{{ msgs | length }}{{ msgs[0].role }}",
    "{% set x %}captured {{ 1 + 1 }}{% endset %}[{{ x }}]",
    "{% macro f(a, b='x') %}{{ a }}-{{ b }}{% endmacro %}{{ f(1) }} {{ f(1, b=2) }} {{ f(a=3) }}",
    # operators
    "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 2 ** 10 }} {{ 7.5 // 2 }}",
    "{{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 1 + 2.5 }} {{ -3 }} {{ 1 - 0.9 }}",
    "{{ 1 < 2 }} {{ 'b' > 'a' }} {{ 1 == 1.0 }} {{ 'abc' in 'xabcx' }} {{ 'k' in {'k': 1} }} {{ 3 not in [1, 2] }} {{ not 1 }}",
    "{{ 1 and 'x' }} {{ 0 or 'y' }} {{ none or false }} {{ '' and 'z' }}",
    "{{ 'yes' if 1 > 2 else 'no' }}[{{ 'a' if false }}]",
    "{{ 1 + 2 * 3 - 4 / 2 }} {{ (1 + 2) * 3 }} {{ 2 * 3 ~ 4 }} {{ 10 - 2 - 3 }}",
    # literals and printing
    "{{ [1, 'a', none, true, 1.5, {'k': 'v'}] }} {{ {'a': [1], \"b'\": 'it\\'s'} }} {{ none }} {{ true }} {{ 1e3 }} {{ 0.1 + 0.2 }} {{ 1e-7 }} {{ 1e20 }} {{ 12345678901234567.0 }}",
    "{{ '\\u00e9\\n\\t\\x41\\\\' }}|{{ \"it's\" }}|{{ 'a' 'b' }}",
    "{{ 'héllo'[::-1] }} {{ [1, 2, 3, 4][1:3] }} {{ 'abc'[-1] }} {{ [1, 2, 3][-2:] }} {{ 'hello'[1:4:2] }} {{ [1,2,3][5:] }}",
    # string methods
    "{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a-b-c'.rsplit('-', 1) }}",
    "{{ 'xxhixx'.strip('x') }} {{ '\\n\\nhi\\n'.lstrip('\\n') }}|{{ ' hi '.rstrip() }}|{{ '\u3000全角\u3000'.strip() }}|",
    "{{ 'hello'.startswith('he') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.endswith('lo') }} {{ 'hello'.replace('l', 'L', 1) }}",
    "{{ 'Hello World'.upper() }} {{ 'Hello World'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'hello'.find('l') }} {{ 'a{}b{}'.format(1, 2) }}",
    "{{ d.get('b') }} {{ d.get('zz', 'def') }} {{ d.get('zz') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d['a'][1] }} {{ d.a.0 }}",
    # filters
    "{{ d.s | trim }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ [1, 2] | length }}|{{ 'héllo' | length }}|{{ d | length }}|{{ 'x' | count }}",
    "{{ undefined_var | default('dflt') }}|{{ e | default('dflt') }}|{{ e | default('dflt', true) }}|{{ n | default('x') }}",
    "{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'abc' | first }} {{ [1, 2, 3] | join('-') }} {{ msgs | map(attribute='role') | join(',') }}",
    "{{ 'aXbX' | replace('X', '_') }} {{ 12 | string }} {{ '42' | int + 1 }} {{ 'x' | int }} {{ 3.9 | int }} {{ 'ab' | list }} {{ 'hello world' | capitalize }} {{ 'hello world' | title }}",
    "{{ msgs | selectattr('role', 'equalto', 'user') | list | length }} {{ msgs | rejectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | selectattr('role', 'eq', 'tool') | first }}",
    "{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | reverse | list }} {{ 'abc' | reverse }} {{ [1, 2, 2, 1] | unique | list }} {{ [1, 2, 3] | sum }} {{ [1, 5, 3] | max }} {{ -3 | abs }}",
    "{{ {'b': 1, 'a': [1, 2.5, none, true], 'c': {'x': 'é\"'}} | tojson }}",
    "{{ {'b': 1, 'a': [1, {}], 'e': []} | tojson(indent=2) }}",
    "{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ 'é' | tojson(ensure_ascii=true) }} {{ 'x' | tojson }} {{ none | tojson }}",
    "{{ d | items | list }} {{ d | dictsort }} {{ 'x' | safe }}",
    # tests
    "{{ x is defined }} {{ d is defined }} {{ x is undefined }} {{ n is none }} {{ 'a' is string }} {{ d is mapping }} {{ msgs is iterable }} {{ 'a' is iterable }} {{ x is iterable }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }}",
    "{{ 1 is equalto 1 }} {{ 'a' is eq 'b' }} {{ false is false }} {{ 0 is false }} {{ true is true }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }}",
    "{{ msgs[0].content is string and msgs[0].content is not mapping }} {{ d.missing is defined }} {{ d.missing is not defined }} {{ n is not none }}",
    # undefined behaviour
    "[{{ foo }}][{{ d.missing }}][{{ n }}][{{ msgs[10] }}][{{ foo | length }}][{% for x in foo %}x{% endfor %}][{{ not foo }}]",
    "{{ foo.bar }}",
    "{{ d.missing.x }}",
    "{{ foo + 'x' }}",
    "{{ 'x' + 1 }}",
    "{{ raise_exception('boom: ' ~ d.b) }}",
    # errors with line numbers
    "line1\n{% if %}\nx{% endif %}",
    "a\nb\n{% for x in %}{% endfor %}",
    "{% if true %}\n\nunclosed",
    "{{ 1 | nosuchfilter }}",
    "ok\n{% endfor %}",
    "x\n{{ 'unterminated }}",
    "{{ 1 is nosuchtest }}",
    "{% nosuchtag %}",
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "城市名, e.g. 北京"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "default": 1.5},
            },
            "required": ["city"],
        },
    },
}
LAW_TOOL = {
    "type": "function",
    "function": {
        "name": "search_law",
        "description": "Search the civil code \"民法典\" by article",
        "parameters": {"type": "object", "properties": {"article": {"type": "integer"}}, "required": ["article"]},
    },
}

SYS = {"role": "system", "content": "你是一个法律专家，请根据用户的问题给出专业的回答"}
U1 = {"role": "user", "content": "借款到期不还怎么办？"}
A1 = {"role": "assistant", "content": "可以先协商，协商不成可向法院起诉。"}
U2 = {"role": "user", "content": "诉讼时效是多久？"}
A2 = {"role": "assistant", "content": "一般为三年，自知道或应当知道权利受到损害之日起计算。"}
UNI = {"role": "user", "content": "  Emoji 😀, combining e\u0301, tab\there,\nnewline and trailing spaces  "}
AUNI = {"role": "assistant", "content": "\n回答：Ünïcödé ✓ \\ \"quoted\" 'single'\n"}

TOOL_CALL = {"role": "assistant", "content": "", "tool_calls": [
    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "北京", "unit": "celsius"}}}]}
TOOL_CALL_TEXT = {"role": "assistant", "content": "我来查一下。", "tool_calls": [
    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "上海"}}},
    {"type": "function", "function": {"name": "search_law", "arguments": "{\"article\": 464}"}}]}
TOOL_RESP = {"role": "tool", "content": "{\"temperature\": 22, \"unit\": \"celsius\"}"}
TOOL_RESP2 = {"role": "tool", "content": "第四百六十四条 合同是民事主体之间设立、变更、终止民事法律关系的协议。"}
U_WEATHER = {"role": "user", "content": "北京天气怎么样？"}
A_WEATHER = {"role": "assistant", "content": "北京现在22摄氏度。"}

THINK_LAST = {"role": "assistant", "content": "<think>\n先回忆民法典。\n</think>\n\n合同是协议。"}
THINK_EARLY = {"role": "assistant", "content": "<think>考虑时效</think>三年。"}
REASONING = {"role": "assistant", "content": "三年。", "reasoning_content": "\n查第188条\n"}

CONVERSATIONS = {
    "user_only": [U1],
    "system_user_assistant": [SYS, U1, A1],
    "multi_turn_system": [SYS, U1, A1, U2, A2],
    "multi_turn_no_system": [U1, A1, U2, A2],
    "multi_turn_open": [U1, A1, U2],
    "unicode": [UNI, AUNI],
}
TOOL_CONVERSATIONS = {
    "tools_user_only": [U_WEATHER],
    "tools_system_call_response": [SYS, U_WEATHER, TOOL_CALL, TOOL_RESP, A_WEATHER],
    "tools_two_calls_two_responses": [U_WEATHER, TOOL_CALL_TEXT, TOOL_RESP, TOOL_RESP2, A_WEATHER],
}
QWEN3_CONVERSATIONS = {
    "think_last_turn": [U1, THINK_LAST],
    "think_early_turn": [U1, THINK_EARLY, U2, A2],
    "reasoning_content": [U1, REASONING],
    "think_after_tool": [U_WEATHER, TOOL_CALL, TOOL_RESP, THINK_LAST],
}

LLAMA = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
MISTRAL = {"bos_token": "<s>", "eos_token": "</s>"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def main():
    assert transformers.__version__ == "4.46.3", transformers.__version__
    qwen25 = AutoTokenizer.from_pretrained(os.path.join(DATA, "qwen-tokenizer", "qwen2.5"))
    qwen3 = AutoTokenizer.from_pretrained(os.path.join(DATA, "qwen-tokenizer", "qwen3"))
    templates = {
        "llama3": read(os.path.join(DATA, "chat-templates", "llama3-8b-instruct.jinja")),
        "llama3.1": read(os.path.join(DATA, "chat-templates", "llama3.1-8b-instruct.jinja")),
        "mistral": read(os.path.join(DATA, "chat-templates", "mistral-7b-instruct-v0.1.jinja")),
    }
    cases = []

    def render(template, name, messages, gen, tools=None, **kwargs):
        case = {"template": template, "name": name, "messages": messages, "add_generation_prompt": gen}
        if tools is not None:
            case["tools"] = tools
        if kwargs:
            case["kwargs"] = kwargs
        try:
            if template == "qwen2.5":
                text = qwen25.apply_chat_template(messages, tools=tools, add_generation_prompt=gen,
                                                  tokenize=False, **kwargs)
            elif template == "qwen3":
                text = qwen3.apply_chat_template(messages, tools=tools, add_generation_prompt=gen,
                                                 tokenize=False, **kwargs)
            else:
                special = MISTRAL if template == "mistral" else LLAMA
                text = qwen25.apply_chat_template(messages, tools=tools, add_generation_prompt=gen, tokenize=False,
                                                  chat_template=templates[template], **special, **kwargs)
            case["rendered"] = text
        except Exception as e:  # jinja2 TemplateError from raise_exception, UndefinedError, ...
            case["error"] = str(e)
        cases.append(case)

    for template in ["qwen2.5", "qwen3", "llama3", "llama3.1", "mistral"]:
        for name, msgs in CONVERSATIONS.items():
            for gen in (False, True):
                render(template, f"{name}{'_gen' if gen else ''}", msgs, gen)
    for template in ["qwen2.5", "qwen3", "llama3.1"]:
        for name, msgs in TOOL_CONVERSATIONS.items():
            tools = [WEATHER_TOOL, LAW_TOOL]
            render(template, name, msgs, name == "tools_user_only", tools=tools)
    for name, msgs in QWEN3_CONVERSATIONS.items():
        render("qwen3", name, msgs, False)
    render("qwen3", "enable_thinking_false_gen", [U1], True, enable_thinking=False)
    render("qwen3", "enable_thinking_true_gen", [U1], True, enable_thinking=True)
    render("qwen3", "enable_thinking_false_multi", [U1, A1, U2], True, enable_thinking=False)
    render("llama3.1", "tools_not_in_user_message", [U_WEATHER], True, tools=[WEATHER_TOOL],
           tools_in_user_message=False)
    render("llama3.1", "custom_date", [SYS, U1], True, date_string="01 Jan 2025")
    # Error cases: the templates raise.
    render("mistral", "error_system_role", [SYS, U1, A1], False)
    render("mistral", "error_not_alternating", [U1, U2], False)
    render("llama3.1", "error_two_tool_calls", [U_WEATHER, TOOL_CALL_TEXT], False, tools=[WEATHER_TOOL])
    render("llama3.1", "error_tools_no_messages_after_system", [SYS], False, tools=[WEATHER_TOOL])

    jinja_cases = []
    for src in JINJA_CASES:
        case = {"template": src}
        try:
            case["rendered"] = _compile_jinja_template(src).render(**CTX)
        except Exception as e:
            case["error"] = str(e)
            case["error_type"] = type(e).__name__
            if getattr(e, "lineno", None) is not None:
                case["lineno"] = e.lineno
        jinja_cases.append(case)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(JINJA_OUT, "w", encoding="utf-8") as f:
        json.dump({"generated_by": "tools/golden/make_chat_fixtures.py with transformers " + transformers.__version__,
                   "context": CTX, "cases": jinja_cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    doc = {
        "generated_by": "tools/golden/make_chat_fixtures.py with transformers " + transformers.__version__,
        "special_tokens": {"llama3": LLAMA, "llama3.1": LLAMA, "mistral": MISTRAL},
        "cases": cases,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
