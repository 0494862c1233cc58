// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include "tokenizer/chat_template.h"

#include <algorithm>
#include <unordered_map>

#include "util/error.h"

namespace lorafit {

using ojson = nlohmann::ordered_json;

ChatTemplate::ChatTemplate(const std::string& source, std::string name, ojson special_tokens)
    : name_(std::move(name)), tmpl_(source, name_), special_(std::move(special_tokens)) {
  if (!special_.is_object()) special_ = ojson::object();
}

ChatTemplate ChatTemplate::from_config(const TokenizerConfig& config, bool with_tools) {
  std::string which = config.chat_template_name(with_tools);
  std::string name = config.source + " chat_template" + (which == "default" ? "" : "[" + which + "]");
  return ChatTemplate(config.chat_template(with_tools), name, config.special_tokens_map());
}

jinja::RenderResult ChatTemplate::render_impl(const ojson& messages, const ChatOptions& opts, bool track) const {
  if (!messages.is_array()) throw Error("{}: messages must be a JSON array of {{role, content}} objects", name_);
  for (size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].is_object()) throw Error("{}: message {} is not an object: {}", name_, i, messages[i].dump());
  // The variables apply_chat_template passes: messages, tools, documents,
  // add_generation_prompt, then **special_tokens_map and **kwargs (later ones win).
  jinja::Value msgs = jinja::Value::from_json(messages);
  jinja::ValueDict ctx;
  ctx.emplace_back("messages", msgs);
  ctx.emplace_back("tools", opts.tools.is_null() ? jinja::Value::none() : jinja::Value::from_json(opts.tools));
  ctx.emplace_back("documents", jinja::Value::none());
  ctx.emplace_back("add_generation_prompt", jinja::Value(opts.add_generation_prompt));
  jinja::Value context = jinja::Value::dict(std::move(ctx));
  for (auto it = special_.begin(); it != special_.end(); ++it) context.set(it.key(), jinja::Value::from_json(it.value()));
  if (opts.extra.is_object())
    for (auto it = opts.extra.begin(); it != opts.extra.end(); ++it) context.set(it.key(), jinja::Value::from_json(it.value()));
  std::unordered_map<const void*, int> tracked;
  if (track)
    for (size_t i = 0; i < msgs.items().size(); ++i) tracked[msgs.items()[i].identity()] = static_cast<int>(i);
  return tmpl_.render(context, track ? &tracked : nullptr);
}

std::string ChatTemplate::render(const ojson& messages, const ChatOptions& opts) const {
  if (!messages.is_array() || messages.empty())
    throw Error("{}: no messages to render; give at least one {{role, content}} message", name_);
  return render_impl(messages, opts, false).text;
}

namespace {

size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

ChatRendering ChatTemplate::render_with_spans(const ojson& messages, const ChatOptions& opts) const {
  if (!messages.is_array() || messages.empty())
    throw Error("{}: no messages to render; give at least one {{role, content}} message", name_);
  jinja::RenderResult full = render_impl(messages, opts, true);
  const std::string& text = full.text;

  // Each message's byte range: from its first to its last attributed byte.
  const size_t n_msgs = messages.size();
  std::vector<size_t> mbegin(n_msgs, std::string::npos), mend(n_msgs, 0);
  for (const auto& s : full.spans) {
    auto i = static_cast<size_t>(s.index);
    mbegin[i] = std::min(mbegin[i], s.begin);
    mend[i] = std::max(mend[i], s.end);
  }
  std::vector<std::string> markers = opts.end_of_turn;
  if (markers.empty() && special_.contains("eos_token") && special_["eos_token"].is_string())
    markers.push_back(special_["eos_token"].get<std::string>());

  // Trainable byte ranges of assistant messages.
  std::vector<std::pair<size_t, size_t>> train(n_msgs, {0, 0});
  for (size_t i = 0; i < n_msgs; ++i) {
    if (mbegin[i] == std::string::npos) continue;
    const auto& m = messages[i];
    if (!m.contains("role") || m["role"] != "assistant") continue;
    std::string gen_prompt;
    ojson prefix = ojson::array();
    for (size_t k = 0; k < i; ++k) prefix.push_back(messages[k]);
    if (!prefix.empty()) {
      ChatOptions o = opts;
      o.add_generation_prompt = false;
      std::string without;
      std::string with;
      try {
        without = render_impl(prefix, o, false).text;
        o.add_generation_prompt = true;
        with = render_impl(prefix, o, false).text;
      } catch (const Error& e) {
        throw Error("{}: cannot find the assistant header of message {}: rendering messages[0:{}] failed: {}", name_,
                    i, i, e.what());
      }
      if (with.compare(0, without.size(), without) == 0) gen_prompt = with.substr(without.size());
    }
    std::string_view body(text.data() + mbegin[i], mend[i] - mbegin[i]);
    size_t header = body.substr(0, gen_prompt.size()) == gen_prompt ? gen_prompt.size() : common_prefix(body, gen_prompt);
    size_t end = body.size();
    size_t best = std::string::npos;
    for (const auto& mk : markers) {
      if (mk.empty()) continue;
      size_t p = body.rfind(mk);
      if (p != std::string::npos && p >= header && (best == std::string::npos || p + mk.size() > best)) best = p + mk.size();
    }
    if (best != std::string::npos) end = best;
    train[i] = {mbegin[i] + header, mbegin[i] + end};
  }

  // Cut the text at every boundary and label each piece.
  std::vector<size_t> cuts = {0, text.size()};
  for (const auto& s : full.spans) {
    cuts.push_back(s.begin);
    cuts.push_back(s.end);
  }
  for (const auto& [b, e] : train)
    if (e > b) {
      cuts.push_back(b);
      cuts.push_back(e);
    }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  ChatRendering out;
  out.text = text;
  size_t span_i = 0;
  for (size_t c = 0; c + 1 < cuts.size(); ++c) {
    ChatSegment seg{cuts[c], cuts[c + 1], -1, false};
    while (span_i < full.spans.size() && full.spans[span_i].end <= seg.begin) ++span_i;
    if (span_i < full.spans.size() && full.spans[span_i].begin <= seg.begin) seg.message = full.spans[span_i].index;
    if (seg.message >= 0) {
      const auto& [tb, te] = train[static_cast<size_t>(seg.message)];
      seg.trainable = seg.begin >= tb && seg.end <= te && te > tb;
    }
    // Merge with the previous piece when the labels agree.
    if (!out.segments.empty() && out.segments.back().message == seg.message &&
        out.segments.back().trainable == seg.trainable && out.segments.back().end == seg.begin)
      out.segments.back().end = seg.end;
    else
      out.segments.push_back(seg);
  }
  return out;
}

}  // namespace lorafit
