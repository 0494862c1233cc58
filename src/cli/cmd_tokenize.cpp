// lorafit tokenize: run a model's tokenizer on text.
//   lorafit tokenize --tokenizer DIR --file F --json     -> [1,2,3]   (scripts rely on this form)
//   lorafit tokenize --tokenizer DIR --text "..." [--pieces]
//   lorafit tokenize --tokenizer DIR --count data.jsonl  -> records, total, min/mean/p50/p95/max
//   lorafit tokenize --tokenizer DIR --chat messages.json [--add_generation_prompt] [--json]
// Ids never include BOS/EOS unless --add_special_tokens (the post-processor's template).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "cli/command.h"
#include "formats/json_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#include "util/error.h"

namespace lorafit::cli {

namespace {

using json = nlohmann::json;

struct TokenizeOptions {
  std::string tokenizer, file, text, count, chat;
  bool json = false, pieces = false, no_parse_special = false, add_special = false, add_generation_prompt = false;
  int threads = 0;
  std::vector<std::string> template_vars;
};

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t k = 0; k < ids.size(); ++k) out += (k ? "," : "") + std::to_string(ids[k]);
  return out + "]";
}

// Token statistics of a JSONL dataset: per record, the tokens of input + output when both
// are strings, else of every top-level string field.
void run_count(const Tokenizer& tok, const TokenizeOptions& o) {
  const std::string data = read_file(o.count);
  std::vector<std::string> texts;
  std::vector<size_t> owner;  // texts[i] belongs to record owner[i]
  size_t n_records = 0, line_no = 0;
  for (size_t pos = 0; pos < data.size();) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) nl = data.size();
    const std::string_view line(data.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    json rec;
    try {
      rec = parse_json(line, "");
    } catch (const Error& e) {
      throw Error("{}:{}: {}; expected one JSON record per line", o.count, line_no, e.what());
    }
    if (!rec.is_object()) throw Error("{}:{}: expected a JSON object per line", o.count, line_no);
    if (rec.contains("input") && rec["input"].is_string() && rec.contains("output") && rec["output"].is_string()) {
      texts.push_back(rec["input"]), owner.push_back(n_records);
      texts.push_back(rec["output"]), owner.push_back(n_records);
    } else {
      for (auto it = rec.begin(); it != rec.end(); ++it)
        if (it.value().is_string()) texts.push_back(it.value().get<std::string>()), owner.push_back(n_records);
    }
    ++n_records;
  }
  if (n_records == 0) throw Error("{}: no records", o.count);
  const auto ids = tok.encode_batch(texts, !o.no_parse_special, o.threads);
  std::vector<size_t> per(n_records, 0);
  for (size_t k = 0; k < ids.size(); ++k) per[owner[k]] += ids[k].size();
  const size_t total = std::accumulate(per.begin(), per.end(), size_t{0});
  std::vector<size_t> sorted = per;
  std::sort(sorted.begin(), sorted.end());
  // Nearest-rank percentiles.
  auto pct = [&](double p) { return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * (sorted.size() - 1) + 0.5))]; };
  const double mean = static_cast<double>(total) / static_cast<double>(n_records);
  if (o.json) {
    std::printf("%s\n", json{{"records", n_records}, {"total_tokens", total}, {"min", sorted.front()}, {"mean", mean},
                             {"p50", pct(0.5)}, {"p95", pct(0.95)}, {"max", sorted.back()}}.dump().c_str());
  } else {
    std::printf("records       %zu\ntotal tokens  %zu\nmin           %zu\nmean          %.1f\np50           %zu\n"
                "p95           %zu\nmax           %zu\n",
                n_records, total, sorted.front(), mean, pct(0.5), pct(0.95), sorted.back());
  }
}

void run_tokenize(const TokenizeOptions& o) {
  const int sources = !o.file.empty() + !o.text.empty() + !o.count.empty() + !o.chat.empty();
  if (sources != 1) throw Error("tokenize: give exactly one of --file, --text, --count or --chat");
  const Tokenizer tok = Tokenizer::load(o.tokenizer);
  if (!o.count.empty()) return run_count(tok, o);
  std::string text;
  if (!o.chat.empty()) {
    // Render the messages through the folder's own chat template (tokenizer_config.json),
    // then tokenize the rendered text like --file does.
    nlohmann::ordered_json doc = parse_json_ordered(read_file(o.chat), o.chat);
    if (doc.is_object() && doc.contains("messages")) doc = doc["messages"];
    if (!doc.is_array()) throw Error("{}: expected a JSON array of messages or an object with \"messages\"", o.chat);
    const ChatTemplate tmpl = ChatTemplate::from_config(TokenizerConfig::load(o.tokenizer));
    ChatOptions opts;
    opts.add_generation_prompt = o.add_generation_prompt;
    for (const std::string& kv : o.template_vars) {  // KEY=VALUE, VALUE as JSON when it parses
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw Error("--template_var '{}': expected KEY=VALUE, e.g. enable_thinking=false", kv);
      const std::string value = kv.substr(eq + 1);
      nlohmann::ordered_json v = nlohmann::ordered_json::parse(value, nullptr, false);
      opts.extra[kv.substr(0, eq)] = v.is_discarded() ? nlohmann::ordered_json(value) : v;
    }
    text = tmpl.render(doc, opts);
    if (!o.json && !o.pieces) std::printf("%s\n----\n", text.c_str());
  } else {
    text = !o.file.empty() ? read_file(o.file) : o.text;
  }
  std::vector<int32_t> ids = tok.encode(text, !o.no_parse_special);
  if (o.add_special) ids = tok.post_process(std::move(ids));
  if (o.pieces) {
    if (o.json) {
      json arr = json::array();
      for (int32_t id : ids) arr.push_back({{"id", id}, {"piece", tok.id_to_token(id)}});
      std::printf("%s\n", arr.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    } else {
      for (int32_t id : ids)
        std::printf("%d\t%s\n", id, json(tok.id_to_token(id)).dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    }
    return;
  }
  if (o.json) {
    std::printf("%s\n", ids_json(ids).c_str());
  } else {
    std::string line;
    for (size_t k = 0; k < ids.size(); ++k) line += (k ? " " : "") + std::to_string(ids[k]);
    std::printf("%s\n%zu tokens\n", line.c_str(), ids.size());
  }
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<TokenizeOptions>();
  sub.add_option("--tokenizer", o->tokenizer, "folder with tokenizer.json (or vocab.json + merges.txt), or the file")
      ->required();
  sub.add_option("--file", o->file, "tokenize the whole content of this file");
  sub.add_option("--text", o->text, "tokenize this text");
  sub.add_option("--count", o->count, "token statistics of a JSONL dataset (input+output, else every string field)");
  sub.add_option("--chat", o->chat, "render a chat (messages JSON) with the chat template, then tokenize");
  sub.add_option("--template_var", o->template_vars, "with --chat: KEY=VALUE passed to the template (e.g. enable_thinking=false)");
  sub.add_flag("--add_generation_prompt", o->add_generation_prompt, "with --chat: end with the assistant header");
  sub.add_flag("--json", o->json, "print ids as a JSON array [1,2,3] (with --count: a JSON object)");
  sub.add_flag("--pieces", o->pieces, "print each token's id and piece");
  sub.add_flag("--no_parse_special", o->no_parse_special, "treat special tokens written in the text as plain text");
  sub.add_flag("--add_special_tokens", o->add_special, "add what the post-processor adds (e.g. BOS for Llama 2)");
  sub.add_option("--threads", o->threads, "threads for --count (0: all cores)");
  sub.callback([o] { run_tokenize(*o); });
}

const bool registered = register_command("tokenize", "tokenize text with a model's tokenizer", setup);

}  // namespace

}  // namespace lorafit::cli
