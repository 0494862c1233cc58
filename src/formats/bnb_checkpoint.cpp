#include "formats/bnb_checkpoint.h"

#include <cmath>

#include "util/error.h"

namespace lorafit {

namespace {

constexpr const char* kSupported =
    "lorafit loads bitsandbytes 4-bit checkpoints (quant_method \"bitsandbytes\" with load_in_4bit, nf4 or fp4), or "
    "quantizes a 16/32-bit model itself with --quantization_bit 4; use the unquantized model folder";

// What people call the quant_methods transformers knows (its QuantizationMethod), for messages.
std::string method_title(const std::string& m) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"gptq", "a GPTQ checkpoint"},
      {"awq", "an AWQ checkpoint"},
      {"aqlm", "an AQLM checkpoint"},
      {"vptq", "a VPTQ checkpoint"},
      {"quanto", "an optimum-quanto checkpoint"},
      {"eetq", "an EETQ checkpoint"},
      {"higgs", "a HIGGS checkpoint"},
      {"hqq", "an HQQ checkpoint"},
      {"compressed-tensors", "a compressed-tensors checkpoint"},
      {"fbgemm_fp8", "an FBGEMM FP8 checkpoint"},
      {"torchao", "a torchao checkpoint"},
      {"bitnet", "a BitNet checkpoint"},
      {"spqr", "a SpQR checkpoint"},
      {"fp8", "an FP8 checkpoint"},
      {"quark", "a Quark checkpoint"},
      {"fp_quant", "an FP-Quant checkpoint"},
      {"auto-round", "an AutoRound checkpoint"},
      {"mxfp4", "an MXFP4 checkpoint"}};
  for (const auto& [k, v] : kNames)
    if (m == k) return v;
  return "a quantization scheme lorafit does not know";
}

bool flag(const ordered_json& q, const char* k) { return q.contains(k) && q[k].is_boolean() && q[k].get<bool>(); }

std::string string_field(const ordered_json& q, const char* k, const std::string& def, const std::string& label) {
  if (!q.contains(k) || q[k].is_null()) return def;
  if (!q[k].is_string())
    throw Error("{}: field `quantization_config.{}` = {} must be a string", label, k, q[k].dump());
  return q[k].get<std::string>();
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// One QuantState tensor: present, of dtype `dt`, with `count` elements (any shape, as
// bitsandbytes reads them flat). `what` says what it holds, for messages.
const TensorInfo& state_tensor(const SafetensorsSet& files, const std::string& name, DType dt, int64_t count,
                               const std::string& what, const std::string& where) {
  const TensorInfo* t = files.find(name);
  if (!t) throw Error("{}: tensor \"{}\" is missing; a bitsandbytes 4-bit weight needs it ({})", where, name, what);
  int64_t n = 1;
  for (int64_t d : t->shape) n *= d;
  if (t->dtype != dt || n != count)
    throw Error("{}: tensor \"{}\" is {} {}; expected {} values of {} ({})", t->file, name, dtype_name(t->dtype),
                shape_str(t->shape), count, dtype_name(dt), what);
  return *t;
}

Tensor flat_view(const TensorInfo& t, int64_t count) {
  Tensor v = t.view();
  return Tensor(v.data, t.dtype, {count});
}

// The QuantState JSON (bitsandbytes' pack_dict_to_tensor: UTF-8 bytes of json.dumps).
struct StateJson {
  Quant4Type type;
  std::vector<int64_t> shape;
  float offset = 0.f;
};

const nlohmann::json& json_field(const nlohmann::json& j, const char* k, const std::string& label) {
  if (!j.contains(k)) throw Error("{}: the quant_state JSON has no \"{}\"", label, k);
  return j[k];
}

int64_t json_int(const nlohmann::json& j, const char* k, const std::string& label) {
  const nlohmann::json& v = json_field(j, k, label);
  if (!v.is_number_integer()) throw Error("{}: quant_state \"{}\" = {} must be an integer", label, k, v.dump());
  return v.get<int64_t>();
}

std::string json_str(const nlohmann::json& j, const char* k, const std::string& label) {
  const nlohmann::json& v = json_field(j, k, label);
  if (!v.is_string()) throw Error("{}: quant_state \"{}\" = {} must be a string", label, k, v.dump());
  return v.get<std::string>();
}

StateJson parse_state_json(const TensorInfo& t, bool nested) {
  const std::string label = fmt::format("{}: tensor \"{}\"", t.file, t.name);
  if (t.dtype != DType::U8 || t.shape.size() != 1)
    throw Error("{} is {} {}; expected the U8 bytes of bitsandbytes' quant_state JSON", label, dtype_name(t.dtype),
                shape_str(t.shape));
  const std::string text(reinterpret_cast<const char*>(t.data), t.nbytes);
  const nlohmann::json j = parse_json(text, label);  // Python's json.loads: a repeated key's last value wins
  if (!j.is_object()) throw Error("{}: the quant_state is JSON {}, expected an object", label, json_type_name(j));
  for (const auto& [k, v] : j.items()) {  // QuantState.from_dict asserts the keys are its own
    static const char* const kKeys[] = {"quant_type", "blocksize", "dtype", "shape", "nested_blocksize",
                                        "nested_dtype", "nested_offset"};
    bool known = false;
    for (const char* kk : kKeys) known = known || k == kk;
    if (!known) throw Error("{}: the quant_state JSON has an unknown key \"{}\"", label, k);
  }
  StateJson s;
  const std::string qt = json_str(j, "quant_type", label);
  const auto type = quant4_type_from_name(qt);
  if (!type) throw Error("{}: quant_state \"quant_type\" = \"{}\"; bitsandbytes 4-bit types are nf4 and fp4", label, qt);
  s.type = *type;
  if (const int64_t b = json_int(j, "blocksize", label); b != kQuant4Block)
    throw Error("{}: quant_state \"blocksize\" = {}; lorafit reads 4-bit blocks of {} only (bitsandbytes' default)",
                label, b, kQuant4Block);
  const std::string dt = json_str(j, "dtype", label);
  if (dt != "float32" && dt != "bfloat16" && dt != "float16")
    throw Error("{}: quant_state \"dtype\" = \"{}\"; expected float32, bfloat16 or float16", label, dt);
  const nlohmann::json& sh = json_field(j, "shape", label);
  if (!sh.is_array() || sh.size() != 2 || !sh[0].is_number_integer() || !sh[1].is_number_integer())
    throw Error("{}: quant_state \"shape\" = {}; expected [out_features, in_features]", label, sh.dump());
  s.shape = {sh[0].get<int64_t>(), sh[1].get<int64_t>()};
  if (nested) {
    if (const int64_t b = json_int(j, "nested_blocksize", label); b != kNestedBlock)
      throw Error("{}: quant_state \"nested_blocksize\" = {}; bitsandbytes' 4-bit kernels (and lorafit) need {}", label,
                  b, kNestedBlock);
    if (const std::string nd = json_str(j, "nested_dtype", label); nd != "float32")
      throw Error("{}: quant_state \"nested_dtype\" = \"{}\"; expected float32", label, nd);
    const nlohmann::json& off = json_field(j, "nested_offset", label);
    if (!off.is_number() || !std::isfinite(off.get<double>()))
      throw Error("{}: quant_state \"nested_offset\" = {} must be a finite number", label, off.dump());
    s.offset = static_cast<float>(off.get<double>());  // torch.tensor(float(...)): fp32
  } else if (j.contains("nested_offset") || j.contains("nested_blocksize")) {
    throw Error("{}: the quant_state JSON has nested (double quantization) fields, but config.json's "
                "bnb_4bit_use_double_quant is false",
                label);
  }
  return s;
}

}  // namespace

std::optional<Bnb4bitConfig> parse_quantization_config(const ordered_json& config, const std::string& label) {
  if (!config.contains("quantization_config") || config["quantization_config"].is_null()) return std::nullopt;
  const ordered_json& q = config["quantization_config"];
  if (!q.is_object())
    throw Error("{}: field `quantization_config` is a JSON {}, expected an object", label, json_type_name(q));
  const std::string method = string_field(q, "quant_method", "", label);
  if (!flag(q, "load_in_4bit")) {
    if (flag(q, "load_in_8bit"))
      throw Error("{}: quantization_config is bitsandbytes 8-bit (quant_method \"{}\", load_in_8bit true), which lorafit "
                  "does not support; {}",
                  label, method.empty() ? "bitsandbytes" : method, kSupported);
    if (method.empty())
      throw Error("{}: quantization_config has no quant_method (and no load_in_4bit); {}", label, kSupported);
    if (method == "bitsandbytes")
      throw Error("{}: quantization_config has quant_method \"bitsandbytes\" but neither load_in_4bit nor load_in_8bit "
                  "is true; {}",
                  label, kSupported);
    throw Error("{}: quantization_config has quant_method \"{}\" ({}), which lorafit does not support; {}", label,
                method, method_title(method), kSupported);
  }
  Bnb4bitConfig c;
  const std::string qt = string_field(q, "bnb_4bit_quant_type", "fp4", label);  // BitsAndBytesConfig's default
  const auto type = quant4_type_from_name(qt);
  if (!type)
    throw Error("{}: field `quantization_config.bnb_4bit_quant_type` = \"{}\"; bitsandbytes 4-bit types are nf4 and fp4",
                label, qt);
  c.quant_type = *type;
  c.double_quant = flag(q, "bnb_4bit_use_double_quant");
  c.compute_dtype = string_field(q, "bnb_4bit_compute_dtype", "float32", label);
  c.quant_storage = string_field(q, "bnb_4bit_quant_storage", "uint8", label);
  if (q.contains("llm_int8_skip_modules") && !q["llm_int8_skip_modules"].is_null()) {
    const ordered_json& s = q["llm_int8_skip_modules"];
    if (!s.is_array()) throw Error("{}: field `quantization_config.llm_int8_skip_modules` must be a list of names", label);
    c.skip_modules.emplace();
    for (const auto& e : s) {
      if (!e.is_string())
        throw Error("{}: field `quantization_config.llm_int8_skip_modules` has {}; expected module names", label,
                    e.dump());
      c.skip_modules->push_back(e.get<std::string>());
    }
  }
  return c;
}

bool bnb_skips_module(const Bnb4bitConfig& c, const std::string& module) {
  static const std::vector<std::string> kDefault = {"lm_head"};  // get_keys_to_not_convert: the output embedding
  const std::vector<std::string>& keys = c.skip_modules ? *c.skip_modules : kDefault;
  const std::string last = module.substr(module.rfind('.') + 1);  // npos + 1 = 0: the whole name
  for (const std::string& k : keys)
    if (k == last || k == module || module.find(k + ".") != std::string::npos) return true;
  return false;
}

std::vector<std::string> bnb4_state_names(const std::string& w, const Bnb4bitConfig& c) {
  std::vector<std::string> r = {w + ".absmax", w + ".quant_map"};
  if (c.double_quant) {
    r.push_back(w + ".nested_absmax");
    r.push_back(w + ".nested_quant_map");
  }
  r.push_back(fmt::format("{}.quant_state.bitsandbytes__{}", w, quant4_type_name(c.quant_type)));
  return r;
}

Quant4View read_bnb4_weight(const SafetensorsSet& files, const std::string& w, int64_t rows, int64_t cols,
                            const Bnb4bitConfig& c, const std::string& where) {
  const std::string qs_name = fmt::format("{}.quant_state.bitsandbytes__{}", w, quant4_type_name(c.quant_type));
  const TensorInfo* packed = files.find(w);
  if (!packed) throw Error("{}: tensor \"{}\" is missing; config.json implies shape {}", where, w, shape_str({rows, cols}));
  const TensorInfo* qs = files.find(qs_name);
  if (!qs) {
    const Quant4Type other = c.quant_type == Quant4Type::NF4 ? Quant4Type::FP4 : Quant4Type::NF4;
    const std::string other_name = fmt::format("{}.quant_state.bitsandbytes__{}", w, quant4_type_name(other));
    if (files.find(other_name))
      throw Error("{}: tensor \"{}\" is there but config.json's bnb_4bit_quant_type is {}: expected \"{}\"", where,
                  other_name, quant4_type_name(c.quant_type), qs_name);
    throw Error("{}: tensor \"{}\" is {} {}, but config.json's quantization_config (bitsandbytes 4-bit) quantizes this "
                "module: its quant_state \"{}\" is missing",
                packed->file, w, dtype_name(packed->dtype), shape_str(packed->shape), qs_name);
  }
  const StateJson s = parse_state_json(*qs, c.double_quant);
  if (s.shape != std::vector<int64_t>{rows, cols})
    throw Error("{}: tensor \"{}\": quant_state \"shape\" = {}, but config.json implies {}", qs->file, qs_name,
                shape_str(s.shape), shape_str({rows, cols}));
  const int64_t n = rows * cols, nb = (n + kQuant4Block - 1) / kQuant4Block, nn = (nb + kNestedBlock - 1) / kNestedBlock;
  // Any quant_storage dtype (uint8, bfloat16, ...): the codes are the bytes (Params4bit views them as uint8).
  const size_t es = dtype_size(packed->dtype);
  if (packed->nbytes != static_cast<size_t>((n + 1) / 2) || packed->shape.size() != 2 || packed->shape[1] != 1)
    throw Error("{}: tensor \"{}\" is {} {} ({} bytes); a 4-bit {} weight packs two codes per byte: expected [{}, 1] "
                "of {} ({} bytes)",
                packed->file, w, dtype_name(packed->dtype), shape_str(packed->shape), packed->nbytes,
                shape_str({rows, cols}), static_cast<size_t>((n + 1) / 2) / es, dtype_name(packed->dtype), (n + 1) / 2);
  Quant4View v;
  v.type = s.type;
  v.rows = rows;
  v.cols = cols;
  v.packed = Tensor(const_cast<uint8_t*>(packed->data), DType::U8, {(n + 1) / 2});
  const std::string shape = shape_str({rows, cols});
  if (c.double_quant) {
    v.absmax = flat_view(state_tensor(files, w + ".absmax", DType::U8, nb,
                                      fmt::format("one 8-bit absmax code per 64 of the {} weight's values", shape), where),
                         nb);
    v.nested_absmax = flat_view(
        state_tensor(files, w + ".nested_absmax", DType::F32, nn, "one absmax per 256 absmax codes", where), nn);
    v.code8 = flat_view(
        state_tensor(files, w + ".nested_quant_map", DType::F32, 256, "the 8-bit code of the absmax values", where), 256);
    v.offset = s.offset;
  } else {
    v.absmax = flat_view(state_tensor(files, w + ".absmax", DType::F32, nb,
                                      fmt::format("one absmax per 64 of the {} weight's values", shape), where),
                         nb);
  }
  state_tensor(files, w + ".quant_map", DType::F32, 16, "the 16 values of the 4-bit code", where);
  v.code4 = Tensor(const_cast<float*>(quant4_code(s.type)), DType::F32, {16});
  return v;
}

void refuse_4bit_checkpoint(const std::optional<Bnb4bitConfig>& c, const std::string& config_label,
                            const std::string& what_to_do) {
  if (!c) return;
  throw Error("{}: the model is a bitsandbytes 4-bit checkpoint (quantization_config: load_in_4bit, {}{}); {}",
              config_label, quant4_type_name(c->quant_type), c->double_quant ? ", double quantization" : "", what_to_do);
}

}  // namespace lorafit
