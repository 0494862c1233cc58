#include "formats/generation_config.h"

#include <cmath>
#include <limits>

#include "formats/json_util.h"
#include "util/error.h"

namespace lorafit {

namespace {

// Reads one field of the top-level object; each getter returns nullopt for absent or null.
class Fields {
 public:
  Fields(const ordered_json& obj, const std::string& label) : obj_(obj), label_(label) {}

  const ordered_json* find(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  [[noreturn]] void bad(const char* key, const std::string& found, const char* expected) const {
    throw Error("{}: field `{}` is {}; expected {}. Fix generation_config.json", label_, key, found,
                expected);
  }
  std::string show(const ordered_json& v) const {
    return fmt::format("{} {}", json_type_name(v), v.dump());
  }

  std::optional<bool> boolean(const char* key) const {
    const ordered_json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) bad(key, show(*v), "true or false");
    return v->get<bool>();
  }

  // A finite number; `ok` says whether the value is allowed, `expected` describes it.
  template <class Ok>
  std::optional<double> number(const char* key, Ok ok, const char* expected) const {
    const ordered_json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) bad(key, show(*v), expected);
    double d = v->get<double>();
    if (!std::isfinite(d) || !ok(d)) bad(key, v->dump(), expected);
    return d;
  }

  // A whole number in [lo, hi] (JSON integers only: 20.0 is refused, as transformers'
  // warpers refuse a float top_k).
  std::optional<int64_t> integer(const char* key, int64_t lo, int64_t hi, const char* expected) const {
    const ordered_json* v = find(key);
    if (!v) return std::nullopt;
    return integer_value(key, *v, lo, hi, expected);
  }

  int64_t integer_value(const char* key, const ordered_json& v, int64_t lo, int64_t hi,
                        const char* expected) const {
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(hi) || static_cast<int64_t>(u) < lo) bad(key, v.dump(), expected);
      return static_cast<int64_t>(u);
    }
    if (!v.is_number_integer()) bad(key, show(v), expected);
    int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) bad(key, v.dump(), expected);
    return i;
  }

 private:
  const ordered_json& obj_;
  const std::string& label_;
};

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

}  // namespace

GenerationConfig parse_generation_config(const std::string& json_text, const std::string& label) {
  ordered_json j;
  try {
    j = parse_json_strict(json_text, label);
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range for 1e999
    throw Error("{}: not valid JSON: {}; fix generation_config.json", label, e.what());
  }
  if (!j.is_object())
    throw Error("{}: expected a JSON object at the top level, found {}; this is not a "
                "generation_config.json",
                label, json_type_name(j));
  Fields f(j, label);
  GenerationConfig c;
  const auto has = [&](const char* key) { return j.contains(key); };

  if (auto v = f.boolean("do_sample")) c.do_sample = *v;
  // null disables a warper in transformers (`is not None` checks): map it to the value that
  // disables it here too.
  if (has("temperature"))
    c.temperature = f.number("temperature", [](double d) { return d >= 0; }, "a number >= 0")
                        .value_or(1.0);
  if (has("top_k"))
    c.top_k = static_cast<int>(f.integer("top_k", 0, kMaxInt, "a whole number >= 0 (0 disables top-k)")
                                   .value_or(0));
  if (has("top_p"))
    c.top_p = f.number("top_p", [](double d) { return d > 0 && d <= 1; },
                       "a number in (0, 1] (1 disables top-p)")
                  .value_or(1.0);
  c.min_p = f.number("min_p", [](double d) { return d >= 0 && d <= 1; }, "a number in [0, 1] or null");
  if (has("repetition_penalty"))
    c.repetition_penalty =
        f.number("repetition_penalty", [](double d) { return d > 0; }, "a number > 0 (1 disables it)")
            .value_or(1.0);
  if (auto v = f.integer("max_length", 1, kMaxInt, "a whole number >= 1")) c.max_length = int(*v);
  if (auto v = f.integer("max_new_tokens", 1, kMaxInt, "a whole number >= 1 or null"))
    c.max_new_tokens = int(*v);

  constexpr const char* kTokenId = "a token id (whole number >= 0)";
  if (auto v = f.integer("bos_token_id", 0, kMaxInt, kTokenId)) c.bos_token_id = int32_t(*v);
  if (auto v = f.integer("pad_token_id", 0, kMaxInt, kTokenId)) c.pad_token_id = int32_t(*v);
  if (const ordered_json* eos = f.find("eos_token_id")) {
    constexpr const char* kEos = "a token id (whole number >= 0) or a list of them";
    if (eos->is_array()) {
      for (const auto& e : *eos) c.eos_token_ids.push_back(int32_t(f.integer_value("eos_token_id", e, 0, kMaxInt, kEos)));
    } else {
      c.eos_token_ids.push_back(int32_t(f.integer_value("eos_token_id", *eos, 0, kMaxInt, kEos)));
    }
  }

  // transformers' TemperatureLogitsWarper raises for 0 when sampling; say so before generate.
  if (c.do_sample && c.temperature == 0.0)
    throw Error("{}: field `temperature` is 0 with `do_sample` true, which transformers refuses too; "
                "set do_sample to false for greedy decoding, or a temperature > 0",
                label);
  return c;
}

GenerationConfig load_generation_config(const fs::path& generation_config_json) {
  return parse_generation_config(read_file(generation_config_json), generation_config_json.string());
}

}  // namespace lorafit
