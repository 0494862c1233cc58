// Adapters at inference against PEFT itself (tests/fixtures/adapter, written by
// tools/golden/make_adapter_fixtures.py: PEFT's get_peft_model + save_pretrained, non-zero B,
// and the logits transformers + PEFT gives for fixed ids), merged at load and exported merged.
//
// The Qwen3 and llama3-RoPE cases come from transformers 4.57.6 + PEFT 0.17.1 (RECENT_CASES).
//
// Tolerances, norm-wise ‖ours − ref‖₂ ≤ bound·‖ref‖₂ (derivation as in test_model_forward.cpp):
// both sides compute in fp32; a layer's reductions cost at most
//   e_layer = (3C + D [+ 2D with q_norm/k_norm] + T + H·D + C + F + 16 + 7(r + max(C, F) + 2))·eps32
// (the last term: the LoRA branch x·Aᵀ then ·Bᵀ of up to 7 projections), carried with gain one
// through the residual; final norm and lm head add 2(C + 2)·eps32; two implementations: ×2.
// Merged vs unmerged: the merged weight is rounded once to the base dtype. For a bf16 base each
// element moves by ≤ 2^-9 relative, ≤ 2^-9·‖|W||x|‖ per adapted linear; with up to 7 adapted
// linears per layer, and (as in test_model_forward) a factor 2 for gains ≈ 1:
//   bound_bf16 = 2·7·L·2^-9.  For an f32 base the merged sum rounds in fp32: e_layer again.
// DoRA (the *-dora cases, tools/golden/make_dora_fixtures.py, PEFT use_dora=True): each of the
// k adapted projections of a layer adds the row norm n (a length-I sum) and xd·Wᵀ once more
// (length I), so e_layer gains k·2·max(C, F)·eps32; the DoRA merge rescales each row by m/n (one more
// length-I sum and a product): the f32 merged bound is e_layer again.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <unistd.h>

#include <fstream>

#include "backend/backend.h"
#include "backend_parity.h"
#include "formats/safetensors.h"
#include "generate/adapter.h"
#include "lora/lora_adapter.h"

namespace lorafit {
namespace {

fs::path adapter_fixtures() { return fs::path(LORAFIT_FIXTURES) / "adapter"; }

struct Case {
  std::string name;
  std::vector<int32_t> ids;
  std::vector<float> peft_logits, base_logits;  // (T, V)
};

Case load_case(const std::string& name) {
  const SafetensorsFile f(adapter_fixtures() / (name + ".logits.safetensors"));
  Case c{name, {}, {}, {}};
  const TensorInfo* ids = f.find("input_ids");
  for (size_t i = 0; i < ids->nbytes / 8; ++i) {
    int64_t v;
    std::memcpy(&v, ids->data + 8 * i, 8);
    c.ids.push_back(static_cast<int32_t>(v));
  }
  for (auto [key, dst] : {std::pair{"logits", &c.peft_logits}, std::pair{"base_logits", &c.base_logits}}) {
    const TensorInfo* t = f.find(key);
    dst->resize(t->nbytes / 4);
    std::memcpy(dst->data(), t->data, t->nbytes);
  }
  return c;
}

std::vector<float> logits(const Model& m, const std::vector<int32_t>& ids, const LoraParams* lora) {
  Backend& be = m.backend();
  const auto T = static_cast<int64_t>(ids.size());
  const int64_t V = m.config().vocab_size;
  ActivationArena acts(be, m.config(), 1, T, 1, lora, false, m.act_dtype());
  acts.set_tokens(ids);
  m.forward(acts, lora);
  std::vector<float> host(static_cast<size_t>(T * V));
  void* buf = be.alloc(host.size() * 4);
  m.logits(Tensor(buf, DType::F32, {T, V}, be.device()), acts.hidden());
  be.download(host.data(), buf, host.size() * 4);
  be.free(buf);
  return host;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

double fp32_bound(const ModelConfig& c, int64_t T, int r, int64_t dora_proj = 0) {
  const int64_t wide = std::max(c.hidden_size, c.intermediate_size);
  const int64_t qk_norm = c.qk_norm ? 2 * c.head_dim : 0;  // Qwen3's q_norm and k_norm: two length-D sums
  const double e_layer = static_cast<double>(3 * c.hidden_size + c.head_dim + qk_norm + T + c.num_heads * c.head_dim +
                                             c.hidden_size + c.intermediate_size + 16 + 7 * (r + wide + 2) +
                                             dora_proj * 2 * wide) *
                         testing::kEps32;
  return 2 * (c.num_layers * e_layer + 2 * (c.hidden_size + 2) * testing::kEps32);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

class AdapterCase : public ::testing::TestWithParam<std::string> {};

TEST_P(AdapterCase, UnmergedMergedAndExportedMatchPeft) {
  const Case c = load_case(GetParam());
  const fs::path adir = adapter_fixtures() / c.name;
  const fs::path base = resolve_base_model(adir);
  auto be = make_backend("cpu");
  Model m(*be, base);
  const auto lora = load_adapter(*be, m.config(), adir);
  const auto T = static_cast<int64_t>(c.ids.size());
  const int64_t dora_proj =  // adapted projections per layer, with DoRA
      lora->config().use_dora ? static_cast<int64_t>(lora->modules().size()) / m.config().num_layers : 0;
  const double bound = fp32_bound(m.config(), T, lora->config().r, dora_proj);

  // Base and unmerged adapter against transformers / transformers + PEFT.
  EXPECT_LE(rel_l2(logits(m, c.ids, nullptr), c.base_logits), bound);
  const std::vector<float> unmerged = logits(m, c.ids, lora.get());
  EXPECT_LE(rel_l2(unmerged, c.peft_logits), bound);
  EXPECT_GT(rel_l2(c.base_logits, c.peft_logits), 100 * bound) << "the adapter must change the logits";

  // Exported merged folder (sharded: every tensor is larger than 1 byte, so one per shard).
  const fs::path out = fs::temp_directory_path() / ("lorafit_merge_" + c.name + std::to_string(::getpid()));
  fs::remove_all(out);
  MergeExportOptions opts;
  opts.max_shard_bytes = 1;
  EXPECT_EQ(export_merged(base, adir, out, opts), static_cast<int>(lora->modules().size()));
  EXPECT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(out / "config.json"));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
  const Model exported(*be, out);
  const std::vector<float> from_export = logits(exported, c.ids, nullptr);
  const bool bf16 = m.weights().dtype() == DType::BF16;
  const double merged_bound = bf16 ? 2.0 * 7 * m.config().num_layers / 512 : bound;
  EXPECT_LE(rel_l2(from_export, unmerged), merged_bound);
  if (bf16) {
    EXPECT_GT(rel_l2(from_export, unmerged), 0.0);  // rounded to bf16: not the fp32 result
  }

  // Merged at load: the same bytes as the export, so the same logits exactly.
  MergedWeights store;
  merge_adapter_into(m, *lora, store);
  EXPECT_EQ(logits(m, c.ids, nullptr), from_export);
  EXPECT_NE(error_of([&] { export_merged(base, adir, out); }).find("already exists"), std::string::npos);
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Peft, AdapterCase, ::testing::Values("qwen2-untied-bf16-all", "stories260K-qv-rslora",
                                                                    "qwen3-gqa-tied-f32-all", "qwen3-untied-bf16-all",
                                                                    "llama31-rope-f32-all", "qwen2-untied-bf16-dora",
                                                                    "stories260K-qv-dora-rslora"));

// DoRA merge against the weights PEFT's merge_and_unload() left (fixture merged.<name>.weight,
// fp32: the base was loaded as float32). Per element, V = w + s·B·A carries ≤ (r + 2)·u·(|w| +
// s·Σ|B||A|), the row norm ≤ (I + 2)·u relative, m/n and the product 2u more; both sides err
// (×2). A bf16 base file is merged and rounded once to bf16 by lorafit: + 2^-8·|W'| (bf16's
// unit roundoff; PEFT on a float32-loaded model keeps fp32).
class DoraMerge : public ::testing::TestWithParam<std::string> {};

TEST_P(DoraMerge, MergedWeightsMatchPeftMergeAndUnload) {
  const fs::path adir = adapter_fixtures() / GetParam();
  const fs::path base = resolve_base_model(adir);
  auto be = make_backend("cpu");
  const Model m(*be, base);
  const auto lora = load_adapter(*be, m.config(), adir);
  ASSERT_TRUE(lora->config().use_dora);
  const SafetensorsFile ref(adapter_fixtures() / (GetParam() + ".logits.safetensors"));
  const SafetensorsSet files(base);
  const std::vector<float> host = lora->download_params();
  const double s = lora->config().scale();
  const int64_t r = lora->config().r;
  for (size_t k = 0; k < lora->modules().size(); ++k) {
    const LinearModule& mod = lora->modules()[k];
    const TensorInfo* W = files.find(mod.name + ".weight");
    ASSERT_NE(W, nullptr);
    const std::vector<uint8_t> bytes = merged_weight(*be, *W, *lora, host, static_cast<int>(k));
    std::vector<float> ours(static_cast<size_t>(mod.out * mod.in)), w(ours.size());
    convert_to_f32(ours.data(), bytes.data(), W->dtype, ours.size());
    convert_to_f32(w.data(), W->data, W->dtype, w.size());
    const TensorInfo* want_t = ref.find("merged." + mod.name + ".weight");
    ASSERT_NE(want_t, nullptr) << mod.name;
    std::vector<float> want(ours.size());
    std::memcpy(want.data(), want_t->data, want_t->nbytes);
    const float *A = nullptr, *B = nullptr, *mag = nullptr;
    for (const LoraTensor& t : lora->tensors())
      if (t.module == static_cast<int>(k)) (t.is_m ? mag : t.is_B ? B : A) = host.data() + t.offset;
    ASSERT_TRUE(A && B && mag);
    const bool bf16 = W->dtype == DType::BF16;
    int bad = 0;
    bool changed = false;
    for (int64_t o = 0; o < mod.out; ++o) {
      // V = w + s·B·A and f = m/‖V‖ in double, for the size of each term.
      std::vector<double> v(static_cast<size_t>(mod.in)), aba(static_cast<size_t>(mod.in));
      double ss = 0;
      for (int64_t i = 0; i < mod.in; ++i) {
        double ba = 0;
        for (int64_t j = 0; j < r; ++j) {
          ba += static_cast<double>(B[o * r + j]) * A[j * mod.in + i];
          aba[static_cast<size_t>(i)] += std::fabs(static_cast<double>(B[o * r + j]) * A[j * mod.in + i]);
        }
        v[static_cast<size_t>(i)] = w[o * mod.in + i] + s * ba;
        ss += v[static_cast<size_t>(i)] * v[static_cast<size_t>(i)];
      }
      const double f = std::fabs(mag[o]) / std::sqrt(ss);
      for (int64_t i = 0; i < mod.in; ++i) {
        const auto ii = static_cast<size_t>(i);
        const double bound = 2 * testing::kEps32 *
                                 (static_cast<double>(r + 2) * f * (std::fabs(w[o * mod.in + i]) + s * aba[ii]) +
                                  static_cast<double>(mod.in + 5) * f * std::fabs(v[ii])) +
                             (bf16 ? std::ldexp(std::fabs(want[o * mod.in + i]), -8) : 0.0);
        const double got = ours[o * mod.in + i], ref_v = want[o * mod.in + i];
        changed = changed || got != w[o * mod.in + i];
        if (!(std::fabs(got - ref_v) <= bound) && ++bad <= 3)
          ADD_FAILURE() << mod.name << "[" << o << ", " << i << "]: ours " << got << " PEFT " << ref_v << " bound "
                        << bound;
      }
    }
    EXPECT_TRUE(changed) << mod.name << ": the merge must change the weight";
  }
}

INSTANTIATE_TEST_SUITE_P(Peft, DoraMerge, ::testing::Values("qwen2-untied-bf16-dora", "stories260K-qv-dora-rslora"));

// An unmerged DoRA adapter in a bf16 run (--dtype bf16) against PEFT under
// torch.autocast("cpu", bf16) on the bf16 base (bf16_logits; make_dora_fixtures.py), with the
// bounds of test_generate_bf16.cpp: the reference's bf16 run departs from its fp32 run (logits:
// the same bf16 weights upcast) only through its bf16 roundings; lorafit rounds at the same
// points (docs/precision.md "DoRA"), so max |ours − ref_bf16| ≤ max |ref_bf16 − ref_fp32| + one
// bf16 ulp of max |ref|, and it is closer to the bf16 run than to the fp32 run (rms).
TEST(AdapterDora, Bf16UnmergedFollowsPeftUnderAutocast) {
  const Case c = load_case("qwen2-untied-bf16-dora");
  const SafetensorsFile f(adapter_fixtures() / (c.name + ".logits.safetensors"));
  const TensorInfo* t = f.find("bf16_logits");
  ASSERT_NE(t, nullptr);
  std::vector<float> ref16(t->nbytes / 4);
  std::memcpy(ref16.data(), t->data, t->nbytes);
  const fs::path adir = adapter_fixtures() / c.name;
  auto be = make_backend("cpu");
  const Model m(*be, resolve_base_model(adir), DType::BF16);
  const auto lora = load_adapter(*be, m.config(), adir);
  const std::vector<float> ours = logits(m, c.ids, lora.get());
  ASSERT_EQ(ours.size(), ref16.size());
  double spread = 0, ref_max = 0, to16 = 0, to32 = 0, worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    spread = std::max(spread, std::fabs(static_cast<double>(ref16[i]) - c.peft_logits[i]));
    ref_max = std::max(ref_max, std::fabs(static_cast<double>(ref16[i])));
    worst = std::max(worst, std::fabs(static_cast<double>(ours[i]) - ref16[i]));
    to16 += std::pow(static_cast<double>(ours[i]) - ref16[i], 2);
    to32 += std::pow(static_cast<double>(ours[i]) - c.peft_logits[i], 2);
  }
  EXPECT_GT(spread, 0.0);
  EXPECT_LE(worst, spread + ref_max / 128) << "spread " << spread;
  EXPECT_LT(to16, to32) << "closer to the fp32 run than to the bf16 run";
  EXPECT_GT(rel_l2(ours, c.base_logits), 10 * rel_l2(ours, ref16)) << "the adapter must change the logits";
}

// A DoRA adapter written by lorafit: PEFT's keys and shapes (lora_magnitude_vector [O], no
// ".weight"), use_dora true; reading it back gives the same values bit for bit.
TEST(AdapterDora, SaveRoundTrips) {
  auto be = make_backend("cpu");
  const fs::path adir = adapter_fixtures() / "stories260K-qv-dora-rslora";
  const Model m(*be, resolve_base_model(adir));
  const auto lora = load_adapter(*be, m.config(), adir);
  const fs::path out = fs::temp_directory_path() / ("lorafit_dora_save" + std::to_string(::getpid()));
  fs::remove_all(out);
  save_peft_adapter(out, *lora, "base");
  EXPECT_NE(read_file(out / "adapter_config.json").find("\"use_dora\": true"), std::string::npos);
  const SafetensorsFile f(out / "adapter_model.safetensors");
  const TensorInfo* mv = f.find("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector");
  ASSERT_NE(mv, nullptr);
  EXPECT_EQ(mv->shape, std::vector<int64_t>({m.config().num_heads * m.config().head_dim}));
  const auto again = load_adapter(*be, m.config(), out);
  EXPECT_EQ(again->download_params(), lora->download_params());
  fs::remove_all(out);
}

// use_dora true but no magnitude vector in the weights: named, not zeros.
TEST(AdapterDora, MissingMagnitudeIsNamed) {
  auto be = make_backend("cpu");
  const fs::path adir = adapter_fixtures() / "stories260K-qv-dora-rslora";
  const Model m(*be, resolve_base_model(adir));
  const fs::path tmp = fs::temp_directory_path() / ("lorafit_dora_nomag" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fs::copy_file(adir / "adapter_config.json", tmp / "adapter_config.json");
  const SafetensorsFile f(adir / "adapter_model.safetensors");
  std::vector<TensorToWrite> keep;
  for (const TensorInfo& t : f.tensors())
    if (t.name.find("lora_magnitude_vector") == std::string::npos || t.name.find("layers.1.self_attn.v_proj") == std::string::npos)
      keep.push_back({t.name, t.dtype, t.shape, std::span<const uint8_t>(t.data, t.nbytes)});
  ASSERT_EQ(keep.size() + 1, f.tensors().size());
  safetensors_save(tmp / "adapter_model.safetensors", keep, {{"format", "pt"}});
  const std::string e = error_of([&] { load_adapter(*be, m.config(), tmp); });
  EXPECT_NE(e.find("tensor 'base_model.model.model.layers.1.self_attn.v_proj.lora_magnitude_vector' is missing; a "
                   "DoRA adapter (use_dora: true) needs a lora_magnitude_vector"),
            std::string::npos)
      << e;
  fs::remove_all(tmp);
}

TEST(AdapterErrors, RefusedByName) {
  auto be = make_backend("cpu");
  const fs::path stories = fs::path(LORAFIT_TEST_DATA) / "stories260K";
  const Model m(*be, stories);
  const fs::path tmp = fs::temp_directory_path() / ("lorafit_adapter_bad" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "noconfig");
  fs::create_directories(tmp / "noweights");
  fs::copy_file(adapter_fixtures() / "stories260K-qv-rslora" / "adapter_config.json",
                tmp / "noweights" / "adapter_config.json");
  auto load = [&](const fs::path& d) { return error_of([&] { load_adapter(*be, m.config(), d); }); };
  EXPECT_NE(load(tmp / "nope").find("does not exist"), std::string::npos);
  EXPECT_NE(load(tmp / "noconfig").find("no adapter_config.json"), std::string::npos);
  EXPECT_NE(load(tmp / "noweights").find("no adapter_model.safetensors"), std::string::npos);
  // An adapter trained on another base: stories260K has hidden 64, the bf16 fixture 96.
  const std::string other = load(adapter_fixtures() / "qwen2-untied-bf16-all");
  EXPECT_NE(other.find("model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 96], expected [4, 64]"),
            std::string::npos)
      << other;
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace lorafit
