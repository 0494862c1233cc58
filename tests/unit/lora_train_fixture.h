// Reads a training golden case (tests/fixtures/train/<case>/, written by
// tools/golden/make_train_fixtures.py from transformers 4.46.3 + PEFT 0.13.2): case.json and
// tensors.safetensors (ids.K / labels.K I64 per micro-batch, init./gradcheck_B./
// gradcheck_grad./grad1./final. + PEFT key). Shared by test_model_backward*.cpp and
// test_train_*.cpp.
#pragma once
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cfloat>
#include <memory>
#include <string>
#include <vector>

#include "formats/model_config.h"
#include "formats/safetensors.h"
#include "lora/lora_params.h"
#include "model/model.h"
#include "train/dora_init.h"
#include "train/train_step.h"
#include "util/file.h"

namespace lorafit::testing {

struct TrainCase {
  std::string name;
  nlohmann::json doc;
  std::unique_ptr<SafetensorsFile> st;
  fs::path model_dir;

  explicit TrainCase(const std::string& case_name) : name(case_name) {
    const fs::path dir = fs::path(LORAFIT_FIXTURES) / "train" / case_name;
    doc = nlohmann::json::parse(read_file(dir / "case.json"));
    st = std::make_unique<SafetensorsFile>(dir / "tensors.safetensors");
    const std::string md = doc["model_dir"].get<std::string>();
    model_dir = md == "data:stories260K" ? fs::path(LORAFIT_TEST_DATA) / "stories260K" : fs::path(LORAFIT_FIXTURES) / md;
  }

  // "quant" (tools/golden/make_qlora_fixtures.py): the 4-bit base weights of a QLoRA case.
  QuantConfig quant() const {
    if (!doc.contains("quant")) return {};
    const auto& q = doc["quant"];
    return parse_quant_config(4, q["quant_type"].get<std::string>(), q["double_quant"].get<bool>(), "");
  }

  LoraConfig lora_config() const {
    LoraConfig c;
    const auto& l = doc["lora"];
    c.r = l["r"].get<int>();
    c.alpha = l["alpha"].get<double>();
    c.dropout = l["dropout"].get<double>();
    c.use_rslora = l["use_rslora"].get<bool>();
    c.use_dora = l.value("use_dora", false);  // the *-dora cases (tools/golden/make_dora_fixtures.py)
    c.target.kind = LoraTarget::Kind::Names;
    c.target.names = l["target_modules"].get<std::vector<std::string>>();
    return c;
  }

  const TensorInfo& tensor(const std::string& key) const {
    const TensorInfo* t = st->find(key);
    if (!t) throw Error("fixture {}: no tensor {}", name, key);
    return *t;
  }

  // Tensors "prefix.<PEFT key>" as the LoRA table's lookup.
  void load_lora(LoraParams& p, const std::string& prefix) const {
    load_lora_tensors(p, [&](const std::string& k) { return st->find(prefix + "." + k); }, name + ":" + prefix);
  }
  // A with init., B with gradcheck_B. (the gradient-check point: B ≠ 0 so dA ≠ 0)
  void load_gradcheck_point(LoraParams& p) const {
    load_lora_tensors(
        p,
        [&](const std::string& k) {
          return st->find((k.find(".lora_B.") != std::string::npos ? "gradcheck_B." : "init.") + k);
        },
        name + ":gradcheck");
  }

  std::vector<float> floats(const std::string& key) const {
    const TensorInfo& t = tensor(key);
    std::vector<float> v(t.nbytes / dtype_size(t.dtype));
    convert_to_f32(v.data(), t.data, t.dtype, v.size());
    return v;
  }

  MicroBatch micro_batch(int k) const {
    const TensorInfo& ids = tensor("ids." + std::to_string(k));
    const TensorInfo& labels = tensor("labels." + std::to_string(k));
    MicroBatch mb;
    mb.B = ids.shape[0];
    mb.T = ids.shape[1];
    const auto* pi = reinterpret_cast<const int64_t*>(ids.data);
    const auto* pl = reinterpret_cast<const int64_t*>(labels.data);
    for (int64_t i = 0; i < mb.B * mb.T; ++i) {
      mb.ids.push_back(static_cast<int32_t>(pi[i]));
      mb.labels.push_back(static_cast<int32_t>(pl[i]));
    }
    return mb;
  }
  int num_micro_batches() const { return doc["data"]["num_micro_batches"].get<int>(); }
};


// A worst-case fp32 bound for a whole forward/backward compared with another fp32
// implementation (torch) that sums in a different order: each of the ~12 chained ops per layer
// (norm, 3 projections, rope, attention, o, norm, gate/up, swiglu, down, residual; and as many
// in the backward) plus ~4 in the head contributes at most K·u relative error, K the longest
// reduction (max of C, F, T and V). Both sides err, so twice: rel = 2·(12·L + 4)·K·u.
// DoRA: each of the 7 projections adds two more K-long reductions in series with its GEMM
// (the row norm n, and xd·Wᵀ recomputed for (c − 1)⊙…), so 12 + 7·2 = 26 ops per layer.
inline double model_rel_bound(const ModelConfig& c, int64_t T, bool dora = false) {
  const int64_t K = std::max<int64_t>({c.hidden_size, c.intermediate_size, c.vocab_size, T});
  const double ops = dora ? 26.0 : 12.0;
  return 2.0 * (ops * c.num_layers + 4.0) * static_cast<double>(K) * (FLT_EPSILON / 2);
}

// The DoRA magnitude init of a case: PEFT's ("init." tensors of the fixture) and lorafit's
// (init_dora_magnitude_from_base on m), one pair per magnitude tensor of the adapter.
struct MagnitudeInit {
  std::string key;
  std::vector<float> got, want;  // (O) each
};
inline std::vector<MagnitudeInit> dora_magnitude_init(Backend& be, const TrainCase& tc, const Model& m) {
  LoraParams p(be, tc.lora_config(), m.config());
  tc.load_lora(p, "init");
  const std::vector<float> want = p.download_params();
  init_dora_magnitude_from_base(p, m);
  const std::vector<float> got = p.download_params();
  std::vector<MagnitudeInit> out;
  for (const LoraTensor& t : p.tensors()) {
    if (!t.is_m) continue;
    const auto at = [&](const std::vector<float>& v) {
      return std::vector<float>(v.begin() + t.offset, v.begin() + t.offset + t.numel());
    };
    out.push_back({t.key, at(got), at(want)});
  }
  return out;
}

}  // namespace lorafit::testing
