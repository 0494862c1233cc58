#include "formats/json_util.h"
#include "export/modelfile.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "util/error.h"

namespace lorafit {

namespace {

// Marker contents: control characters no template adds on its own.
const char* const kSys = "\x01" "S\x01";
const char* const kU1 = "\x01" "U1\x01";
const char* const kA1 = "\x01" "A1\x01";
const char* const kU2 = "\x01" "U2\x01";

// The texts between the markers, in order (markers.size() + 1 pieces).
std::vector<std::string> split_at(const std::string& text, const std::vector<const char*>& markers,
                                  const std::string& name) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (const char* m : markers) {
    const size_t at = text.find(m, pos);
    if (at == std::string::npos)
      throw Error("{}: the rendering does not contain each message's content verbatim; no Ollama TEMPLATE can "
                  "be derived",
                  name);
    out.push_back(text.substr(pos, at - pos));
    pos = at + std::strlen(m);
  }
  out.push_back(text.substr(pos));
  return out;
}

std::string common_suffix(const std::vector<std::string>& v) {
  std::string s = v[0];
  for (const std::string& t : v) {
    size_t n = 0;
    while (n < s.size() && n < t.size() && s[s.size() - 1 - n] == t[t.size() - 1 - n]) ++n;
    s = s.substr(s.size() - n);
  }
  return s;
}

std::string drop_suffix(const std::string& s, const std::string& suf) { return s.substr(0, s.size() - suf.size()); }

nlohmann::ordered_json msgs(std::initializer_list<std::pair<const char*, const char*>> m) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const auto& [role, content] : m) a.push_back({{"role", role}, {"content", content}});
  return a;
}

}  // namespace

ChatParts chat_parts(const ChatTemplate& tmpl, const std::string& strip_bos, const std::vector<std::string>& stops) {
  ChatOptions gen;
  gen.add_generation_prompt = true;
  std::string r0 = tmpl.render(msgs({{"user", kU1}, {"assistant", kA1}, {"user", kU2}}), gen);
  auto strip = [&](std::string& r) {
    if (!strip_bos.empty() && r.compare(0, strip_bos.size(), strip_bos) == 0) r = r.substr(strip_bos.size());
  };
  strip(r0);
  const auto q = split_at(r0, {kU1, kA1, kU2}, tmpl.name());  // q0 U1 q1 A1 q2 U2 q3
  if (q[1] != q[3])
    throw Error("{}: the text after a user turn differs from the generation prompt; no plain Ollama TEMPLATE",
                tmpl.name());
  ChatParts p;
  std::vector<std::string> starts = {q[0], q[2]};
  std::vector<std::string> s;
  try {
    std::string r1 = tmpl.render(msgs({{"system", kSys}, {"user", kU1}, {"assistant", kA1}, {"user", kU2}}), gen);
    strip(r1);
    s = split_at(r1, {kSys, kU1, kA1, kU2}, tmpl.name());  // s0 S s1 U1 s2 A1 s3 U2 s4
    if (s[2] != q[1] || s[3] != q[2] || s[4] != q[3])
      throw Error("{}: turns render differently with a system message; no plain Ollama TEMPLATE", tmpl.name());
    p.system = true;
    starts.push_back(s[1]);
  } catch (const Error& e) {
    if (std::string(e.what()).find("no plain Ollama") != std::string::npos) throw;
    p.system = false;  // the template refuses a system message (e.g. Mistral v0.1)
  }
  p.user_open = common_suffix(starts);
  p.no_sys = drop_suffix(q[0], p.user_open);
  p.asst_close = drop_suffix(q[2], p.user_open);
  p.user_close = q[1];
  if (p.system) {
    p.sys_open = s[0];
    p.sys_close = drop_suffix(s[1], p.user_open);
  }
  // Every user_open follows a turn's end, so a leading end-of-turn token (plus the whitespace
  // after it, when the generation prompt has it too) belongs to the closing parts: same text,
  // readable template ("<|im_end|>\n" closes the assistant turn instead of opening the user's).
  for (const std::string& t : stops) {
    if (t.empty() || p.user_open.compare(0, t.size(), t) != 0 || p.user_close.compare(0, t.size(), t) != 0) continue;
    size_t n = t.size();
    while (n < p.user_open.size() && n < p.user_close.size() && p.user_open[n] == p.user_close[n] &&
           (p.user_open[n] == '\n' || p.user_open[n] == ' '))
      ++n;
    const std::string e = p.user_open.substr(0, n);
    p.user_open = p.user_open.substr(n);
    p.asst_close += e;
    p.no_sys += e;
    if (p.system) p.sys_close += e;
    break;
  }
  for (const std::string* t : {&p.sys_open, &p.sys_close, &p.no_sys, &p.user_open, &p.user_close, &p.asst_close})
    if (t->find("{{") != std::string::npos || t->find("\"\"\"") != std::string::npos)
      throw Error("{}: fixed text contains {{{{ or \"\"\"; no Ollama TEMPLATE written", tmpl.name());
  return p;
}

std::string render_chat_parts(const ChatParts& p, const std::string& system,
                              const std::vector<std::pair<std::string, std::string>>& messages) {
  std::string out = !system.empty() && p.system ? p.sys_open + system + p.sys_close : p.no_sys;
  for (const auto& [role, content] : messages) {
    if (role == "user") out += p.user_open + content + p.user_close;
    else if (role == "assistant") out += content + p.asst_close;
  }
  return out;
}

std::string ollama_template(const ChatParts& p) {
  std::string t;
  if (p.system) t += "{{ if .System }}" + p.sys_open + "{{ .System }}" + p.sys_close + "{{ else }}" + p.no_sys + "{{ end }}";
  else t += p.no_sys;
  t += "{{ range .Messages }}{{ if eq .Role \"user\" }}" + p.user_open + "{{ .Content }}" + p.user_close +
       "{{ else if eq .Role \"assistant\" }}{{ .Content }}" + p.asst_close + "{{ end }}{{ end }}";
  return t;
}

std::string modelfile_text(const std::string& from, const std::string& template_go,
                           const std::vector<std::string>& stops, const std::string& system) {
  auto quoted = [](const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  };
  std::string m = "# Ollama Modelfile written by lorafit export: ollama create NAME -f Modelfile\n";
  m += "FROM " + from + "\n";
  if (!template_go.empty()) m += "TEMPLATE \"\"\"" + template_go + "\"\"\"\n";
  for (const std::string& s : stops) m += "PARAMETER stop " + quoted(s) + "\n";
  if (!system.empty()) {
    if (system.find("\"\"\"") != std::string::npos) throw Error("the system prompt contains \"\"\"; Modelfile cannot hold it");
    m += "SYSTEM \"\"\"" + system + "\"\"\"\n";
  }
  return m;
}

std::string trained_system_prompt(const fs::path& adapter_dir) {
  const fs::path run = fs::absolute(adapter_dir).lexically_normal().parent_path();
  if (!fs::exists(run / "config.yaml") || !fs::exists(run / "config.json")) return "";
  try {
    const auto j = parse_json(read_file(run / "config.json"), (run / "config.json").string());
    const auto it = j.find("system");
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace lorafit
