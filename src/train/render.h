// Records → training examples through the model's own chat template (docs/DESIGN.md §2):
// ids of the whole rendered conversation (what apply_chat_template(tokenize=True) gives),
// labels = ids on assistant turns (content + the template's end-of-turn token, so the model
// learns to stop) and −100 elsewhere (train_on_prompt: every token), truncated to cutoff_len.
//
// End of turn: ChatML renders each turn as `…<|im_end|>\n`. We train `<|im_end|>` and mask the
// "\n" after it (it is template glue the model never has to produce: generation stops at
// <|im_end|>). The common SFT recipe (prompt = render([system, user], add_generation_prompt);
// labels = −100 on the prompt, ids on the rest) also trains that final "\n"; the fixture test
// documents this one-token difference.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#include "train/dataset.h"
#include "util/hash.h"

namespace lorafit {

struct Example {
  std::vector<int32_t> ids;
  std::vector<int32_t> labels;  // −100 = no loss; unshifted (the collator's convention)
  int64_t record = 0;           // index into Dataset::records
};

struct RenderStats {
  int64_t samples = 0;        // examples kept
  int64_t truncated = 0;      // cut at cutoff_len
  int64_t no_target = 0;      // dropped: no trainable token left after truncation
  int64_t max_len = 0, total_tokens = 0, trainable_tokens = 0;
  std::vector<int64_t> lengths;  // of every kept example (before nothing: after truncation)
};

struct RenderOptions {
  int64_t cutoff_len = 1024;
  bool train_on_prompt = false;
};

// The chat template a run trains (and later serves) with: the model folder's, or a file
// given with --template; and the template variables set for it (Qwen3's enable_thinking).
struct ChatSetup {
  std::string template_file;            // "" : the model folder's template
  std::optional<bool> enable_thinking;  // unset: the template's default
  nlohmann::ordered_json extra() const;  // the variables, for ChatOptions::extra
};

// The tokenizer side of a model folder: tokenizer, config, chat template (when there is one).
class ChatRenderer {
 public:
  explicit ChatRenderer(const fs::path& model_dir, const ChatSetup& setup = {});

  const Tokenizer& tokenizer() const { return tok_; }
  const TokenizerConfig& config() const { return cfg_; }
  bool has_template() const { return tmpl_ != nullptr; }
  const std::string& template_text() const { return template_text_; }  // "" without a template
  const ChatSetup& setup() const { return setup_; }

  // One example; nullopt when nothing is trainable after truncation (counted in stats).
  std::optional<Example> render(const Record& r, const RenderOptions& o, RenderStats& stats) const;
  // Prompt ids for generation: the conversation up to its last assistant turn, with the
  // generation prompt (text form: BOS + nothing, i.e. the first few tokens are the prompt).
  std::vector<int32_t> prompt_ids(const Record& r) const;
  std::string decode(const std::vector<int32_t>& ids) const { return tok_.decode(ids, /*skip_special=*/true); }

  int32_t pad_id() const { return pad_id_; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }  // generation stops here

 private:
  Tokenizer tok_;
  TokenizerConfig cfg_;
  std::unique_ptr<ChatTemplate> tmpl_;
  std::string template_text_;
  ChatSetup setup_;
  int32_t pad_id_ = 0;
  std::optional<int32_t> bos_id_;
  std::vector<int32_t> eos_ids_;
};

// Renders every record of `idx` (indices into ds.records).
std::vector<Example> render_all(const ChatRenderer& r, const Dataset& ds, const std::vector<int64_t>& idx,
                                const RenderOptions& o, RenderStats& stats);

// Tokenized-dataset cache: a file named by a hash of the data file, the tokenizer files and
// the settings that change the tokens. load returns false when absent or unreadable.
std::string render_cache_key(const fs::path& data, const fs::path& model_dir, const std::string& settings);
bool load_render_cache(const fs::path& file, std::vector<Example>& out, RenderStats& stats);
void save_render_cache(const fs::path& file, const std::vector<Example>& ex, const RenderStats& stats);

}  // namespace lorafit
