// encode_chat lives apart from the renderer so that rendering links without the tokenizer.
// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <utf8proc.h>

#include "tokenizer/chat_template.h"
#include "util/error.h"

namespace lorafit {

using ojson = nlohmann::ordered_json;

namespace {

// Byte length of each token's text, or nullopt when they do not add up to `total` (a
// normalizer such as NFC changed the text, or a decoder that rewrites spaces).
std::optional<std::vector<size_t>> token_byte_lengths(const Tokenizer& tok, const std::vector<int32_t>& ids,
                                                      size_t total) {
  std::vector<size_t> lens;
  size_t sum = 0;
  for (int32_t id : ids) {
    lens.push_back(tok.decode_bytes(std::span<const int32_t>(&id, 1)).size());
    sum += lens.back();
  }
  if (sum != total) return std::nullopt;
  return lens;
}

// Index of the segment holding byte `pos`.
size_t segment_at(const std::vector<ChatSegment>& segs, size_t pos) {
  auto it = std::upper_bound(segs.begin(), segs.end(), pos, [](size_t p, const ChatSegment& s) { return p < s.end; });
  return static_cast<size_t>(std::min<std::ptrdiff_t>(it - segs.begin(), static_cast<std::ptrdiff_t>(segs.size()) - 1));
}

// Labels ids that encode text[begin, begin + sum(lens)) by the segment each token starts in;
// trainable when any byte of the token is.
void label_by_offsets(const std::vector<ChatSegment>& segs, size_t begin, const std::vector<size_t>& lens,
                      ChatEncoding& enc) {
  size_t pos = begin;
  for (size_t len : lens) {
    size_t first = segment_at(segs, pos);
    bool train = false;
    for (size_t s = first; s < segs.size() && segs[s].begin < pos + std::max<size_t>(len, 1); ++s)
      train = train || segs[s].trainable;
    enc.message.push_back(segs[first].message);
    enc.trainable.push_back(train ? 1 : 0);
    pos += len;
  }
}

// Length of NFC(text[0, n)): where a byte offset of the raw text lands after the NFC
// normalizer that Qwen's and Llama 3's tokenizers apply.
size_t nfc_length(std::string_view text, size_t n) {
  std::string prefix(text.substr(0, n));
  utf8proc_uint8_t* out = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(prefix.c_str()));
  if (!out) return n;
  size_t len = std::strlen(reinterpret_cast<const char*>(out));
  std::free(out);
  return len;
}

void append(ChatEncoding& enc, const std::vector<int32_t>& ids, int message, bool train) {
  enc.ids.insert(enc.ids.end(), ids.begin(), ids.end());
  enc.message.insert(enc.message.end(), ids.size(), message);
  enc.trainable.insert(enc.trainable.end(), ids.size(), train ? 1 : 0);
}

}  // namespace

ChatEncoding encode_chat(const Tokenizer& tok, const ChatTemplate& tmpl, const ojson& messages, const ChatOptions& opts) {
  ChatRendering r = tmpl.render_with_spans(messages, opts);
  const auto& segs = r.segments;
  ChatEncoding enc;
  // Runs of equal trainability are encoded whole: only prompt/reply boundaries must fall
  // between tokens (two tool responses in a row may share a ">\n" token, and that is fine).
  for (size_t a = 0; a < segs.size();) {
    size_t b = a + 1;
    while (b < segs.size() && segs[b].trainable == segs[a].trainable) ++b;
    const size_t begin = segs[a].begin, end = segs[b - 1].end;
    std::vector<int32_t> ids = tok.encode(std::string_view(r.text).substr(begin, end - begin), true);
    bool one_message = true;
    for (size_t k = a + 1; k < b; ++k) one_message = one_message && segs[k].message == segs[a].message;
    if (one_message) {
      append(enc, ids, segs[a].message, segs[a].trainable);
    } else if (auto lens = token_byte_lengths(tok, ids, end - begin)) {
      enc.ids.insert(enc.ids.end(), ids.begin(), ids.end());
      label_by_offsets(segs, begin, *lens, enc);
    } else {  // cannot tell which message a token came from: encode segment by segment
      for (size_t k = a; k < b; ++k)
        append(enc, tok.encode(std::string_view(r.text).substr(segs[k].begin, segs[k].end - segs[k].begin), true),
               segs[k].message, segs[k].trainable);
    }
    a = b;
  }
  std::vector<int32_t> whole = tok.encode(r.text, true);
  if (whole == enc.ids || opts.boundary == ChatBoundaryPolicy::kPerSegment) return enc;
  if (opts.boundary == ChatBoundaryPolicy::kWholeText) {
    auto lens = token_byte_lengths(tok, whole, r.text.size());
    std::vector<ChatSegment> placed = segs;
    if (!lens) {  // the tokens spell NFC(text): move the segment bounds there
      for (auto& seg : placed) {
        seg.begin = nfc_length(r.text, seg.begin);
        seg.end = nfc_length(r.text, seg.end);
      }
      lens = token_byte_lengths(tok, whole, nfc_length(r.text, r.text.size()));
    }
    if (!lens)
      throw ChatPlacementError("{}: cannot tell which tokens belong to the assistant replies: the tokenizer's "
                               "normalizer or decoder rewrites the text (beyond NFC), so its tokens do not line up "
                               "with the messages",
                               tmpl.name());
    ChatEncoding out;
    out.ids = whole;
    label_by_offsets(placed, 0, *lens, out);
    return out;
  }
  size_t k = 0;
  while (k < whole.size() && k < enc.ids.size() && whole[k] == enc.ids[k]) ++k;
  int msg = k < enc.message.size() ? enc.message[k] : -1;
  throw Error("{}: a message boundary falls inside a token (first difference at token {}, message {}): "
              "encoding prompt and reply apart gives other ids than encoding the whole text; ask encode_chat for "
              "the per-segment ids or for the whole-text ids instead (its boundary option)",
              tmpl.name(), k, msg);
}

}  // namespace lorafit
