// Rotary position embedding settings of config.json and the frequencies they imply, computed
// as transformers 4.57's modeling_rope_utils does (ROPE_INIT_FUNCTIONS "default", "llama3",
// "yarn"), in the same fp32/double order so the tables are equal bit for bit.
//
// Two spellings exist: transformers 4 writes a top-level `rope_theta` and `rope_scaling`
// {rope_type|type, factor, ...}; transformers 5 writes `rope_parameters` {rope_theta,
// rope_type, factor, ...}. Either is read; both present and disagreeing is refused.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace lorafit {

class ConfigFields;

enum class RopeType { Default, Llama3, Yarn };
const char* rope_type_name(RopeType t);  // "default", "llama3", "yarn"

struct RopeConfig {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  double factor = 1.0;                                 // llama3, yarn
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int original_max_position_embeddings = 0;            // llama3; yarn (0: max_position_embeddings)
  std::optional<double> attention_factor, mscale, mscale_all_dim;  // yarn
  double beta_fast = 32.0, beta_slow = 1.0;            // yarn
  bool truncate = true;                                // yarn
  bool operator==(const RopeConfig&) const = default;
};

// Reads rope_theta / rope_scaling / rope_parameters of the top-level config object. Throws
// Error naming the file and field for an unsupported rope type (listing the supported ones),
// a missing or invalid parameter, a parameter the type does not use, or the two spellings
// disagreeing.
RopeConfig parse_rope_config(const ConfigFields& top);

// What rope_forward needs: inv_freq (D/2) fp32 and the factor transformers multiplies cos
// and sin by (yarn's attention_factor; 1 otherwise).
struct RopeTable {
  std::vector<float> inv_freq;  // (D/2)
  float attention_scaling = 1.0f;
};
// inv_freq[i] = 1 / theta^(2i/D) in fp32, as _compute_default_rope_parameters.
std::vector<float> rope_default_inv_freq(int head_dim, double theta);
RopeTable rope_table(const RopeConfig& r, int head_dim, int max_position_embeddings);

// One line for messages and the run record: "llama3 (theta 500000, factor 8, ...)".
std::string rope_description(const RopeConfig& r);

}  // namespace lorafit
