#include "formats/rope.h"

#include <cmath>
#include <numbers>

#include "formats/config_fields.h"

namespace lorafit {

namespace {

constexpr const char* kSupported = "default, llama3, yarn";

// Every parameter each type reads; anything else in the object is refused (a field lorafit
// would ignore while transformers uses it, or a typo, must not pass silently).
bool known_param(RopeType t, const std::string& k) {
  if (k == "rope_type" || k == "type" || k == "rope_theta") return true;
  switch (t) {
    case RopeType::Default: return false;
    case RopeType::Llama3:
      return k == "factor" || k == "low_freq_factor" || k == "high_freq_factor" ||
             k == "original_max_position_embeddings";
    case RopeType::Yarn:
      return k == "factor" || k == "original_max_position_embeddings" || k == "attention_factor" ||
             k == "mscale" || k == "mscale_all_dim" || k == "beta_fast" || k == "beta_slow" || k == "truncate";
  }
  return false;
}

// One rope object (rope_scaling or rope_parameters) into `r` (theta excepted).
RopeConfig parse_rope_object(const ConfigFields& f, const std::string& what) {
  const std::string rt = f.string_or("rope_type", ""), ty = f.string_or("type", "");
  if (!rt.empty() && !ty.empty() && rt != ty)
    throw Error("{}: fields `{}.rope_type` = \"{}\" and `{}.type` = \"{}\" disagree; keep one", f.label(), what, rt,
                what, ty);
  const std::string type = rt.empty() ? ty : rt;
  if (type.empty())
    throw Error("{}: field `{}` has no `rope_type`; supported rope types: {}", f.label(), what, kSupported);
  RopeConfig r;
  if (type == "default") r.type = RopeType::Default;
  else if (type == "llama3") r.type = RopeType::Llama3;
  else if (type == "yarn") r.type = RopeType::Yarn;
  else
    throw Error("{}: field `{}`: rope_type \"{}\" is not supported; supported rope types: {}", f.label(), what, type,
                kSupported);
  for (const auto& [k, v] : f.json().items()) {
    if (k == "partial_rotary_factor" && v.is_number() && v.get<double>() == 1.0) continue;
    if (!known_param(r.type, k))
      throw Error("{}: field `{}.{}` is not a parameter of rope_type \"{}\" that lorafit implements; remove it or use "
                  "a model whose config does not need it",
                  f.label(), what, k, type);
  }
  auto required = [&](const char* k) {
    if (!f.has(k)) throw Error("{}: rope_type \"{}\" needs field `{}.{}`", f.label(), type, what, k);
    return f.positive_number_or(k, 0);
  };
  if (r.type == RopeType::Llama3) {
    r.factor = required("factor");
    r.low_freq_factor = required("low_freq_factor");
    r.high_freq_factor = required("high_freq_factor");
    if (r.high_freq_factor == r.low_freq_factor)
      throw Error("{}: fields `{}.low_freq_factor` and `high_freq_factor` are equal ({}); transformers divides by their "
                  "difference",
                  f.label(), what, r.low_freq_factor);
    required("original_max_position_embeddings");
    r.original_max_position_embeddings = f.size_or("original_max_position_embeddings", 0);
  } else if (r.type == RopeType::Yarn) {
    r.factor = required("factor");
    r.original_max_position_embeddings = f.size_or("original_max_position_embeddings", 0);
    r.attention_factor = f.positive_number("attention_factor");
    r.mscale = f.has("mscale") ? std::optional(f.number("mscale")) : std::nullopt;
    r.mscale_all_dim = f.has("mscale_all_dim") ? std::optional(f.number("mscale_all_dim")) : std::nullopt;
    // transformers: `get("beta_fast") or 32`, so 0 means the default too
    if (f.has("beta_fast") && f.number("beta_fast") != 0) r.beta_fast = f.number("beta_fast");
    if (f.has("beta_slow") && f.number("beta_slow") != 0) r.beta_slow = f.number("beta_slow");
    r.truncate = f.boolean_or("truncate", true);
  }
  return r;
}

std::string num(double v) { return fmt::format("{}", v); }

}  // namespace

const char* rope_type_name(RopeType t) {
  switch (t) {
    case RopeType::Default: return "default";
    case RopeType::Llama3: return "llama3";
    case RopeType::Yarn: return "yarn";
  }
  return "?";
}

RopeConfig parse_rope_config(const ConfigFields& top) {
  const std::string& label = top.label();
  std::optional<RopeConfig> v4, v5;  // rope_scaling (plain when null), rope_parameters
  if (top.present("rope_scaling")) {
    const auto& rs = top.raw("rope_scaling");
    if (rs.is_null()) v4 = RopeConfig{};
    else if (!rs.is_object())
      throw Error("{}: field `rope_scaling` = {} must be an object or null", label, rs.dump());
    else v4 = parse_rope_object(ConfigFields(rs, label, "rope_scaling."), "rope_scaling");
  }
  if (top.has("rope_parameters")) {
    const auto& rp = top.raw("rope_parameters");
    if (!rp.is_object())
      throw Error("{}: field `rope_parameters` = {} must be an object", label, rp.dump());
    if (rp.contains("full_attention") || rp.contains("sliding_attention"))
      throw Error("{}: field `rope_parameters` gives one rope per layer type; lorafit supports one rope for all layers",
                  label);
    ConfigFields f(rp, label, "rope_parameters.");
    v5 = parse_rope_object(f, "rope_parameters");
    if (!f.has("rope_theta")) throw Error("{}: missing field `rope_parameters.rope_theta`", label);
    v5->theta = f.positive_number_or("rope_theta", 0);
  }
  // rope_theta: top level (transformers 4) vs rope_parameters (5).
  const std::optional<double> theta4 = top.positive_number("rope_theta");
  if (theta4 && v5 && *theta4 != v5->theta)
    throw Error("{}: fields `rope_theta` = {} and `rope_parameters.rope_theta` = {} disagree; keep one", label,
                num(*theta4), num(v5->theta));
  if (v4 && v5) {
    RopeConfig a = *v4;
    a.theta = v5->theta;
    if (!(a == *v5))
      throw Error("{}: fields `rope_scaling` ({}) and `rope_parameters` ({}) disagree; keep one", label,
                  rope_description(a), rope_description(*v5));
  }
  RopeConfig r = v5 ? *v5 : v4 ? *v4 : RopeConfig{};
  if (!v5) r.theta = theta4.value_or(10000.0);
  if (top.has("partial_rotary_factor") && top.number("partial_rotary_factor") != 1.0)
    throw Error("{}: field `partial_rotary_factor` = {} is not supported; lorafit rotates the whole head (1.0)", label,
                top.raw("partial_rotary_factor").dump());
  return r;
}

std::vector<float> rope_default_inv_freq(int head_dim, double theta) {
  // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in fp32
  std::vector<float> f(static_cast<size_t>(head_dim / 2));
  const float base = static_cast<float>(theta);
  for (int i = 0; i < head_dim / 2; ++i)
    f[static_cast<size_t>(i)] = 1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  return f;
}

namespace {

// _compute_llama3_parameters: tensors are fp32, Python scalars enter each op as fp32.
void apply_llama3(std::vector<float>& inv, const RopeConfig& r) {
  const double old_len = r.original_max_position_embeddings;
  const float low_wl = static_cast<float>(old_len / r.low_freq_factor);
  const float high_wl = static_cast<float>(old_len / r.high_freq_factor);
  const float two_pi = static_cast<float>(2 * std::numbers::pi), factor = static_cast<float>(r.factor);
  const float lo = static_cast<float>(r.low_freq_factor);
  const float span = static_cast<float>(r.high_freq_factor - r.low_freq_factor);
  for (float& f : inv) {
    const float wavelen = two_pi / f;
    const float scaled = wavelen > low_wl ? f / factor : f;
    const float smooth = (static_cast<float>(old_len) / wavelen - lo) / span;
    const float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
    const bool medium = !(wavelen < high_wl) && !(wavelen > low_wl);
    f = medium ? smoothed : scaled;
  }
}

double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// _compute_yarn_parameters; returns the attention factor.
double apply_yarn(std::vector<float>& inv, const RopeConfig& r, int dim, int max_position_embeddings) {
  const double base = r.theta, factor = r.factor;
  const double orig = r.original_max_position_embeddings ? r.original_max_position_embeddings : max_position_embeddings;
  double attention = 0;
  if (r.attention_factor) attention = *r.attention_factor;
  else if (r.mscale && *r.mscale != 0 && r.mscale_all_dim && *r.mscale_all_dim != 0)
    attention = yarn_mscale(factor, *r.mscale) / yarn_mscale(factor, *r.mscale_all_dim);
  else attention = yarn_mscale(factor, 1);
  auto correction_dim = [&](double rotations) {
    return (dim * std::log(orig / (rotations * 2 * std::numbers::pi))) / (2 * std::log(base));
  };
  double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // transformers: "prevent singularity"
  const float fbase = static_cast<float>(base), ffactor = static_cast<float>(factor);
  // linear_ramp_factor: (arange(dim/2, fp32) - low) / (high - low), the Python scalars (low, and
  // high - low computed in double) each rounded to fp32, a true fp32 division (checked against
  // torch 2.5.1: a reciprocal multiply differs in the last bit).
  const float flow = static_cast<float>(low), span = static_cast<float>(high - low);
  for (size_t i = 0; i < inv.size(); ++i) {
    const float pos_freq = std::pow(fbase, static_cast<float>(2 * i) / static_cast<float>(dim));
    const float extrapolation = 1.0f / pos_freq, interpolation = 1.0f / (ffactor * pos_freq);
    const float ramp = std::clamp((static_cast<float>(i) - flow) / span, 0.0f, 1.0f);
    const float extra_factor = 1.0f - ramp;
    inv[i] = interpolation * (1.0f - extra_factor) + extrapolation * extra_factor;
  }
  return attention;
}

}  // namespace

RopeTable rope_table(const RopeConfig& r, int head_dim, int max_position_embeddings) {
  RopeTable t;
  t.inv_freq = rope_default_inv_freq(head_dim, r.theta);
  if (r.type == RopeType::Llama3) apply_llama3(t.inv_freq, r);
  if (r.type == RopeType::Yarn)
    t.attention_scaling = static_cast<float>(apply_yarn(t.inv_freq, r, head_dim, max_position_embeddings));
  return t;
}

std::string rope_description(const RopeConfig& r) {
  std::string s = fmt::format("{} (theta {}", rope_type_name(r.type), num(r.theta));
  if (r.type == RopeType::Llama3)
    s += fmt::format(", factor {}, low_freq_factor {}, high_freq_factor {}, original_max_position_embeddings {}",
                     num(r.factor), num(r.low_freq_factor), num(r.high_freq_factor), r.original_max_position_embeddings);
  if (r.type == RopeType::Yarn) {
    s += fmt::format(", factor {}", num(r.factor));
    if (r.original_max_position_embeddings)
      s += fmt::format(", original_max_position_embeddings {}", r.original_max_position_embeddings);
    if (r.attention_factor) s += fmt::format(", attention_factor {}", num(*r.attention_factor));
    if (r.mscale) s += fmt::format(", mscale {}", num(*r.mscale));
    if (r.mscale_all_dim) s += fmt::format(", mscale_all_dim {}", num(*r.mscale_all_dim));
    if (r.beta_fast != 32) s += fmt::format(", beta_fast {}", num(r.beta_fast));
    if (r.beta_slow != 1) s += fmt::format(", beta_slow {}", num(r.beta_slow));
    if (!r.truncate) s += ", truncate false";
  }
  return s + ")";
}

}  // namespace lorafit
