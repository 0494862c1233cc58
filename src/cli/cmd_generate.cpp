// lorafit generate: one generation for scripts.
//   lorafit generate --model DIR --prompt "..." [--raw] [--system TEXT] [--json]
//   lorafit generate --model DIR --messages chat.json        ([{"role": ..., "content": ...}, ...])
//   lorafit generate --model DIR --input_ids 1,2,3 --max_new_tokens 20 --do_sample false --json
// --json prints exactly {"output_ids": [...], "text": "..."}: the generated ids only (the eos
// id that ended it included, as transformers' generate returns it) and their text with
// special tokens skipped. Without --json the text streams to stdout as it is decoded.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "formats/json_util.h"
#include "cli/gen_flags.h"
#include "util/parse.h"
#include "util/signals.h"

namespace lorafit::cli {

namespace {

struct GenerateOptions {
  GenFlags f;
  std::string prompt, messages, input_ids;
  bool json = false;
};

void run_generate(GenerateOptions& o) {
  const int given = !o.prompt.empty() + !o.messages.empty() + !o.input_ids.empty();
  if (given != 1)
    throw Error("generate: give the input with exactly one of --prompt TEXT, --messages FILE or --input_ids 1,2,3");
  if (!o.input_ids.empty()) o.f.inf.raw = true;  // ids need no template
  const std::unique_ptr<Inference> loaded = load_inference(o.f);
  Inference& inf = *loaded;
  const GenerateSettings s = resolve_settings(inf, o.f);

  std::vector<int32_t> prompt;
  if (!o.input_ids.empty()) {
    prompt = parse_token_ids(o.input_ids, "--input_ids");
  } else if (!o.prompt.empty()) {
    prompt = inf.encode_prompt(o.prompt, o.f.system);
  } else {
    const nlohmann::ordered_json m = parse_json_ordered(read_file(o.messages), "--messages " + o.messages);
    prompt = inf.encode_messages(m, "--messages " + o.messages);
  }
  const int64_t ctx = context_length(inf.model().config());
  if (static_cast<int64_t>(prompt.size()) >= ctx)
    throw Error("the prompt has {} tokens, but the model's context is {} (max_position_embeddings in config.json); "
                "shorten the prompt",
                prompt.size(), ctx);
  const int64_t capacity = std::min<int64_t>(ctx, static_cast<int64_t>(prompt.size()) + s.max_new_tokens);
  Generator gen(inf.model(), capacity, inf.default_adapter());

  const Tokenizer* tok = inf.tokenizer();  // null: a folder without tokenizer.json (--input_ids)
  std::unique_ptr<StreamDecoder> dec;
  InterruptScope ctrl_c;
  const GenerateResult r = gen.generate(prompt, s, [&](int32_t id) {
    if (!o.json && tok) {
      if (!dec) dec = std::make_unique<StreamDecoder>(*tok, true);
      const std::string piece = dec->push(id);
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
    return !interrupt_requested();
  });
  if (!o.json) {
    if (dec) std::fputs(dec->flush().c_str(), stdout);
    if (!tok)  // no tokenizer: the ids are all there is
      for (size_t i = 0; i < r.ids.size(); ++i) std::printf("%s%d", i ? "," : "", r.ids[i]);
    std::printf("\n");
    return;
  }
  std::string out = "{\"output_ids\": [";
  for (size_t i = 0; i < r.ids.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", r.ids[i]);
  const std::string text = tok ? tok->decode(r.ids, /*skip_special=*/true) : "";
  out += "], \"text\": " + nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "}";
  std::printf("%s\n", out.c_str());
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<GenerateOptions>();
  add_gen_flags(sub, o->f);
  sub.add_option("--prompt", o->prompt, "user message, rendered through the chat template (unless --raw)");
  sub.add_option("--messages", o->messages, "JSON file with a list of {\"role\", \"content\"} messages");
  sub.add_option("--input_ids", o->input_ids, "comma-separated prompt token ids, e.g. 1,2,3 (no template)");
  sub.add_flag("--json", o->json, "print {\"output_ids\": [...], \"text\": \"...\"} (the generated part only)");
  sub.callback([o] { run_generate(*o); });
}

const bool registered = register_command("generate", "generate a continuation or an answer (for scripts)", setup);

}  // namespace

}  // namespace lorafit::cli
