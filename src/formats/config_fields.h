// Typed reads of one JSON object of a model's config.json (the top level, or a nested
// object such as rope_parameters); every message names the file and the field.
#pragma once
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "formats/json_util.h"
#include "util/error.h"

namespace lorafit {

class ConfigFields {
 public:
  // `prefix` names the nested object in messages ("rope_parameters." or "").
  ConfigFields(const ordered_json& j, const std::string& label, std::string prefix = "")
      : j_(j), label_(label), prefix_(std::move(prefix)) {}

  // Present and not null.
  bool has(const char* k) const { return j_.contains(k) && !j_[k].is_null(); }
  bool present(const char* k) const { return j_.contains(k); }
  const ordered_json& raw(const char* k) const { return j_[k]; }
  const ordered_json& json() const { return j_; }
  const std::string& label() const { return label_; }
  std::string name(const char* k) const { return prefix_ + k; }

  int integer(const char* k, const ordered_json& v) const {
    if (!v.is_number_integer())
      throw Error("{}: field `{}` = {} must be an integer", label_, name(k), v.dump());
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())
                               : v.get<int64_t>() < std::numeric_limits<int>::min())
      throw Error("{}: field `{}` = {} is out of range", label_, name(k), v.dump());
    return v.get<int>();
  }
  int required_size(const char* k) const {
    if (!has(k)) throw Error("{}: missing required field `{}`", label_, name(k));
    return positive(k, integer(k, j_[k]));
  }
  int size_or(const char* k, int def) const { return has(k) ? positive(k, integer(k, j_[k])) : def; }
  int positive(const char* k, int v) const {
    if (v <= 0) throw Error("{}: field `{}` = {} must be positive", label_, name(k), v);
    return v;
  }
  double number(const char* k) const {
    const auto& v = j_[k];
    if (!v.is_number()) throw Error("{}: field `{}` = {} must be a number", label_, name(k), v.dump());
    return v.get<double>();
  }
  double positive_number_or(const char* k, double def) const {
    if (!has(k)) return def;
    double d = number(k);
    if (!(d > 0) || !std::isfinite(d))
      throw Error("{}: field `{}` = {} must be a positive number", label_, name(k), j_[k].dump());
    return d;
  }
  std::optional<double> positive_number(const char* k) const {
    if (!has(k)) return std::nullopt;
    return positive_number_or(k, 0);
  }
  bool boolean_or(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j_[k].is_boolean())
      throw Error("{}: field `{}` = {} must be true or false", label_, name(k), j_[k].dump());
    return j_[k].get<bool>();
  }
  std::string string_or(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j_[k].is_string()) throw Error("{}: field `{}` = {} must be a string", label_, name(k), j_[k].dump());
    return j_[k].get<std::string>();
  }
  std::optional<int> token_or(const char* k, std::optional<int> def) const {
    if (!present(k)) return def;
    if (j_[k].is_null()) return std::nullopt;
    return integer(k, j_[k]);
  }

 private:
  const ordered_json& j_;
  const std::string& label_;
  std::string prefix_;
};

}  // namespace lorafit
