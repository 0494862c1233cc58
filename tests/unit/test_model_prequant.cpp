// Pre-quantized bitsandbytes 4-bit checkpoints (formats/bnb_checkpoint.h) against transformers
// 4.57.6 + bitsandbytes 0.50.2 (fixtures by tools/golden/make_prequant_fixtures.py):
// tests/fixtures/models/{qwen2-bnb-nf4-dq, llama-bnb-fp4} as save_pretrained wrote them, and
// tests/fixtures/prequant/<name>.safetensors with the reloaded model's logits and bitsandbytes'
// dequantized layer-0 weights.
//
// The dequantized weights must equal bitsandbytes' bit for bit (code[q]·absmax in fp32, the
// nested absmax code8[q8]·nested + offset): then the only differences left are accumulation
// order and the compute dtype, and the bounds are those of test_model_forward.cpp:
//  - llama-bnb-fp4, stories260K-bnb-nf4 (fp32 models, compute dtype float32): both sides in fp32, a layer adds at most
//    e_layer = (3C + D + T + H·D + C + F + 16)·eps32 relative error on each side, the final norm
//    and the lm head (C + 2)·eps32 each: bound = 2·(L·e_layer + 2·(C + 2)·eps32).
//  - qwen2-bnb-nf4-dq (bf16 model, compute dtype bfloat16): both sides round every activation
//    to bf16 (u = 2^-9), about 12 roundings per layer and 3 outside, each side within
//    (12·L + 3)·u of the exact values: bound = 2·(12·L + 3)·2^-9 = (12·L + 3)·2^-8.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "backend/backend.h"
#include "backend_parity.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "util/error.h"
#include "util/file.h"

namespace lorafit {
namespace {

fs::path fixtures() { return fs::path(LORAFIT_FIXTURES); }

std::vector<float> to_f32(const void* p, DType t, size_t n) {
  std::vector<float> v(n);
  convert_to_f32(v.data(), p, t, n);
  return v;
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

struct Case {
  std::string name;
  DType act;
  int quantized;  // 4-bit Linear modules transformers made
};
const Case kCases[] = {
    {"qwen2-bnb-nf4-dq", DType::BF16, 14}, {"llama-bnb-fp4", DType::F32, 20}, {"stories260K-bnb-nf4", DType::F32, 35}};

TEST(ModelPrequant, DequantizedWeightsEqualBitsandbytes) {
  auto be = make_backend("cpu");
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Model m(*be, fixtures() / "models" / c.name, DType::F32);
    ASSERT_TRUE(m.config().bnb4.has_value());
    int n4 = 0, checked = 0;
    for (const ParamInfo& p : m.weights().params()) n4 += p.quant ? 1 : 0;
    EXPECT_EQ(n4, c.quantized);
    SafetensorsFile fx(fixtures() / "prequant" / (c.name + ".safetensors"));
    const LayerWeights w = m.weights().layer(0);
    const std::pair<const char*, Tensor> views[] = {{"self_attn.q_proj", w.q}, {"self_attn.k_proj", w.k},
                                                    {"self_attn.v_proj", w.v}, {"self_attn.o_proj", w.o},
                                                    {"mlp.gate_proj", w.gate}, {"mlp.up_proj", w.up},
                                                    {"mlp.down_proj", w.down}};
    for (const auto& [suffix, t] : views) {
      const TensorInfo* ref = fx.find(fmt::format("model.layers.0.{}.weight.dequant", suffix));
      ASSERT_NE(ref, nullptr) << suffix;
      ASSERT_EQ(t.dtype, DType::F32);
      ASSERT_EQ(static_cast<size_t>(t.numel()) * 4, ref->nbytes) << suffix;
      const auto* a = static_cast<const float*>(t.data);
      const auto* b = reinterpret_cast<const float*>(ref->data);
      int64_t first = -1, ndiff = 0;
      for (int64_t i = 0; i < t.numel(); ++i)
        if (std::memcmp(a + i, b + i, 4) != 0) {
          if (first < 0) first = i;
          ++ndiff;
        }
      EXPECT_EQ(ndiff, 0) << suffix << ": not bitsandbytes' values, first at " << first << ": "
                          << (first >= 0 ? a[first] : 0.f) << " vs " << (first >= 0 ? b[first] : 0.f);
      ++checked;
    }
    EXPECT_EQ(checked, 7);
  }
}

TEST(ModelPrequant, LogitsMatchTransformers) {
  auto be = make_backend("cpu");
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Model m(*be, fixtures() / "models" / c.name, c.act);
    const ModelConfig& cfg = m.config();
    SafetensorsFile fx(fixtures() / "prequant" / (c.name + ".safetensors"));
    const TensorInfo* ids_t = fx.find("ids");
    ASSERT_TRUE(ids_t && ids_t->dtype == DType::I32 && ids_t->shape.size() == 2);
    const int64_t B = ids_t->shape[0], T = ids_t->shape[1], L = cfg.num_layers, V = cfg.vocab_size;
    std::vector<int32_t> ids(static_cast<size_t>(B * T));
    std::memcpy(ids.data(), ids_t->data, ids.size() * 4);

    ActivationArena acts(*be, cfg, B, T, static_cast<int>(L), nullptr, false, c.act);
    acts.set_tokens(ids);
    m.forward(acts);
    std::vector<float> logits(static_cast<size_t>(B * T * V));
    void* dl = be->alloc(logits.size() * 4);
    m.logits(Tensor(dl, DType::F32, {B * T, V}), acts.hidden());
    be->download(logits.data(), dl, logits.size() * 4);
    be->free(dl);

    const TensorInfo* ref = fx.find("logits");
    ASSERT_TRUE(ref && ref->nbytes == logits.size() * 4);
    const std::vector<float> want = to_f32(ref->data, DType::F32, logits.size());
    double bound = 0;
    if (c.act == DType::F32) {
      const double e = static_cast<double>(3 * cfg.hidden_size + cfg.head_dim + T + cfg.num_heads * cfg.head_dim +
                                           cfg.hidden_size + cfg.intermediate_size + 16) * testing::kEps32;
      bound = 2.0 * (static_cast<double>(L) * e + 2 * (cfg.hidden_size + 2) * testing::kEps32);
    } else {
      bound = (12.0 * static_cast<double>(L) + 3.0) * std::ldexp(1.0, -8);
    }
    const double err = rel_l2(logits, want);
    EXPECT_LE(err, bound);
    RecordProperty(c.name + "_logits", fmt::format("err {:.3e} bound {:.3e}", err, bound));
    std::printf("%s: logits rel err %.3e (bound %.3e)\n", c.name.c_str(), err, bound);
  }
}


// --- bad checkpoints: each edit of the qwen2 fixture gets an Error naming the tensor ---

const std::string kQ = "model.layers.0.self_attn.q_proj.weight";

struct Edited {
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<uint8_t>> keep;  // bytes of replaced tensors
  std::string config;
  TensorToWrite* find(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  void erase(const std::string& name) { std::erase_if(tensors, [&](const TensorToWrite& t) { return t.name == name; }); }
  void set(const std::string& name, DType dt, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
    erase(name);
    keep.push_back(std::move(bytes));
    tensors.push_back({name, dt, std::move(shape), {keep.back().data(), keep.back().size()}});
  }
  void set_json(const std::string& name, const std::string& text) {
    set(name, DType::U8, {static_cast<int64_t>(text.size())}, std::vector<uint8_t>(text.begin(), text.end()));
  }
};

// The error of loading qwen2-bnb-nf4-dq after `edit`, with the temp folder shown as "DIR".
std::string load_error(const std::function<void(Edited&)>& edit) {
  const fs::path src = fixtures() / "models" / "qwen2-bnb-nf4-dq";
  const fs::path dir = fs::temp_directory_path() / fmt::format("lorafit_prequant_{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  SafetensorsFile f(src / "model.safetensors");
  Edited e;
  for (const auto& t : f.tensors()) e.tensors.push_back({t.name, t.dtype, t.shape, {t.data, t.nbytes}});
  e.config = read_file(src / "config.json");
  edit(e);
  safetensors_save(dir / "model.safetensors", e.tensors, {{"format", "pt"}});
  write_file_atomic(dir / "config.json", e.config);
  std::string msg = "(loaded)";
  try {
    auto be = make_backend("cpu");
    Model m(*be, dir);
  } catch (const Error& err) {
    msg = err.what();
  }
  fs::remove_all(dir);
  for (size_t at; (at = msg.find(dir.string())) != std::string::npos;) msg.replace(at, dir.string().size(), "DIR");
  return msg;
}

const std::string kQs = kQ + ".quant_state.bitsandbytes__nf4";
const std::string kState = R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [96, 96], )"
                           R"("nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.1839)";

TEST(ModelPrequant, UnchangedCopyLoads) {
  EXPECT_EQ(load_error([](Edited&) {}), "(loaded)");
}

TEST(ModelPrequant, BadTensorsAreNamed) {
  const std::string F = "DIR/model.safetensors";
  EXPECT_EQ(load_error([](Edited& e) { e.erase(kQ + ".absmax"); }),
            F + ": tensor \"" + kQ + ".absmax\" is missing; a bitsandbytes 4-bit weight needs it (one 8-bit absmax "
                "code per 64 of the [96, 96] weight's values)");
  EXPECT_EQ(load_error([](Edited& e) { e.set(kQ + ".absmax", DType::U8, {143}, std::vector<uint8_t>(143)); }),
            F + ": tensor \"" + kQ + ".absmax\" is U8 [143]; expected 144 values of U8 (one 8-bit absmax code per 64 "
                "of the [96, 96] weight's values)");
  EXPECT_EQ(load_error([](Edited& e) { e.erase(kQ + ".nested_absmax"); }),
            F + ": tensor \"" + kQ + ".nested_absmax\" is missing; a bitsandbytes 4-bit weight needs it (one absmax "
                "per 256 absmax codes)");
  EXPECT_EQ(load_error([](Edited& e) { e.set(kQ + ".nested_quant_map", DType::F32, {16}, std::vector<uint8_t>(64)); }),
            F + ": tensor \"" + kQ + ".nested_quant_map\" is F32 [16]; expected 256 values of F32 (the 8-bit code of "
                "the absmax values)");
  EXPECT_EQ(load_error([](Edited& e) { e.erase(kQ + ".quant_map"); }),
            F + ": tensor \"" + kQ + ".quant_map\" is missing; a bitsandbytes 4-bit weight needs it (the 16 values of "
                "the 4-bit code)");
  EXPECT_EQ(load_error([](Edited& e) { e.set(kQ, DType::BF16, {2303, 1}, std::vector<uint8_t>(4606)); }),
            F + ": tensor \"" + kQ + "\" is BF16 [2303, 1] (4606 bytes); a 4-bit [96, 96] weight packs two codes per "
                "byte: expected [2304, 1] of BF16 (4608 bytes)");
  EXPECT_EQ(load_error([](Edited& e) { e.erase(kQ); }),
            "DIR/model.safetensors: tensor \"" + kQ + "\" is missing; config.json implies shape [96, 96]");
}

TEST(ModelPrequant, BadQuantStateIsNamed) {
  const std::string T = "DIR/model.safetensors: tensor \"" + kQs + "\"";
  EXPECT_EQ(load_error([](Edited& e) { e.erase(kQs); }),
            "DIR/model.safetensors: tensor \"" + kQ + "\" is BF16 [2304, 1], but config.json's quantization_config "
            "(bitsandbytes 4-bit) quantizes this module: its quant_state \"" + kQs + "\" is missing");
  EXPECT_EQ(load_error([](Edited& e) { e.set_json(kQs, "{\"quant_type\": \"nf4\", "); }),
            T + ": not valid JSON at line 1, column 23 (reading field `quant_type`): syntax error while parsing object "
                "key - unexpected end of input; expected string literal");
  EXPECT_EQ(load_error([](Edited& e) { e.set_json(kQs, "[1, 2]"); }),
            T + ": the quant_state is JSON array, expected an object");
  EXPECT_EQ(load_error([](Edited& e) { e.set_json(kQs, kState + R"(, "extra": 1})"); }),
            T + ": the quant_state JSON has an unknown key \"extra\"");
  EXPECT_EQ(load_error([](Edited& e) { e.set_json(kQs, R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16"})"); }),
            T + ": the quant_state JSON has no \"shape\"");
  std::string s = kState + "}";
  EXPECT_EQ(load_error([&](Edited& e) { e.set_json(kQs, std::string(s).replace(s.find("[96, 96]"), 8, "[96, 48]")); }),
            "DIR/model.safetensors: tensor \"" + kQs + "\": quant_state \"shape\" = [96, 48], but config.json implies "
            "[96, 96]");
  EXPECT_EQ(load_error([&](Edited& e) { e.set_json(kQs, std::string(s).replace(s.find("64"), 2, "128")); }),
            T + ": quant_state \"blocksize\" = 128; lorafit reads 4-bit blocks of 64 only (bitsandbytes' default)");
  EXPECT_EQ(load_error([&](Edited& e) { e.set_json(kQs, std::string(s).replace(s.find("256"), 3, "128")); }),
            T + ": quant_state \"nested_blocksize\" = 128; bitsandbytes' 4-bit kernels (and lorafit) need 256");
  EXPECT_EQ(load_error([&](Edited& e) { e.set_json(kQs, std::string(s).replace(s.find("\"nf4\""), 5, "\"int4\"")); }),
            T + ": quant_state \"quant_type\" = \"int4\"; bitsandbytes 4-bit types are nf4 and fp4");
  EXPECT_EQ(load_error([&](Edited& e) { e.set_json(kQs, std::string(s).replace(s.find("0.1839"), 6, "\"x\"")); }),
            T + ": quant_state \"nested_offset\" = \"x\" must be a finite number");
  // The other type's quant_state instead of the config's (bnb_4bit_quant_type nf4).
  EXPECT_EQ(load_error([](Edited& e) {
              const TensorToWrite t = *e.find(kQs);
              e.erase(kQs);
              e.tensors.push_back({kQ + ".quant_state.bitsandbytes__fp4", t.dtype, t.shape, t.bytes});
            }),
            "DIR/model.safetensors: tensor \"" + kQ + ".quant_state.bitsandbytes__fp4\" is there but config.json's "
            "bnb_4bit_quant_type is nf4: expected \"" + kQs + "\"");
}

TEST(ModelPrequant, ConfigAndFileMustAgreeOnWhatIsQuantized) {
  // Config says q_proj stays unquantized: its packed tensors are refused by name.
  EXPECT_EQ(load_error([](Edited& e) {
              const std::string k = "\"llm_int8_skip_modules\": null";
              e.config.replace(e.config.find(k), k.size(), "\"llm_int8_skip_modules\": [\"lm_head\", \"q_proj\"]");
            }),
            "DIR/model.safetensors: tensor \"" + kQ + "\" is stored as 4-bit (nf4), but config.json's "
            "quantization_config keeps this module unquantized (llm_int8_skip_modules); the file and the config disagree");
  // A skip list without lm_head: transformers would quantize the lm head too; this file has it in 16 bits.
  EXPECT_EQ(load_error([](Edited& e) {
              const std::string k = "\"llm_int8_skip_modules\": null";
              e.config.replace(e.config.find(k), k.size(), "\"llm_int8_skip_modules\": [\"q_proj\"]");
            }).substr(0, 60),
            std::string("DIR/model.safetensors: tensor \"model.layers.0.self_attn.q_pr"));
  // A 4-bit lm head (what transformers writes for a skip list without "lm_head") is refused by name.
  EXPECT_EQ(load_error([](Edited& e) {
              const TensorToWrite t = *e.find(kQs);
              e.tensors.push_back({"lm_head.weight.quant_state.bitsandbytes__nf4", t.dtype, t.shape, t.bytes});
            }),
            "DIR/model.safetensors: tensor \"lm_head.weight\" is stored as 4-bit (nf4): lorafit keeps the lm head in "
            "16/32 bits (transformers' default) and cannot read a 4-bit one; quantize the model again with "
            "\"lm_head\" in llm_int8_skip_modules");
}

}  // namespace
}  // namespace lorafit
