// Weight binding: the parameter table against config.json, and exact messages for model
// folders that are missing, lack a tensor, carry an extra one or a misshapen one. The bad
// folders are built in a temp dir from the stories260K weights.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "backend/backend.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "util/file.h"

namespace lorafit {
namespace {

const fs::path kStories = fs::path(LORAFIT_TEST_DATA) / "stories260K";

// A fresh temp folder removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / fmt::format("lorafit_{}_{}", tag, ::getpid());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Writes `dir`/model.safetensors from the stories260K tensors after `edit` changed the list,
// and `dir`/config.json from the stories config after `edit_config` changed its text.
void make_folder(const fs::path& dir, const std::function<void(std::vector<TensorToWrite>&)>& edit,
                 const std::function<void(std::string&)>& edit_config = nullptr) {
  static SafetensorsFile src(kStories / "model.safetensors");
  std::vector<TensorToWrite> t;
  for (const auto& i : src.tensors()) t.push_back({i.name, i.dtype, i.shape, {i.data, i.nbytes}});
  edit(t);
  safetensors_save(dir / "model.safetensors", t, {{"format", "pt"}});
  std::string cfg = read_file(kStories / "config.json");
  if (edit_config) edit_config(cfg);
  write_file_atomic(dir / "config.json", cfg);
}

std::string load_error(const fs::path& dir) {
  auto be = make_backend("cpu");
  try {
    Model m(*be, dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void erase_tensor(std::vector<TensorToWrite>& t, const std::string& name) {
  std::erase_if(t, [&](const TensorToWrite& x) { return x.name == name; });
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

TEST(ModelWeights, TableMatchesConfig) {
  auto be = make_backend("cpu");
  Model m(*be, kStories);
  const auto& p = m.weights().params();
  // embed, norm (tied: no lm_head), 5 layers × (2 norms + 7 weights + 3 biases)
  ASSERT_EQ(p.size(), 2u + 5u * 12u);
  EXPECT_EQ(p[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(p[1].name, "model.norm.weight");
  EXPECT_EQ(m.weights().lm_head().data, m.weights().embed().data);  // tied: the same matrix
  const LayerWeights w = m.weights().layer(3);
  EXPECT_EQ(w.k.shape_str(), "[32, 64]");
  EXPECT_EQ(w.down.shape_str(), "[64, 172]");
  EXPECT_TRUE(w.o_bias.empty());
  EXPECT_FALSE(w.q_bias.empty());
  // layer(3).k is the tensor of that name in the table
  const ParamInfo* k = nullptr;
  m.weights().visit([&](const ParamInfo& i) {
    if (i.name == "model.layers.3.self_attn.k_proj.weight") k = &i;
  });
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->tensor.data, w.k.data);
  EXPECT_EQ(m.weights().num_params(), 512 * 64 + 64 + 5 * (2 * 64 + 64 * 64 * 2 + 32 * 64 * 2 + 64 + 32 * 2 + 3 * 172 * 64));
}

TEST(ModelWeights, MissingTensor) {
  TempDir d("missing");
  make_folder(d.path, [](auto& t) { erase_tensor(t, "model.layers.2.mlp.up_proj.weight"); });
  EXPECT_EQ(load_error(d.path), (d.path / "model.safetensors").string() +
                                    ": tensor \"model.layers.2.mlp.up_proj.weight\" is missing; config.json implies "
                                    "shape [172, 64]");
}

TEST(ModelWeights, ExtraTensor) {
  TempDir d("extra");
  static const float zeros[3] = {0, 0, 0};
  make_folder(d.path, [](auto& t) {
    t.push_back({"model.layers.0.self_attn.q_norm.weight", DType::F32, {3},
                 {reinterpret_cast<const uint8_t*>(zeros), sizeof zeros}});
  });
  EXPECT_EQ(load_error(d.path), (d.path / "model.safetensors").string() +
                                    ": unexpected tensor \"model.layers.0.self_attn.q_norm.weight\" with shape [3]; a "
                                    "qwen2 model with this config.json has no such parameter");
}

TEST(ModelWeights, MisshapenTensor) {
  TempDir d("shape");
  make_folder(d.path, [](auto& t) {
    for (auto& x : t)
      if (x.name == "model.layers.4.self_attn.v_proj.weight") {
        x.shape = {64, 32};  // transposed: same bytes, wrong layout
      }
  });
  EXPECT_EQ(load_error(d.path), (d.path / "model.safetensors").string() +
                                    ": tensor \"model.layers.4.self_attn.v_proj.weight\" has shape [64, 32], but "
                                    "config.json implies [32, 64]");
}

TEST(ModelWeights, WrongDtype) {
  TempDir d("dtype");
  make_folder(d.path, [](auto& t) {
    for (auto& x : t)
      if (x.name == "model.norm.weight") x.dtype = DType::I32;  // same size, not a float
  });
  EXPECT_EQ(load_error(d.path), (d.path / "model.safetensors").string() +
                                    ": tensor \"model.norm.weight\" has dtype I32; expected F32, BF16 or F16");
}

TEST(ModelWeights, UntiedNeedsLmHead) {
  TempDir d("untied");
  make_folder(d.path, [](auto&) {}, [](std::string& c) {
    replace_all(c, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
  });
  EXPECT_EQ(load_error(d.path), (d.path / "model.safetensors").string() +
                                    ": tensor \"lm_head.weight\" is missing; config.json implies shape [512, 64]");
}

// A tied checkpoint that still stores lm_head.weight loads (transformers ties it and ignores
// the stored copy), and so does one with old rotary inv_freq buffers.
TEST(ModelWeights, TiedCheckpointWithStoredLmHeadLoads) {
  TempDir d("tiedhead");
  static std::vector<float> head(512 * 64, 0.f);
  static const float inv[4] = {1, 0.1f, 0.01f, 0.001f};
  make_folder(d.path, [](auto& t) {
    t.push_back({"lm_head.weight", DType::F32, {512, 64},
                 {reinterpret_cast<const uint8_t*>(head.data()), head.size() * 4}});
    t.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {4},
                 {reinterpret_cast<const uint8_t*>(inv), sizeof inv}});
  });
  EXPECT_EQ(load_error(d.path), "(no error)");
}

TEST(ModelWeights, MissingFolderAndConfig) {
  const fs::path nowhere = fs::temp_directory_path() / "lorafit_no_such_model_dir";
  EXPECT_EQ(load_error(nowhere), "model folder " + nowhere.string() + " does not exist (or is not a folder)");
  TempDir d("noconfig");
  EXPECT_EQ(load_error(d.path), d.path.string() +
                                    ": no config.json; expected a Hugging Face model folder (config.json + "
                                    "model.safetensors)");
}

TEST(ModelWeights, UnsupportedArchitecture) {
  TempDir d("arch");
  make_folder(d.path, [](auto&) {}, [](std::string& c) { replace_all(c, "\"qwen2\"", "\"gpt2\""); });
  EXPECT_EQ(load_error(d.path), (d.path / "config.json").string() +
                                    ": model_type \"gpt2\" is not supported; supported model types: qwen2, qwen3, llama, "
                                    "mistral");
}

// Mistral (no q/k/v biases) with a sliding window: sequences up to the window run, longer
// ones are refused rather than computed without the window.
TEST(ModelWeights, MistralRefusesSequencesPastTheSlidingWindow) {
  TempDir d("mistral");
  make_folder(
      d.path,
      [](auto& t) {
        for (int i = 0; i < 5; ++i)
          for (const char* p : {"q", "k", "v"}) erase_tensor(t, fmt::format("model.layers.{}.self_attn.{}_proj.bias", i, p));
      },
      [](std::string& c) {
        replace_all(c, "\"qwen2\"", "\"mistral\"");
        replace_all(c, "\"sliding_window\": null", "\"sliding_window\": 6");
      });
  auto be = make_backend("cpu");
  Model m(*be, d.path);
  std::vector<int32_t> six{1, 2, 3, 4, 5, 6}, seven{1, 2, 3, 4, 5, 6, 7};
  EXPECT_NO_THROW(m.check_input(six, 6, "ids"));
  EXPECT_EQ(token_nll(m, six).size(), 5u);
  try {
    m.check_input(seven, 7, "ids");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "ids: 7 tokens exceed the sliding_window (6) of " +
                                         (d.path / "config.json").string() +
                                         "; lorafit does not implement sliding-window attention, so it refuses "
                                         "sequences longer than the window");
  }
}

// The stories260K weights rounded to bf16 / f16 bind zero-copy and give the same NLLs as an
// F32 folder holding exactly those rounded values (widened without loss): the 16-bit paths
// (block conversion + sgemm, 16-bit embedding and norm reads) change nothing but the fp32
// rounding order. As in the golden NLL test, a logit error δ (~1e-5 at most here) moves an
// NLL by ≤ 2δ, so 1e-4 per token.
TEST(ModelWeights, SixteenBitWeightsEqualTheirF32Widening) {
  auto be = make_backend("cpu");
  const std::vector<int32_t> ids{1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
  for (DType t : {DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(t));
    TempDir d16(std::string("w16_") + std::string(dtype_name(t))), d32(std::string("w32_") + std::string(dtype_name(t)));
    std::vector<std::vector<uint16_t>> h16;
    std::vector<std::vector<float>> h32;
    h16.reserve(100);
    h32.reserve(100);
    auto round = [&](std::vector<TensorToWrite>& ts, bool widen) {
      for (auto& x : ts) {
        const float* f = reinterpret_cast<const float*>(x.bytes.data());
        std::vector<uint16_t> h(x.bytes.size() / 4);
        for (size_t i = 0; i < h.size(); ++i) h[i] = t == DType::BF16 ? f32_to_bf16(f[i]) : f32_to_f16(f[i]);
        if (widen) {
          std::vector<float> w(h.size());
          for (size_t i = 0; i < h.size(); ++i) w[i] = t == DType::BF16 ? bf16_to_f32(h[i]) : f16_to_f32(h[i]);
          h32.push_back(std::move(w));
          x.bytes = {reinterpret_cast<const uint8_t*>(h32.back().data()), h32.back().size() * 4};
        } else {
          h16.push_back(std::move(h));
          x.dtype = t;
          x.bytes = {reinterpret_cast<const uint8_t*>(h16.back().data()), h16.back().size() * 2};
        }
      }
    };
    make_folder(d16.path, [&](auto& ts) { round(ts, false); });
    make_folder(d32.path, [&](auto& ts) { round(ts, true); });
    Model m16(*be, d16.path), m32(*be, d32.path);
    EXPECT_EQ(m16.weights().dtype(), t);
    const auto a = token_nll(m16, ids), b = token_nll(m32, ids);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4) << i;
  }
}

}  // namespace
}  // namespace lorafit
