#include "generate/inference.h"

#include <algorithm>

#include "formats/generation_config.h"
#include "tokenizer/tokenizer_config.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/parse.h"
#include "util/signals.h"

namespace lorafit {

namespace {

void add_unique(std::vector<int32_t>& v, int32_t id) {
  if (std::find(v.begin(), v.end(), id) == v.end()) v.push_back(id);
}

}  // namespace

std::vector<int32_t> stop_ids(const GenerationConfig& gc, const Tokenizer* tok, const std::optional<TokenizerConfig>& tc,
                              const ModelConfig& model) {
  std::vector<int32_t> ids;
  for (int32_t id : gc.eos_token_ids) add_unique(ids, id);
  if (tok && tc && tc->eos_token)
    if (auto id = tok->token_to_id(*tc->eos_token)) add_unique(ids, *id);
  for (int id : model.eos_token_ids) add_unique(ids, id);
  return ids;
}

namespace {

std::string describe_template(const TokenizerConfig& c) {
  if (c.chat_templates.empty()) return fmt::format("none ({})", c.source);
  const std::string& t = c.chat_template(false);
  return fmt::format("{} ({} bytes, fnv1a64 {:016x})", c.template_source, t.size(), fnv1a64(t.data(), t.size()));
}

std::string first_difference(const std::string& a, const std::string& b) {
  size_t i = 0, line = 1;
  for (; i < a.size() && i < b.size() && a[i] == b[i]; ++i) line += a[i] == '\n';
  return fmt::format("first difference on line {}", line);
}

}  // namespace

std::vector<std::string> chat_mismatches(const TokenizerConfig& adapter, const TokenizerConfig& base) {
  std::vector<std::string> w;
  const std::string ta = adapter.chat_templates.empty() ? "" : adapter.chat_template(false);
  const std::string tb = base.chat_templates.empty() ? "" : base.chat_template(false);
  if (ta != tb)
    w.push_back(fmt::format("the adapter's chat template differs from the base model folder's ({}): adapter {}, base "
                            "{}; using the adapter's (what it was trained with)",
                            first_difference(ta, tb), describe_template(adapter), describe_template(base)));
  if (adapter.eos_token != base.eos_token)
    w.push_back(fmt::format("the adapter's eos_token differs from the base model folder's: adapter \"{}\" ({}), base "
                            "\"{}\" ({}); using the adapter's",
                            adapter.eos_token.value_or("none"), adapter.source, base.eos_token.value_or("none"),
                            base.source));
  return w;
}

std::optional<nlohmann::ordered_json> lorafit_base_record(const fs::path& adapter_dir) {
  const fs::path f = adapter_dir / "lorafit_base_model.json";
  if (!fs::exists(f)) return std::nullopt;
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_file(f));
  } catch (const nlohmann::json::exception& e) {
    throw Error("{}: not valid JSON ({})", f.string(), e.what());
  }
  if (!j.is_object()) throw Error("{}: expected a JSON object", f.string());
  return j;
}

nlohmann::ordered_json trained_template_vars(const fs::path& adapter_dir) {
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  const auto rec = lorafit_base_record(adapter_dir);
  if (!rec) return vars;
  const nlohmann::ordered_json& j = *rec;
  const fs::path f = adapter_dir / "lorafit_base_model.json";
  if (j.contains("enable_thinking")) {
    if (!j["enable_thinking"].is_boolean())
      throw Error("{}: enable_thinking must be true or false, not {}", f.string(), j["enable_thinking"].dump());
    vars["enable_thinking"] = j["enable_thinking"];
  }
  return vars;
}

QuantConfig quant_config(const QuantFlags& q) {
  return parse_quant_config(q.bit, q.type, parse_bool(q.double_quant, "--double_quantization"), "--");
}

Inference::Inference(const InferenceOptions& o) {
  if (o.model.empty() && o.adapters.empty())
    throw Error("give the model with --model DIR, or an adapter folder with --adapter DIR (it records its base model)");
  if (o.merge && o.adapters.size() != 1)
    throw Error("--merge merges exactly one adapter into the weights; {} given", o.adapters.size());
  const fs::path dir = o.model.empty() ? resolve_base_model(o.adapters[0]) : fs::path(o.model);
  model_dir_ = dir;
  be_ = make_backend(o.device);
  const DType act = inference_act_dtype(o.dtype, o.device, dir);
  model_ = std::make_unique<Model>(*be_, dir, act, quant_config(o.quant));
  if (const std::string n = quantization_bit_note(model_->config(), quant_config(o.quant)); !n.empty())
    fmt::print(stderr, "{}\n", n);
  if (model_->weights_rounded())
    fmt::print(stderr, "note: --dtype bf16 with {} weights: they were rounded to bf16 once at load\n",
               dtype_name(model_->checkpoint_dtype()));
  for (const auto& a : o.adapters) {
    std::string name = fs::path(a).lexically_normal().filename().string();
    if (name.empty()) name = fs::path(a).lexically_normal().parent_path().filename().string();
    for (const auto& [n, p] : adapters_)
      if (n == name) name = fmt::format("{}-{}", name, adapters_.size() + 1);  // two folders with one name
    adapters_.emplace_back(name, load_adapter(*be_, model_->config(), a));
  }
  if (o.merge) merge_adapter_into(*model_, *adapters_[0].second, merged_);
  for (size_t k = 0; !o.merge && k < adapters_.size(); ++k) {  // unmerged DoRA: lora_linear's CPU paths
    if (!adapters_[k].second->config().use_dora) continue;
    const std::string cfg = (fs::path(o.adapters[k]) / "adapter_config.json").string();
    if (be_->device() != Device::CPU)
      throw Error(
          "{}: a DoRA adapter (use_dora: true) runs unmerged on the CPU backend only (its CUDA kernels have not "
          "been checked on a GPU yet); use --device cpu, or --merge",
          cfg);
    if (model_->weights().quantized() && act == DType::BF16)
      throw Error(
          "{}: a DoRA adapter (use_dora: true) on a 4-bit base runs with fp32 compute only (PEFT's bitsandbytes "
          "DoRA layer takes another path under bf16); use --dtype f32",
          cfg);
  }

  // The tokenizer the adapter was trained with, else the base model's.
  fs::path tok_dir = dir;
  for (const auto& a : o.adapters)
    if (fs::exists(fs::path(a) / "tokenizer.json")) {
      tok_dir = a;
      break;
    }
  if (fs::exists(tok_dir / "tokenizer.json")) tok_ = std::make_unique<Tokenizer>(Tokenizer::load(tok_dir));
  std::optional<TokenizerConfig> tc;
  if (fs::exists(tok_dir / "tokenizer_config.json")) tc = TokenizerConfig::load(tok_dir);
  if (tok_dir != dir) {
    if (tc && fs::exists(dir / "tokenizer_config.json")) warnings_ = chat_mismatches(*tc, TokenizerConfig::load(dir));
    template_vars_ = trained_template_vars(tok_dir);
  }
  if (o.enable_thinking) template_vars_["enable_thinking"] = *o.enable_thinking;

  // Decoding defaults: generation_config.json, as transformers' generate reads them (the
  // adapter's copy when it has one: stop tokens come from where the template came from).
  GenerationConfig gc;
  const fs::path gen_dir = fs::exists(tok_dir / "generation_config.json") ? tok_dir : dir;
  if (fs::exists(gen_dir / "generation_config.json"))
    gc = load_generation_config(gen_dir / "generation_config.json");
  defaults_.sampling = sampling_params_from(gc);
  defaults_.max_new_tokens = gc.max_new_tokens.value_or(256);
  defaults_.eos_ids = stop_ids(gc, tok_.get(), tc, model_->config());

  if (tc && tc->add_bos_token && tc->bos_token && tok_) {
    bos_id_ = tok_->token_to_id(*tc->bos_token);
    add_bos_ = bos_id_.has_value();
  }
  if (!o.raw) {
    if (!tok_)
      throw Error("{}: no tokenizer.json, so text cannot be encoded; copy the model's tokenizer files into it "
                  "(`lorafit generate --input_ids` takes token ids without them)", dir.string());
    if (!tc || tc->chat_templates.empty())
      throw Error("{}: tokenizer_config.json has no chat_template, so a conversation cannot be rendered; use --raw "
                  "to give the model the text as it is",
                  tok_dir.string());
    template_ = std::make_unique<ChatTemplate>(ChatTemplate::from_config(*tc));
  }
}

Inference::~Inference() = default;

std::vector<int32_t> Inference::encode_prompt(const std::string& text, const std::optional<std::string>& system) const {
  nlohmann::ordered_json m = nlohmann::ordered_json::array();
  if (system) m.push_back({{"role", "system"}, {"content", *system}});
  m.push_back({{"role", "user"}, {"content", text}});
  return encode_messages(m, "--prompt");
}

std::vector<int32_t> Inference::encode_messages(const nlohmann::ordered_json& messages, const std::string& what) const {
  if (!messages.is_array()) throw Error("{}: expected a JSON list of {{\"role\", \"content\"}} messages", what);
  if (messages.empty()) throw Error("{}: the message list is empty; give at least one user message", what);
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw Error("{}: message {} is not an object with string \"role\" and \"content\"", what, i + 1);
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw Error("{}: message {} has the unknown role \"{}\"; expected system, user, assistant or tool", what, i + 1,
                  role);
  }
  if (!tok_) throw Error("{}: the model folder has no tokenizer.json; copy the model's tokenizer files into it "
                         "(`lorafit generate --input_ids` takes token ids without them)", what);
  if (!template_) {  // raw: the texts one after another
    std::string text;
    for (const auto& m : messages) text += m["content"].get<std::string>();
    return encode_text(text);
  }
  ChatOptions co;
  co.add_generation_prompt = true;
  co.extra = template_vars_;
  return tok_->encode(template_->render(messages, co));  // the template writes any BOS itself
}

std::vector<int32_t> Inference::encode_text(const std::string& text) const {
  if (!tok_) throw Error("{}: no tokenizer.json, so text cannot be encoded", model_dir_.string());
  std::vector<int32_t> ids;
  if (add_bos_) ids.push_back(*bos_id_);
  const std::vector<int32_t> body = tok_->encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::vector<std::string> Inference::adapter_names() const {
  std::vector<std::string> n;
  if (merged_.buffers.empty())
    for (const auto& a : adapters_) n.push_back(a.first);
  return n;
}

const LoraParams* Inference::adapter(const std::string& name) const {
  if (name == "base") return nullptr;
  if (merged_.buffers.empty())
    for (const auto& a : adapters_)
      if (a.first == name) return a.second.get();
  std::string known = "base";
  for (const auto& n : adapter_names()) known = fmt::format("{}, {}", known, n);
  throw Error("unknown adapter \"{}\"; loaded: {}", name, known);
}

const LoraParams* Inference::default_adapter() const {
  return merged_.buffers.empty() && !adapters_.empty() ? adapters_[0].second.get() : nullptr;
}

InferenceChat::InferenceChat(Inference& inf, const GenerateSettings& settings, int64_t capacity)
    : inf_(inf), settings_(settings), gen_(inf.model(), capacity, inf.default_adapter()), capacity_(capacity) {
  const auto names = inf.adapter_names();
  current_ = inf.default_adapter() ? names.front() : "base";
}

void InferenceChat::use_adapter(const std::string& name) {
  gen_.set_lora(inf_.adapter(name));
  current_ = name;
}

std::string InferenceChat::reply(const nlohmann::ordered_json& messages,
                                 const std::function<void(std::string_view)>& emit) {
  const std::vector<int32_t> prompt = inf_.encode_messages(messages, "the conversation");
  last_ = ReplyInfo{};
  last_.context_size = capacity_;
  last_.max_new_tokens = settings_.max_new_tokens;
  if (static_cast<int64_t>(prompt.size()) >= capacity_)
    throw Error("the conversation ({} tokens) no longer fits the context of {} positions, so nothing was answered; "
                "/reset starts a new conversation (or raise --max_context)",
                prompt.size(), capacity_);
  StreamDecoder dec(*inf_.tokenizer(), /*skip_special=*/true);  // encode_messages checked it exists
  std::string answer;
  GenerateSettings s = settings_;
  s.seed = settings_.seed + static_cast<uint64_t>(turn_++);
  InterruptScope ctrl_c;  // Ctrl-C now stops this answer only
  const GenerateResult r = gen_.generate(prompt, s, [&](int32_t id) {
    const std::string piece = dec.push(id);
    answer += piece;
    if (!piece.empty()) emit(piece);
    return !interrupt_requested();
  });
  const std::string rest = dec.flush();
  answer += rest;
  if (!rest.empty()) emit(rest);
  last_.tokens = static_cast<int64_t>(r.ids.size());
  last_.seconds = r.prefill_s + r.decode_s;
  last_.stop = stop_reason_name(r.stop);
  // The last token chosen is not in the cache yet: a full context is every position.
  last_.context_used = std::min(static_cast<int64_t>(prompt.size()) + last_.tokens, capacity_);
  return answer;
}

}  // namespace lorafit
