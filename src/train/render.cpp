#include "train/render.h"

#include <cstring>

#include "util/error.h"

namespace lorafit {

nlohmann::ordered_json ChatSetup::extra() const {
  nlohmann::ordered_json e = nlohmann::ordered_json::object();
  if (enable_thinking) e["enable_thinking"] = *enable_thinking;
  return e;
}

ChatRenderer::ChatRenderer(const fs::path& model_dir, const ChatSetup& setup)
    : tok_(Tokenizer::load(model_dir)), setup_(setup) {
  if (fs::exists(model_dir / "tokenizer_config.json")) {
    cfg_ = TokenizerConfig::load(model_dir);
    if (!cfg_.chat_templates.empty()) template_text_ = cfg_.chat_template(/*with_tools=*/false);
  }
  if (!setup.template_file.empty()) {
    template_text_ = read_file(setup.template_file);
    tmpl_ = std::make_unique<ChatTemplate>(template_text_, setup.template_file + " (--template)",
                                           cfg_.special_tokens_map());
  } else if (!template_text_.empty()) {
    tmpl_ = std::make_unique<ChatTemplate>(ChatTemplate::from_config(cfg_, /*with_tools=*/false));
  }
  auto id_of = [&](const std::optional<std::string>& t) -> std::optional<int32_t> {
    if (!t) return std::nullopt;
    return tok_.token_to_id(*t);
  };
  if (cfg_.add_bos_token) bos_id_ = id_of(cfg_.bos_token);
  if (auto e = id_of(cfg_.eos_token)) eos_ids_.push_back(*e);
  // ChatML models end a turn with <|im_end|> but may also emit <|endoftext|>.
  for (const char* t : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>"})
    if (auto id = tok_.token_to_id(t); id && std::find(eos_ids_.begin(), eos_ids_.end(), *id) == eos_ids_.end())
      eos_ids_.push_back(*id);
  if (auto p = id_of(cfg_.pad_token))
    pad_id_ = *p;
  else if (!eos_ids_.empty())
    pad_id_ = eos_ids_[0];  // padding is never attended (right padding, causal) nor trained
}

std::optional<Example> ChatRenderer::render(const Record& r, const RenderOptions& o, RenderStats& stats) const {
  Example ex;
  std::vector<uint8_t> train;
  if (r.messages.empty()) {  // text form: BOS? + text + EOS, every token trained
    if (bos_id_) ex.ids.push_back(*bos_id_);
    const std::vector<int32_t> body = tok_.encode(r.text);
    ex.ids.insert(ex.ids.end(), body.begin(), body.end());
    if (!eos_ids_.empty()) ex.ids.push_back(eos_ids_[0]);
    train.assign(ex.ids.size(), 1);
  } else {
    if (!tmpl_)
      throw Error("the model's tokenizer_config.json has no chat_template, so conversations cannot be rendered; "
                  "use dataset_format: text, or a model folder with a chat template");
    ChatOptions co;
    co.extra = setup_.extra();
    co.boundary = ChatBoundaryPolicy::kWholeText;  // ids as apply_chat_template(tokenize=True)
    if (o.train_on_prompt) {  // every token trained: the whole-text ids need no placement on the messages
      ex.ids = tok_.encode(tmpl_->render(r.messages, co), true);
      train.assign(ex.ids.size(), 1);
    } else {
      try {
        const ChatEncoding enc = encode_chat(tok_, *tmpl_, r.messages, co);
        ex.ids = enc.ids;
        train = enc.trainable;
      } catch (const ChatPlacementError& e) {
        throw Error("{}; set train_on_prompt: true to train on every token of the conversation (no placement "
                    "needed then)",
                    e.what());
      }
    }
  }
  if (static_cast<int64_t>(ex.ids.size()) > o.cutoff_len) {
    ex.ids.resize(static_cast<size_t>(o.cutoff_len));
    train.resize(ex.ids.size());
    ++stats.truncated;
  }
  ex.labels.resize(ex.ids.size());
  int64_t trainable = 0;
  for (size_t i = 0; i < ex.ids.size(); ++i) {
    const bool t = o.train_on_prompt || train[i];
    ex.labels[i] = t ? ex.ids[i] : -100;
    trainable += t && i > 0;  // the first token is never predicted
  }
  if (trainable == 0) {
    ++stats.no_target;
    return std::nullopt;
  }
  ++stats.samples;
  stats.max_len = std::max<int64_t>(stats.max_len, static_cast<int64_t>(ex.ids.size()));
  stats.total_tokens += static_cast<int64_t>(ex.ids.size());
  stats.trainable_tokens += trainable;
  stats.lengths.push_back(static_cast<int64_t>(ex.ids.size()));
  return ex;
}

std::vector<int32_t> ChatRenderer::prompt_ids(const Record& r) const {
  if (r.messages.empty()) {  // text form: the first 4 tokens of the text start the story
    std::vector<int32_t> ids;
    if (bos_id_) ids.push_back(*bos_id_);
    std::vector<int32_t> body = tok_.encode(r.text);
    body.resize(std::min<size_t>(body.size(), 4));
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  }
  ChatOptions co;
  co.add_generation_prompt = true;
  co.extra = setup_.extra();
  co.boundary = ChatBoundaryPolicy::kWholeText;
  return encode_chat(tok_, *tmpl_, prompt_messages(r), co).ids;
}

std::vector<Example> render_all(const ChatRenderer& r, const Dataset& ds, const std::vector<int64_t>& idx,
                                const RenderOptions& o, RenderStats& stats) {
  std::vector<Example> out;
  out.reserve(idx.size());
  for (int64_t i : idx) {
    const Record& rec = ds.records[static_cast<size_t>(i)];
    std::optional<Example> ex;
    try {
      ex = r.render(rec, o, stats);
    } catch (const Error& e) {
      throw Error("record at line {}: {}", rec.line, e.what());
    }
    if (ex) {
      ex->record = i;
      out.push_back(std::move(*ex));
    }
  }
  return out;
}

// ---- cache: "LFTC" u32 version, stats, then per example (record, n, ids, labels) ----

namespace {
constexpr uint32_t kCacheVersion = 1;
template <class T>
void put(std::string& s, const T& v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
struct Reader {
  const std::string& s;
  size_t pos = 0;
  template <class T>
  bool get(T& v) {
    if (pos + sizeof(T) > s.size()) return false;
    std::memcpy(&v, s.data() + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }
  bool get_vec(std::vector<int32_t>& v, uint64_t n) {
    if (n > (s.size() - pos) / 4) return false;
    v.resize(n);
    std::memcpy(v.data(), s.data() + pos, n * 4);
    pos += n * 4;
    return true;
  }
};
}  // namespace

std::string render_cache_key(const fs::path& data, const fs::path& model_dir, const std::string& settings) {
  uint64_t h = fnv1a64(settings.data(), settings.size());
  for (const fs::path& p : {data, model_dir / "tokenizer.json", model_dir / "tokenizer_config.json"}) {
    if (!fs::exists(p)) continue;
    const MappedFile f(p);
    h = fnv1a64(f.data(), f.size(), h);
  }
  return fmt::format("{:016x}", h);
}

bool load_render_cache(const fs::path& file, std::vector<Example>& out, RenderStats& stats) {
  if (!fs::exists(file)) return false;
  const std::string s = read_file(file);
  Reader rd{s};
  char magic[4];
  uint32_t ver = 0;
  uint64_t n = 0;
  RenderStats st;
  if (!rd.get(magic) || std::memcmp(magic, "LFTC", 4) != 0 || !rd.get(ver) || ver != kCacheVersion) return false;
  if (!rd.get(st.samples) || !rd.get(st.truncated) || !rd.get(st.no_target) || !rd.get(st.max_len) ||
      !rd.get(st.total_tokens) || !rd.get(st.trainable_tokens) || !rd.get(n))
    return false;
  std::vector<Example> ex(n);
  for (Example& e : ex) {
    uint64_t len = 0;
    if (!rd.get(e.record) || !rd.get(len) || !rd.get_vec(e.ids, len) || !rd.get_vec(e.labels, len)) return false;
    st.lengths.push_back(static_cast<int64_t>(len));
  }
  if (rd.pos != s.size()) return false;
  out = std::move(ex);
  stats = std::move(st);
  return true;
}

void save_render_cache(const fs::path& file, const std::vector<Example>& ex, const RenderStats& st) {
  std::string s("LFTC");
  put(s, kCacheVersion);
  for (int64_t v : {st.samples, st.truncated, st.no_target, st.max_len, st.total_tokens, st.trainable_tokens})
    put(s, v);
  put(s, static_cast<uint64_t>(ex.size()));
  for (const Example& e : ex) {
    put(s, e.record);
    put(s, static_cast<uint64_t>(e.ids.size()));
    s.append(reinterpret_cast<const char*>(e.ids.data()), e.ids.size() * 4);
    s.append(reinterpret_cast<const char*>(e.labels.data()), e.labels.size() * 4);
  }
  fs::create_directories(file.parent_path());
  write_file_atomic(file, s);
}

}  // namespace lorafit
