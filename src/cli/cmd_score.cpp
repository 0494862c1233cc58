// lorafit score: next-token negative log-likelihoods of a token sequence under a model.
//   lorafit score --model DIR --input_ids 1,410,469,347 [--json] [--dump acts.safetensors]
//   lorafit score --model DIR --text "Once upon a time" (the folder's tokenizer; BOS prepended
//   when tokenizer_config.json says add_bos_token)
// token_nll[i] = −log p(ids[i+1] | ids[0..i]) (n − 1 entries), mean_nll their mean.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cli/command.h"
#include "cli/quant_flags.h"
#include "lora/lora_adapter.h"
#include "lora/lora_params.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#include "util/error.h"
#include "util/parse.h"

namespace lorafit::cli {

namespace {

struct ScoreOptions {
  std::string model, input_ids, text, dump, adapter, device = "cpu", dtype = "auto";
  bool json = false;
  QuantFlags quant;
};

// --text through the model folder's tokenizer, with BOS first when add_bos_token is set.
std::vector<int32_t> encode_text(const fs::path& dir, const std::string& text) {
  if (!fs::exists(dir / "tokenizer.json"))
    throw Error("--text: {} has no tokenizer.json; give token ids with --input_ids instead", dir.string());
  const Tokenizer tok = Tokenizer::load(dir);
  std::vector<int32_t> ids;
  if (fs::exists(dir / "tokenizer_config.json")) {
    const TokenizerConfig tc = TokenizerConfig::load(dir);
    if (tc.add_bos_token && tc.bos_token) {
      const auto bos = tok.token_to_id(*tc.bos_token);
      if (!bos) throw Error("{}: bos_token \"{}\" is not in the vocabulary", tc.source, *tc.bos_token);
      ids.push_back(*bos);
    }
  }
  const std::vector<int32_t> body = tok.encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

void run_score(const ScoreOptions& o) {
  if (o.input_ids.empty() == o.text.empty())
    throw Error("score: give the tokens to score with exactly one of --input_ids 1,410,469,347 or --text \"...\"");
  const std::vector<int32_t> ids = o.text.empty() ? parse_token_ids(o.input_ids, "--input_ids") : encode_text(o.model, o.text);
  const char* what = o.text.empty() ? "--input_ids" : "--text";
  if (ids.size() < 2)
    throw Error("{}: {} token(s); scoring needs at least 2 (the first token has no prediction)", what, ids.size());
  auto be = make_backend(o.device);
  const DType act = inference_act_dtype(o.dtype, o.device, fs::path(o.model));
  Model model(*be, o.model, act, quant_config(o.quant));
  if (const std::string n = quantization_bit_note(model.config(), quant_config(o.quant)); !n.empty())
    fmt::print(stderr, "{}\n", n);
  if (model.weights_rounded())
    fmt::print(stderr, "note: --dtype bf16 with {} weights: they were rounded to bf16 once at load\n",
               dtype_name(model.checkpoint_dtype()));
  model.check_input(ids, static_cast<int64_t>(ids.size()), what);

  std::unique_ptr<LoraParams> lora;  // --adapter: a PEFT adapter folder applied unmerged
  if (!o.adapter.empty()) {
    lora = std::make_unique<LoraParams>(*be, load_peft_adapter_config(o.adapter), model.config());
    load_peft_adapter_weights(o.adapter, *lora);
    lora->set_dropout(0.0f);
  }
  ActivationArena acts(*be, model.config(), 1, static_cast<int64_t>(ids.size()), model.config().num_layers,
                       lora.get(), false, model.act_dtype());
  acts.set_tokens(ids);
  model.forward(acts, lora.get());
  if (!o.dump.empty()) acts.save(o.dump);  // every named intermediate, layer by layer
  const std::vector<double> nll = token_nll_from_hidden(model, acts.hidden(), ids);
  const double mean = std::accumulate(nll.begin(), nll.end(), 0.0) / static_cast<double>(nll.size());

  if (o.json) {
    std::string s = fmt::format("{{\"mean_nll\": {:.9g}, \"token_nll\": [", mean);
    for (size_t i = 0; i < nll.size(); ++i) s += fmt::format("{}{:.9g}", i ? ", " : "", nll[i]);
    s += "]}";
    std::printf("%s\n", s.c_str());
    return;
  }
  const ModelConfig& c = model.config();
  std::printf("model %s (%s, %d layers, hidden %d, vocab %d, %s weights, %s activations)\n", o.model.c_str(),
              c.model_type.c_str(), c.num_layers, c.hidden_size, c.vocab_size,
              std::string(dtype_name(model.weights().dtype())).c_str(), std::string(dtype_name(act)).c_str());
  std::printf("%6s %10s %10s %12s %10s\n", "pos", "token", "next", "nll", "p(next)");
  for (size_t i = 0; i < nll.size(); ++i)
    std::printf("%6zu %10d %10d %12.6f %10.6f\n", i, ids[i], ids[i + 1], nll[i], std::exp(-nll[i]));
  std::printf("mean NLL %.6f nats over %zu predicted tokens (perplexity %.4f)\n", mean, nll.size(), std::exp(mean));
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<ScoreOptions>();
  sub.add_option("--model,--model_name_or_path", o->model, "Hugging Face model folder (config.json + model.safetensors)")->required();
  sub.add_option("--input_ids", o->input_ids, "comma-separated token ids to score, e.g. 1,410,469,347");
  sub.add_option("--text", o->text, "text to score, tokenized with the model folder's tokenizer");
  sub.add_flag("--json", o->json, "print {\"mean_nll\": x, \"token_nll\": [...]} instead of a table");
  sub.add_option("--adapter,--adapter_name_or_path", o->adapter, "PEFT adapter folder (adapter_config.json + adapter_model.safetensors)");
  sub.add_option("--dump", o->dump, "also write every named intermediate of the forward to this .safetensors file");
  sub.add_option("--device", o->device, "cpu or cuda")->capture_default_str();
  add_quant_flags(sub, o->quant);
  sub.add_option("--dtype", o->dtype, "activations: auto (the checkpoint's dtype on cuda, f32 on cpu), bf16 or f32")
      ->capture_default_str();
  sub.callback([o] { run_score(*o); });
}

const bool registered = register_command("score", "next-token negative log-likelihood of a token sequence", setup);

}  // namespace

}  // namespace lorafit::cli
