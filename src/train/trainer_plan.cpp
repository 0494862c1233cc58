// The pre-flight memory plan: what a run will hold, computed from config.json and the file
// sizes alone (before any weight is read), against the memory this process may take
// (sys::memory_budget: MemAvailable, the cgroup limits, RLIMIT_AS).

#include <algorithm>

#include "formats/model_config.h"
#include "lora/lora_config.h"
#include "lora/lora_adapter.h"
#include "model/weights.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace lorafit {

MemoryPlan plan_memory(const fs::path& model_dir, const TrainSettings& s, int64_t longest_T, DType act) {
  MemoryPlan p;
  for (const auto& e : fs::directory_iterator(model_dir))
    if (e.path().extension() == ".safetensors") p.weights += static_cast<double>(e.file_size());
  const ModelConfig c = load_model_config(model_dir / "config.json");
  // A bf16 run from a checkpoint in another dtype rounds a copy of the weights at load.
  if (act == DType::BF16 && c.torch_dtype != "bfloat16")
    p.weights *= c.torch_dtype == "float16" ? 2.0 : 1.5;  // fp32 files: + half their size
  const QuantConfig q = train_quant_config(s);
  // The 4-bit projections (quantized at load, or as a bitsandbytes checkpoint stores them: the same
  // bytes plus a few hundred per weight for quant_map and the quant_state JSON), the rest as the run
  // holds it, and the largest layer dequantized.
  if (q.enabled || c.bnb4) {
    const double es_file = c.torch_dtype == "float32" ? 4 : 2, es_rest = act == DType::BF16 ? 2 : es_file;
    const double es_act = static_cast<double>(dtype_size(act));
    const bool nested = c.bnb4 ? c.bnb4->double_quant : q.double_quant;
    double rest = 0;
    std::vector<double> layer_scratch(static_cast<size_t>(c.num_layers), 0.0);
    for (const ParamInfo& w : expected_params(c)) {
      int64_t n = 1;
      for (int64_t d : w.shape) n *= d;
      const bool four_bit = is_projection_weight(w.name) &&
                            !(c.bnb4 && bnb_skips_module(*c.bnb4, w.name.substr(0, w.name.rfind('.'))));
      if (!four_bit) {
        rest += es_rest * static_cast<double>(n);
        continue;
      }
      p.quantized += static_cast<double>(quant4_nbytes(n, nested));
      const size_t layer = std::stoul(w.name.substr(std::string("model.layers.").size()));
      layer_scratch[layer] += es_act * static_cast<double>(n);
    }
    for (double b : layer_scratch) p.dequant_scratch = std::max(p.dequant_scratch, b);
    p.weights = rest + p.quantized + p.dequant_scratch;
  }

  // LoRA: A (r, I) + B (O, r) per adapted module, and with DoRA the magnitude m (O); four fp32
  // sections (params, grads, Adam m, v) of them, plus DoRA's detached row norms n (O).
  LoraConfig lc;
  if (!s.adapter_name_or_path.empty()) {
    lc = load_peft_adapter_config(s.adapter_name_or_path);
  } else {
    lc.r = static_cast<int>(s.lora_r);
    lc.target = parse_lora_target(s.lora_target);
  }
  lc.use_dora = lc.use_dora || s.use_dora;
  double P = 0, dora_out = 0, max_out = 0;
  for (const LinearModule& m : select_lora_modules(lc, c)) {
    P += static_cast<double>(lc.r * (m.in + m.out) + (lc.use_dora ? m.out : 0));
    dora_out += lc.use_dora ? static_cast<double>(m.out) : 0;
    max_out = std::max(max_out, static_cast<double>(m.out));
  }
  p.lora_optimizer = 4 * 4 * P + 4 * dora_out;

  // Activations (es bytes each: 4 for F32, 2 for BF16) of the longest micro-batch, N = B·T tokens. One layer set:
  // norms, q/k/v, attention out, projections, residuals (≈ 8C + 2·H·D + 2·Hkv·D) and the MLP
  // (3F), plus LoRA's rank-r intermediates. Checkpointing keeps every layer's input (C) and
  // one set; without it every layer keeps its set. Gradient scratch is about one more set.
  const double N = static_cast<double>(s.per_device_train_batch_size * longest_T);
  const double C = c.hidden_size, F = c.intermediate_size, H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  const double per_set = N * (8 * C + 2 * H * D + 2 * Hkv * D + 3 * F + 7.0 * lc.r + (s.lora_dropout > 0 ? 3 * C + F : 0));
  const double L = c.num_layers;
  const double es = static_cast<double>(dtype_size(act));
  p.activations = es * (s.gradient_checkpointing ? (L + 1) * N * C + 2 * per_set : (L + 1) * per_set);
  // Workspace: the lm-head + CE chunks and the row buffers (N·C) plus a margin for BLAS/threads.
  p.workspace = es * (4 * N * C + N * 4096.0) + 64.0 * 1024 * 1024;
  // DoRA: one fp32 2·(N, max O) scratch (xd·Wᵀ and xa·Bᵀ, c⊙dy and (c − 1)⊙dy; bf16: 2·N·max(O, I)),
  // and a (64, max I) row block of B·A.
  if (lc.use_dora)
    p.workspace += 4 * (2 * N * (act == DType::BF16 ? std::max({max_out, C, F}) : max_out) + 64.0 * std::max(C, F));
  const sys::MemoryBudget budget = sys::memory_budget();  // MemAvailable, cgroup v1/v2, RLIMIT_AS
  p.available = static_cast<double>(budget.available_bytes);
  p.available_source = budget.source;
  return p;
}

}  // namespace lorafit
