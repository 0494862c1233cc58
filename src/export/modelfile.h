// An Ollama Modelfile beside an exported GGUF:
//   FROM ./model.gguf
//   TEMPLATE """<Go template>"""
//   PARAMETER stop "<|im_end|>"      (one per stop token)
//   SYSTEM """<the system prompt the run trained with>"""   (when known)
// The Go template is derived from the Jinja chat template itself: it is rendered with marker
// contents ([user, assistant, user] with and without a system message), and the fixed text
// between the markers becomes the literal parts of a template over .System and .Messages.
// It equals the Jinja rendering for the plain chat case (optional system, alternating
// user/assistant turns, the generation prompt at the end, contents used verbatim); a template
// whose parts do not repeat that way gets an Error naming it. A leading BOS text is dropped
// when the tokenizer adds BOS itself (llama.cpp and Ollama do; there would be two otherwise).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/chat_template.h"
#include "util/file.h"

namespace lorafit {

// The fixed parts of a plain chat rendering.
struct ChatParts {
  bool system = false;    // the template accepts a system message
  std::string sys_open;   // before the system text
  std::string sys_close;  // after it, before the first user turn's user_open
  std::string no_sys;     // the start without a system message (a default system, BOS, ...)
  std::string user_open, user_close;  // around each user text (user_close ends with the generation prompt)
  std::string asst_close;             // after each assistant text
};

// strip_bos: the BOS text to drop from the start ("" = keep); stops: end-of-turn token texts.
ChatParts chat_parts(const ChatTemplate& tmpl, const std::string& strip_bos, const std::vector<std::string>& stops);

// What the parts give for a conversation (roles "user"/"assistant"), as the Go template does.
std::string render_chat_parts(const ChatParts& p, const std::string& system,
                              const std::vector<std::pair<std::string, std::string>>& messages);

// The Ollama Go template text for the parts.
std::string ollama_template(const ChatParts& p);

// The Modelfile text. template_go "" → no TEMPLATE; system "" → no SYSTEM.
std::string modelfile_text(const std::string& from, const std::string& template_go,
                           const std::vector<std::string>& stops, const std::string& system);

// The system prompt of the run an adapter folder belongs to: "system" in the run folder's
// config.json (adapter_dir/.., a lorafit run folder when it has config.yaml); "" if unknown.
std::string trained_system_prompt(const fs::path& adapter_dir);

}  // namespace lorafit
