// Checkpoints: a self-contained adapter folder plus optimizer state that restores exactly;
// atomic writes (a .tmp leftover is never listed, a failed write leaves earlier ones intact);
// save_total_limit pruning.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>

#include <nlohmann/json.hpp>

#include "formats/safetensors.h"
#include "lora/lora_adapter.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "util/error.h"

using namespace lorafit;

namespace {
const fs::path kModel = fs::path(LORAFIT_TEST_DATA) / "stories260K";

std::vector<float> host(Backend& be, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  be.download(v.data(), t.data, t.nbytes());
  return v;
}
void fill(Backend& be, const Tensor& t, float base) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + 0.001f * static_cast<float>(i % 977);
  be.upload(t.data, v.data(), t.nbytes());
}
}  // namespace

TEST(TrainCheckpoint, RoundTripIsExactAndFolderIsSelfContained) {
  auto be = make_backend("cpu");
  const Model m(*be, kModel);
  LoraConfig lc;
  lc.r = 4;
  lc.target = parse_lora_target("all-linear");
  LoraParams a(*be, lc, m.config());
  lora_init_peft(a, 7, false);
  fill(*be, a.adam_m(), 0.5f);
  fill(*be, a.adam_v(), 0.25f);
  const fs::path out = fs::temp_directory_path() / "lorafit_test_ckpt";
  fs::remove_all(out);
  TrainerState st;
  st.global_step = 12;
  st.total_steps = 30;
  st.steps_per_epoch = 10;
  st.lr_scheduler_type = "linear";
  st.log_loss_sum = 1.25;
  st.log_loss_count = 3;
  st.settings_hash = "abc";
  st.num_examples = 99;
  const CheckpointInfo info{kModel.string(), kModel, {}, {}, {}, {}};
  save_checkpoint(out / "checkpoint-12", a, *be, info, st);
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "lorafit_base_model.json", "optimizer.safetensors", "trainer_state.json"})
    EXPECT_TRUE(fs::exists(out / "checkpoint-12" / f)) << f;
  EXPECT_FALSE(fs::exists(out / "checkpoint-12.tmp"));

  LoraParams b(*be, load_peft_adapter_config(out / "checkpoint-12"), m.config());
  const TrainerState back = load_checkpoint(out / "checkpoint-12", b, *be);
  EXPECT_EQ(b.download_params(), a.download_params());
  EXPECT_EQ(host(*be, b.adam_m()), host(*be, a.adam_m()));
  EXPECT_EQ(host(*be, b.adam_v()), host(*be, a.adam_v()));
  EXPECT_EQ(back.global_step, 12);
  EXPECT_EQ(back.total_steps, 30);
  EXPECT_EQ(back.log_loss_sum, 1.25);
  EXPECT_EQ(back.log_loss_count, 3);
  EXPECT_EQ(back.settings_hash, "abc");
  EXPECT_EQ(back.num_examples, 99);

  // Listing skips .tmp leftovers of a killed write and non-checkpoint folders.
  fs::create_directories(out / "checkpoint-20.tmp");
  fs::create_directories(out / "checkpoint-x");
  save_checkpoint(out / "checkpoint-3", a, *be, info, st);
  save_checkpoint(out / "checkpoint-100", a, *be, info, st);
  auto all = list_checkpoints(out);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].first, 3);
  EXPECT_EQ(all[2].first, 100);
  prune_checkpoints(out, 2);
  all = list_checkpoints(out);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, 12);

  // A write that fails (here: the folder's place is taken by a file, as a full disk fails a
  // write) leaves no half checkpoint and the earlier ones intact, with a clear message.
  write_file_atomic(out / "blocker", "x");
  try {
    save_checkpoint(out / "blocker" / "checkpoint-13", a, *be, info, st);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Earlier checkpoints are intact"), std::string::npos) << e.what();
  }
  EXPECT_EQ(list_checkpoints(out).size(), 2u);
  EXPECT_NO_THROW(load_checkpoint(out / "checkpoint-12", b, *be));

  // A checkpoint of a different LoRA table is refused, naming the file.
  LoraConfig other = lc;
  other.r = 2;
  LoraParams c(*be, other, m.config());
  try {
    load_checkpoint(out / "checkpoint-12", c, *be);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trainer_state.json: num_params"), std::string::npos) << e.what();
  }
  fs::remove_all(out);
}

TEST(TrainCheckpoint, BaseModelFingerprintIsStable) {
  EXPECT_EQ(base_model_fingerprint(kModel), base_model_fingerprint(kModel));
  EXPECT_EQ(base_model_fingerprint(kModel).size(), 16u);
}

// The adapter in a checkpoint is PEFT's format (docs/SPEC.md "LoRA"): every key
// base_model.model.model.layers.{i}.{self_attn,mlp}.{proj}.lora_{A,B}.weight, A (r, in),
// B (out, r), F32, metadata {"format": "pt"}, and adapter_config.json with PEFT's keys sorted.
TEST(TrainCheckpoint, AdapterMatchesPeftLayout) {
  auto be = make_backend("cpu");
  const Model m(*be, kModel);
  LoraConfig lc;
  lc.r = 3;
  lc.alpha = 6;
  lc.target = parse_lora_target("all-linear");
  LoraParams a(*be, lc, m.config());
  lora_init_peft(a, 1, false);
  const fs::path out = fs::temp_directory_path() / "lorafit_test_ckpt_peft";
  fs::remove_all(out);
  save_adapter_folder(out, a, {kModel.string(), kModel, {}, {}, {}, {}});
  const SafetensorsFile st(out / "adapter_model.safetensors");
  EXPECT_EQ(st.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  const ModelConfig& c = m.config();  // stories260K: C 64, F 172, H·D 64, Hkv·D 32, 5 layers
  ASSERT_EQ(st.tensors().size(), static_cast<size_t>(c.num_layers * 7 * 2));
  struct P {
    const char* parent;
    const char* name;
    int64_t in, out;
  } projs[] = {{"self_attn", "q_proj", 64, 64}, {"self_attn", "k_proj", 64, 32}, {"self_attn", "v_proj", 64, 32},
               {"self_attn", "o_proj", 64, 64}, {"mlp", "gate_proj", 64, 172},     {"mlp", "up_proj", 64, 172},
               {"mlp", "down_proj", 172, 64}};
  for (int i = 0; i < c.num_layers; ++i)
    for (const P& p : projs) {
      const std::string base = fmt::format("base_model.model.model.layers.{}.{}.{}.", i, p.parent, p.name);
      const TensorInfo* A = st.find(base + "lora_A.weight");
      const TensorInfo* B = st.find(base + "lora_B.weight");
      ASSERT_TRUE(A && B) << base;
      EXPECT_EQ(A->dtype, DType::F32);
      EXPECT_EQ(B->dtype, DType::F32);
      EXPECT_EQ(A->shape, (std::vector<int64_t>{3, p.in})) << base;
      EXPECT_EQ(B->shape, (std::vector<int64_t>{p.out, 3})) << base;
    }
  const auto cfg = nlohmann::ordered_json::parse(read_file(out / "adapter_config.json"));
  std::vector<std::string> keys;
  for (const auto& kv : cfg.items()) keys.push_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out",
                      "inference_mode", "init_lora_weights", "layer_replication", "layers_pattern",
                      "layers_to_transform", "loftq_config", "lora_alpha", "lora_dropout", "megatron_config",
                      "megatron_core", "modules_to_save", "peft_type", "r", "rank_pattern", "revision",
                      "target_modules", "task_type", "use_dora", "use_rslora"}));
  EXPECT_EQ(cfg["r"], 3);
  EXPECT_EQ(cfg["lora_alpha"], 6);
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["base_model_name_or_path"], kModel.string());
  fs::remove_all(out);
}

// The adapters PEFT itself wrote for the issue-13 architectures (tests/fixtures/adapter, PEFT
// 0.17.1, make_adapter_fixtures.py RECENT_CASES) and the stories/qwen2 ones (PEFT 0.13.2): read
// and written back by lorafit's adapter writer, they give PEFT's tensor names, shapes, dtypes
// and bytes, and the same LoRA settings. (PEFT loading lorafit's own trained adapters is
// tools/golden/check_peft_recent.sh, by hand: CI has no Python.)
class PeftRoundTrip : public ::testing::TestWithParam<std::string> {};
TEST_P(PeftRoundTrip, WriterGivesPeftsFile) {
  auto be = make_backend("cpu");
  const fs::path adir = fs::path(LORAFIT_FIXTURES) / "adapter" / GetParam();
  const auto base_rel = nlohmann::json::parse(read_file(adir / "adapter_config.json"))["base_model_name_or_path"];
  const fs::path base = adir / base_rel.get<std::string>();
  const Model m(*be, base);
  LoraParams a(*be, load_peft_adapter_config(adir), m.config());
  load_peft_adapter_weights(adir, a);
  const fs::path out = fs::temp_directory_path() / ("lorafit_test_peft_rt_" + GetParam());
  fs::remove_all(out);
  save_adapter_folder(out, a, {base.string(), base, {}, {}, {}, {}});
  const SafetensorsFile peft(adir / "adapter_model.safetensors");
  const SafetensorsFile ours(out / "adapter_model.safetensors");
  ASSERT_EQ(ours.tensors().size(), peft.tensors().size());
  for (const TensorInfo& t : peft.tensors()) {
    const TensorInfo* o = ours.find(t.name);
    ASSERT_TRUE(o) << t.name;
    EXPECT_EQ(o->dtype, t.dtype) << t.name;
    EXPECT_EQ(o->shape, t.shape) << t.name;
    ASSERT_EQ(o->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(o->data, t.data, t.nbytes), 0) << t.name;
  }
  const auto pc = nlohmann::json::parse(read_file(adir / "adapter_config.json"));
  const auto oc = nlohmann::json::parse(read_file(out / "adapter_config.json"));
  // target_modules: the tensor names above say which modules (PEFT 0.17 lists module paths there).
  for (const char* k : {"r", "lora_alpha", "use_rslora", "use_dora", "peft_type", "task_type", "bias", "fan_in_fan_out"})
    EXPECT_EQ(oc.at(k), pc.at(k)) << k;
  fs::remove_all(out);
}
INSTANTIATE_TEST_SUITE_P(Fixtures, PeftRoundTrip,
                         ::testing::Values("qwen3-gqa-tied-f32-all", "qwen3-untied-bf16-all", "llama31-rope-f32-all",
                                           "qwen2-untied-bf16-all", "stories260K-qv-rslora"),
                         [](const auto& p) {
                           std::string n = p.param;
                           for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });
