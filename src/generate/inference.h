// Everything `lorafit generate` and `lorafit chat` load: the model (the --model folder, or the
// base recorded by the first adapter), its adapters (unmerged, or the first merged at load),
// the tokenizer and chat template (the adapter folder's when it has them: what it was trained
// with), and the decoding defaults of generation_config.json.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/generation_config.h"
#include "generate/adapter.h"
#include "generate/chat_loop.h"
#include "generate/generate.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace lorafit {

// The QLoRA settings as typed (checked by quant_config()).
struct QuantFlags {
  int64_t bit = 0;                    // 0: none, 4: 4-bit
  std::string type = "nf4";           // nf4 | fp4
  std::string double_quant = "true";  // true | false
};
QuantConfig quant_config(const QuantFlags& q);  // throws Error naming the flag

struct InferenceOptions {
  std::string model;                  // "" : the first adapter's base_model_name_or_path
  std::vector<std::string> adapters;  // PEFT adapter folders
  bool merge = false;                 // merge the (single) adapter into the weights at load
  bool raw = false;                   // no chat template: text goes to the model as it is
  std::optional<bool> enable_thinking;  // template variable; unset: what the adapter was trained with
  std::string device = "cpu";
  std::string dtype = "auto";         // activations: auto, bf16 or f32 (inference_act_dtype)
  QuantFlags quant;                   // 4-bit base weights
};

class Inference {
 public:
  explicit Inference(const InferenceOptions& opts);
  ~Inference();

  Model& model() { return *model_; }
  const fs::path& model_dir() const { return model_dir_; }  // the folder the weights came from
  const Tokenizer* tokenizer() const { return tok_.get(); }  // null without tokenizer.json
  // Sampling defaults and eos ids: generation_config.json (eos ids also from tokenizer_config's
  // eos_token and config.json), max_new_tokens from there or 256.
  const GenerateSettings& defaults() const { return defaults_; }
  // The template variables conversations are rendered with ({"enable_thinking": ...} or {}).
  const nlohmann::ordered_json& template_vars() const { return template_vars_; }
  // Warnings found while loading (an adapter whose chat template or eos differs from the
  // base folder's), one line each; the CLI prints them.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // --prompt: rendered as one user turn through the chat template (unless raw).
  std::vector<int32_t> encode_prompt(const std::string& text, const std::optional<std::string>& system) const;
  // A conversation [{role, content}, ...]: checked (non-empty list, known roles, string
  // content), rendered with the generation prompt (or, raw, the contents concatenated).
  // `what` names the source in messages (e.g. the --messages file).
  std::vector<int32_t> encode_messages(const nlohmann::ordered_json& messages, const std::string& what) const;

  // Text as it is (no template): BOS when tokenizer_config.json asks for one, then the text.
  std::vector<int32_t> encode_text(const std::string& text) const;
  // Whether conversations go through a chat template (false: raw).
  bool has_chat_template() const { return template_ != nullptr; }

  // Adapters by name (the folder name); null for "base".
  std::vector<std::string> adapter_names() const;
  const LoraParams* adapter(const std::string& name) const;  // throws Error for an unknown name
  const LoraParams* default_adapter() const;                 // the first unmerged adapter or null

 private:
  fs::path model_dir_;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<Model> model_;
  std::vector<std::pair<std::string, std::unique_ptr<LoraParams>>> adapters_;
  MergedWeights merged_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<ChatTemplate> template_;  // null when raw
  bool add_bos_ = false;
  std::optional<int32_t> bos_id_;
  GenerateSettings defaults_;
  nlohmann::ordered_json template_vars_ = nlohmann::ordered_json::object();
  std::vector<std::string> warnings_;
};

// The differences between an adapter folder's tokenizer config and its base folder's that
// change what the model sees or where it stops (chat template, eos_token), one line each with
// both values.
std::vector<std::string> chat_mismatches(const TokenizerConfig& adapter, const TokenizerConfig& base);
// The adapter's lorafit_base_model.json (what a lorafit training run records beside the adapter:
// base path, fingerprint, template, 4-bit base), or nullopt when there is none (a PEFT adapter).
std::optional<nlohmann::ordered_json> lorafit_base_record(const fs::path& adapter_dir);
// The template variables a training run recorded in the adapter's lorafit_base_model.json
// (enable_thinking), as an object; {} when none.
nlohmann::ordered_json trained_template_vars(const fs::path& adapter_dir);
// The stop ids of a model whose conversations follow `tc` (may be absent): generation_config's
// eos ids, then tokenizer_config's eos_token, then config.json's, each once (transformers'
// stop set for generate with the folder's generation config).
std::vector<int32_t> stop_ids(const GenerationConfig& gc, const Tokenizer* tok, const std::optional<TokenizerConfig>& tc,
                              const ModelConfig& model);

// The chat loop's model side: renders the conversation, generates with a KV cache that keeps
// the shared prefix between turns, streams whole characters, stops on Ctrl-C.
class InferenceChat final : public ChatModel {
 public:
  InferenceChat(Inference& inf, const GenerateSettings& settings, int64_t capacity);
  std::string reply(const nlohmann::ordered_json& messages, const std::function<void(std::string_view)>& emit) override;
  ReplyInfo last_reply() const override { return last_; }
  std::vector<std::string> adapter_names() const override { return inf_.adapter_names(); }
  std::string current_adapter() const override { return current_; }
  void use_adapter(const std::string& name) override;

 private:
  Inference& inf_;
  GenerateSettings settings_;
  Generator gen_;
  std::string current_;
  int turn_ = 0;  // varies the seed per answer so sampled answers differ but stay reproducible
  int64_t capacity_ = 0;
  ReplyInfo last_;
};

}  // namespace lorafit
