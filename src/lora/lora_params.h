// The LoRA parameter table: every A/B of the adapted modules in one contiguous fp32 buffer on
// the backend, laid out as four equal sections [params | grads | adam m | adam v] of P floats
// each, and one table (module, PEFT key, shape, offset) that every consumer walks: init,
// adapter save/load, AdamW, clipping, checkpoints and tests. Per-module views come only from
// weights(); nobody computes offsets by hand.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "lora/lora_config.h"
#include "lora/lora_linear.h"

namespace lorafit {

// One tensor of the table (each adapted module has an A and a B, and with DoRA an m).
struct LoraTensor {
  std::string key;      // PEFT key: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
  int module = 0;       // index into LoraParams::modules()
  bool is_B = false;    // A (r, I) or B (O, r)
  int64_t rows = 0, cols = 0;
  int64_t offset = 0;   // in floats from the start of a section
  bool is_m = false;    // DoRA magnitude (O): rows = O, cols = 1, PEFT key "....lora_magnitude_vector"
  int64_t numel() const { return rows * cols; }
  // The shape PEFT stores: [rows, cols], or [O] for the magnitude vector.
  std::vector<int64_t> shape() const { return is_m ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols}; }
};

class LoraParams {
 public:
  // Selects the modules (throws Error as select_lora_modules does) and allocates the buffer,
  // zero-filled (call lora_init_peft or load an adapter next).
  LoraParams(Backend& be, const LoraConfig& cfg, const ModelConfig& model);
  ~LoraParams();
  LoraParams(const LoraParams&) = delete;
  LoraParams& operator=(const LoraParams&) = delete;

  const LoraConfig& config() const { return cfg_; }
  Backend& backend() const { return be_; }
  const std::vector<LinearModule>& modules() const { return modules_; }
  const std::vector<LoraTensor>& tensors() const { return tensors_; }
  int64_t num_params() const { return P_; }  // P

  Tensor params() const { return section(0); }  // (P) the A/B values
  Tensor grads() const { return section(1); }   // (P) their gradients (accumulated +=)
  Tensor adam_m() const { return section(2); }  // (P)
  Tensor adam_v() const { return section(3); }  // (P)
  // The same tensor of the table inside a section: (rows, cols).
  Tensor view(const Tensor& sec, const LoraTensor& t) const;

  // The adapter of one projection (A, B, dA, dB, scale, dropout; with DoRA m, dm, norm), or
  // nullptr if not adapted.
  const LoraWeights* weights(int layer, Proj p) const;
  // Sets the dropout probability used by every adapter (e.g. 0 for parity runs, eval).
  void set_dropout(float p);

  void zero_grads();
  void zero_optimizer_state();

  // Host copies of the params section, for init, save, load and tests.
  std::vector<float> download_params() const;
  void upload_params(const std::vector<float>& host);

 private:
  Tensor section(int i) const;
  Backend& be_;
  LoraConfig cfg_;
  int num_layers_ = 0;
  std::vector<LinearModule> modules_;
  std::vector<LoraTensor> tensors_;
  std::vector<LoraWeights> weights_;  // (num_layers · 7); empty entries for modules not adapted
  int64_t P_ = 0;
  float* buf_ = nullptr;  // (4, P)
  float* norms_ = nullptr;  // (Σ O) DoRA: each module's detached ‖W + s·B·A‖ rows (not trained)
};

// PEFT's default init: A ~ kaiming_uniform(a=√5) = U(−1/√I, 1/√I), B = 0, from a seeded
// generator of our own (torch's stream is not reproduced; parity tests load A instead).
// With a bf16 base model PEFT rounds the initial A to bf16 (kept in fp32 afterwards).
void lora_init_peft(LoraParams& p, uint64_t seed, bool round_A_to_bf16);

// DoRA's init (PEFT dora_init): m = ‖W + s·B·A‖ per output row (= ‖W‖ while B = 0), with
// `weight(module)` the base weight (O, I) of each adapted module (on the backend),
// rounded to `norm_dtype` and kept in fp32: PEFT computes the init norm in the dtype of
// W + s·B·A, which is a 16-bit base's own dtype (A and B were moved to it) but fp32 on a 4-bit
// base (A, B stay fp32 and promote the dequantized weight). No-op without use_dora.
void lora_init_dora_magnitude(LoraParams& p, const std::function<Tensor(const LinearModule&)>& weight,
                              DType norm_dtype = DType::F32);

// Fills every A/B (and DoRA m) from tensors found by `find(PEFT key)` (nullptr = missing), checking shape
// and dtype (F32, BF16 or F16, converted to fp32). `label` names the source in messages.
struct TensorInfo;
void load_lora_tensors(LoraParams& p, const std::function<const TensorInfo*(const std::string&)>& find,
                       const std::string& label);

}  // namespace lorafit
