#include "lora/lora_config.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <regex>

#include <fmt/ranges.h>

#include "util/error.h"
#include "util/suggest.h"

namespace lorafit {

const char* proj_name(Proj p) {
  static const char* const names[kNumProj] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};
  return names[static_cast<int>(p)];
}

const char* proj_parent(Proj p) { return static_cast<int>(p) < 4 ? "self_attn" : "mlp"; }

std::string proj_path(Proj p) { return std::string(proj_parent(p)) + "." + proj_name(p); }

namespace {

bool is_name_list(const std::string& s) {
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ',' || c == ' '))
      return false;
  return true;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(' '), b = s.find_last_not_of(' ');
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

LoraTarget parse_lora_target(const std::string& spec) {
  LoraTarget t;
  const std::string s = trim(spec);
  if (s.empty()) throw Error("lora_target is empty: expected module names (q_proj,v_proj), all-linear, or a regex");
  if (s == "all-linear") {
    t.kind = LoraTarget::Kind::AllLinear;
    return t;
  }
  if (is_name_list(s)) {
    t.kind = LoraTarget::Kind::Names;
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      if (comma == std::string::npos) comma = s.size();
      std::string name = trim(s.substr(start, comma - start));
      if (name.empty())
        throw Error("lora_target '{}': empty module name between commas; write e.g. q_proj,v_proj", spec);
      t.names.push_back(name);
      start = comma + 1;
    }
    return t;
  }
  t.kind = LoraTarget::Kind::Regex;
  t.regex = s;
  try {
    std::regex re(s);
  } catch (const std::regex_error& e) {
    throw Error("lora_target '{}' is neither a list of module names nor a valid regex: {}", spec, e.what());
  }
  return t;
}

double LoraConfig::scale() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

void LoraConfig::validate() const {
  if (r <= 0) throw Error("lora_r = {}: the LoRA rank must be a positive integer (e.g. 8, 16, 64)", r);
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw Error("lora_dropout = {}: expected a probability in [0, 1) (e.g. 0.05 or 0.1)", dropout);
  if (!std::isfinite(alpha)) throw Error("lora_alpha = {}: expected a finite number (e.g. 16)", alpha);
}

std::vector<LinearModule> linear_modules(const ModelConfig& cfg) {
  const int64_t C = cfg.hidden_size, F = cfg.intermediate_size;
  const int64_t qd = static_cast<int64_t>(cfg.num_heads) * cfg.head_dim;
  const int64_t kvd = static_cast<int64_t>(cfg.num_kv_heads) * cfg.head_dim;
  const int64_t in[kNumProj] = {C, C, C, qd, C, C, F};
  const int64_t out[kNumProj] = {qd, kvd, kvd, C, F, F, C};
  std::vector<LinearModule> mods;
  for (int l = 0; l < cfg.num_layers; ++l)
    for (int p = 0; p < kNumProj; ++p) {
      LinearModule m;
      m.layer = l;
      m.proj = static_cast<Proj>(p);
      m.name = "model.layers." + std::to_string(l) + "." + proj_path(m.proj);
      m.in = in[p];
      m.out = out[p];
      mods.push_back(std::move(m));
    }
  return mods;
}

bool lora_target_matches(const LoraTarget& t, const std::string& module_name) {
  switch (t.kind) {
    case LoraTarget::Kind::AllLinear: return true;
    case LoraTarget::Kind::Regex: return std::regex_match(module_name, std::regex(t.regex));
    case LoraTarget::Kind::Names:
      for (const std::string& n : t.names) {
        if (module_name == n) return true;
        if (module_name.size() > n.size() &&
            module_name.compare(module_name.size() - n.size(), n.size(), n) == 0 &&
            module_name[module_name.size() - n.size() - 1] == '.')
          return true;
      }
      return false;
  }
  return false;
}

std::vector<LinearModule> select_lora_modules(const LoraConfig& cfg, const ModelConfig& model) {
  cfg.validate();
  std::vector<LinearModule> all = linear_modules(model), sel;
  for (LinearModule& m : all)
    if (lora_target_matches(cfg.target, m.name)) sel.push_back(m);
  if (sel.empty()) {
    std::string have;
    for (int p = 0; p < kNumProj; ++p)
      have += fmt::format("{}{}", p ? ", " : "", proj_path(static_cast<Proj>(p)));
    std::string want = cfg.target.kind == LoraTarget::Kind::Regex ? "regex '" + cfg.target.regex + "'"
                                                                  : fmt::format("{}", fmt::join(cfg.target.names, ","));
    throw Error("lora_target {} matches no module of the model; the Linear modules are "
                "model.layers.{{0..{}}}.{{{}}} (lm_head is never adapted); use names such as "
                "q_proj,v_proj, all-linear, or a regex over the full names",
                want, model.num_layers - 1, have);
  }
  return sel;
}

std::vector<std::string> lora_target_warnings(const LoraTarget& target, const ModelConfig& model) {
  std::vector<std::string> out;
  if (target.kind != LoraTarget::Kind::Names) return out;
  const std::vector<LinearModule> all = linear_modules(model);
  std::vector<std::string> have;
  for (int p = 0; p < kNumProj; ++p) have.push_back(proj_name(static_cast<Proj>(p)));
  for (const std::string& n : target.names) {
    const bool hit = std::any_of(all.begin(), all.end(), [&](const LinearModule& m) {
      return lora_target_matches(LoraTarget{LoraTarget::Kind::Names, {n}, ""}, m.name);
    });
    if (!hit)
      out.push_back(fmt::format("lora_target \"{}\" matches no module of the model{}; its Linear modules are {} "
                                "(in every model.layers.N; lm_head is never adapted)",
                                n, close_names(n, have, 1).empty() ? "" : " (did you mean " + close_names(n, have, 1)[0] + "?)",
                                fmt::join(have, ", ")));
  }
  return out;
}

}  // namespace lorafit
