// Settings: YAML + flags (flags win), every key a flag, unknown keys with the closest name,
// and the shipped reference-recipe YAML holding exactly the recipe of docs/DESIGN.md §1.
#include <gtest/gtest.h>

#include "train/train_config.h"
#include "util/error.h"

using namespace lorafit;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
const fs::path kSrc = fs::path(LORAFIT_TEST_DATA).parent_path().parent_path();
}  // namespace

TEST(TrainConfig, ReferenceRecipeYaml) {
  const TrainSettings s = parse_train_args({"--config", (kSrc / "examples/disc-law-qwen2.5-7b.yaml").string()});
  EXPECT_EQ(s.lora_r, 64);
  EXPECT_EQ(s.lora_alpha, 16);
  EXPECT_DOUBLE_EQ(s.lora_dropout, 0.1);
  EXPECT_EQ(s.lora_target, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj");
  EXPECT_EQ(s.per_device_train_batch_size, 2);
  EXPECT_EQ(s.gradient_accumulation_steps, 8);
  EXPECT_DOUBLE_EQ(s.learning_rate, 1e-4);
  EXPECT_EQ(s.lr_scheduler_type, "linear");
  EXPECT_DOUBLE_EQ(s.num_train_epochs, 1);
  EXPECT_EQ(s.cutoff_len, 384);
  EXPECT_EQ(s.logging_steps, 10);
  EXPECT_EQ(s.save_steps, 100);
  EXPECT_TRUE(s.gradient_checkpointing);
  EXPECT_EQ(s.bf16, "true");
  EXPECT_EQ(s.train_range, "5:5000");
  EXPECT_EQ(s.eval_range, "0:5");
  EXPECT_EQ(s.system, "你是一个法律专家，请根据用户的问题给出专业的回答");
  EXPECT_EQ(s.dataset_format, "pair");
}

TEST(TrainConfig, FlagsWinOverYamlWhereverConfigAppears) {
  const fs::path y = fs::temp_directory_path() / "lorafit_test_cfg.yaml";
  write_file_atomic(y, "lora_r: 16\nlearning_rate: 3e-4\nshuffle: true\nlora_target: [q_proj, v_proj]\n");
  const TrainSettings s = parse_train_args({"--lora_r", "4", "--config", y.string(), "--shuffle", "false"});
  EXPECT_EQ(s.lora_r, 4);
  EXPECT_DOUBLE_EQ(s.learning_rate, 3e-4);
  EXPECT_FALSE(s.shuffle);
  EXPECT_EQ(s.lora_target, "q_proj,v_proj");
  fs::remove(y);
}

// `lorafit train recipe.yaml` as `llamafactory-cli train recipe.yaml`: the first argument may be
// the config file; flags still win; anything else positional is refused by name.
TEST(TrainConfig, ConfigFileAsFirstArgument) {
  const fs::path y = fs::temp_directory_path() / "lorafit_test_cfg_pos.yaml";
  write_file_atomic(y, "lora_r: 16\nlearning_rate: 3e-4\n");
  const TrainSettings s = parse_train_args({y.string(), "--lora_r", "4"});
  EXPECT_EQ(s.lora_r, 4);
  EXPECT_DOUBLE_EQ(s.learning_rate, 3e-4);
  try {
    parse_train_args({"--lora_r", "4", y.string()});
    ADD_FAILURE() << "a config file after a flag was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "unexpected argument \"" + y.string() +
                                         "\"; settings are written --key value (e.g. --lora_r 64); give a config "
                                         "file first or as --config FILE.yaml");
  }
  try {
    parse_train_args({y.string(), "--config", "other.yaml"});
    ADD_FAILURE() << "two config files were accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--config other.yaml: a config file was already given (" + y.string() +
                                         "); give one");
  }
  fs::remove(y);
}

TEST(TrainConfig, EveryKeyIsAFlagAndRoundTripsThroughYaml) {
  TrainSettings s;
  s.system = "sys: \"quoted\"";
  s.lora_r = 7;
  s.learning_rate = 2.5e-5;
  s.shuffle = false;
  const fs::path y = fs::temp_directory_path() / "lorafit_test_cfg2.yaml";
  write_file_atomic(y, settings_to_yaml(s));
  const TrainSettings back = parse_train_args({"--config", y.string()});
  for (const SettingKey& k : setting_keys()) {
    EXPECT_EQ(k.get(back), k.get(s)) << k.name;
    // --key value form works for every key (with the value it already has).
    EXPECT_NO_THROW(parse_train_args({"--" + k.name, k.get(s).empty() ? "x" : k.get(s)})) << k.name;
  }
  fs::remove(y);
}

TEST(TrainConfig, BareBoolFlagsEqualsFormAndAliases) {
  const TrainSettings s = parse_train_args({"--bf16", "--lora_r=12", "--model", "m", "--dataset", "d.jsonl"});
  EXPECT_EQ(s.bf16, "true");
  EXPECT_EQ(s.lora_r, 12);
  EXPECT_EQ(s.model_name_or_path, "m");
  EXPECT_EQ(s.data, "d.jsonl");
}

TEST(TrainConfig, Errors) {
  EXPECT_EQ(error_of([] { parse_train_args({"--learning_rat", "1"}); }),
            "--learning_rat: unknown setting; did you mean --learning_rate? (`lorafit train --help` lists every key)");
  EXPECT_EQ(error_of([] { parse_train_args({"--lora_r", "eight"}); }), "--lora_r: lora_r: \"eight\" is not an integer");
  EXPECT_EQ(error_of([] { parse_train_args({"--shuffle", "maybe"}); }),
            "--shuffle: shuffle: \"maybe\" is not a boolean; write true or false");
  EXPECT_EQ(error_of([] { parse_train_args({"--lora_r"}); }), "--lora_r: expected a value after it");
  EXPECT_EQ(error_of([] { parse_train_args({"stray"}); }),
            "unexpected argument \"stray\"; settings are written --key value (e.g. --lora_r 64)");
  TrainSettings s;
  EXPECT_EQ(error_of([&] { validate_settings(s); }), "--model_name_or_path: required: the Hugging Face model folder");
  EXPECT_EQ(setting_suggestion("gradient_acumulation_steps"), "; did you mean --gradient_accumulation_steps?");
}

// Suggestions only when close: --lr is the initials of learning_rate (and lora_r), never the
// nearest unrelated key such as --data; a name that resembles nothing gets no guess.
TEST(TrainConfig, SuggestionsOnlyWhenClose) {
  const std::string lr = error_of([] { parse_train_args({"--lr", "1e-4"}); });
  EXPECT_EQ(lr, "--lr: unknown setting; did you mean --learning_rate or --lora_r? (`lorafit train --help` lists every key)");
  EXPECT_EQ(error_of([] { parse_train_args({"--tokenizer", "t"}); }),
            "--tokenizer: unknown setting (`lorafit train --help` lists every key)");
  EXPECT_EQ(error_of([] { parse_train_args({"--dashbord"}, {"dashboard", "dashboard_port"}); }),
            "--dashbord: unknown setting; did you mean --dashboard? (`lorafit train --help` lists every key)");
  EXPECT_EQ(error_of([] { parse_train_args({"--epochs", "3"}); }),
            "--epochs: unknown setting; did you mean --num_train_epochs? (`lorafit train --help` lists every key)");
}

// kebab-case is an alias of every key, on the command line and in YAML.
TEST(TrainConfig, KebabCaseAliases) {
  const TrainSettings s = parse_train_args({"--learning-rate", "3e-4", "--per-device-train-batch-size=3", "--packing"});
  EXPECT_DOUBLE_EQ(s.learning_rate, 3e-4);
  EXPECT_EQ(s.per_device_train_batch_size, 3);
  EXPECT_TRUE(s.packing);
  const fs::path y = fs::temp_directory_path() / "lorafit_test_kebab.yaml";
  write_file_atomic(y, "lora-r: 5\nmax-steps: 7\n");
  const TrainSettings t = parse_train_args({"--config", y.string()});
  EXPECT_EQ(t.lora_r, 5);
  EXPECT_EQ(t.max_steps, 7);
  fs::remove(y);
}

namespace lorafit {
namespace {

// bf16 (HF's bf16=True) is read: true/false as asked, auto = bf16 on cuda and fp32 on the CPU.
TEST(TrainConfig, Bf16SettingChoosesTheActivationDtype) {
  TrainSettings s;
  EXPECT_EQ(s.bf16, "auto");
  s.device = "cpu";
  EXPECT_EQ(train_act_dtype(s), DType::F32);
  s.device = "cuda";
  EXPECT_EQ(train_act_dtype(s), DType::BF16);
  EXPECT_EQ(train_act_dtype(parse_train_args({"--bf16", "false", "--device", "cuda"})), DType::F32);
  EXPECT_EQ(train_act_dtype(parse_train_args({"--bf16", "true", "--device", "cpu"})), DType::BF16);
  try {
    parse_train_args({"--bf16", "maybe"});
    ADD_FAILURE() << "no error for --bf16 maybe";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16 (true, false or auto): \"maybe\" is not a boolean"), std::string::npos)
        << e.what();
  }
  // A config.yaml round trip keeps auto.
  EXPECT_NE(settings_to_yaml(TrainSettings{}).find("bf16: \"auto\""), std::string::npos);
}

}  // namespace
}  // namespace lorafit
