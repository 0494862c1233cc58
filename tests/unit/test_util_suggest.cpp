// util/suggest.h: "did you mean" only for close names.
#include <gtest/gtest.h>

#include "util/suggest.h"

using namespace lorafit;

namespace {
const std::vector<std::string> kKeys = {"model_name_or_path", "data",   "learning_rate", "lora_r",
                                        "num_train_epochs",   "seed",   "output_dir",    "max_steps",
                                        "lora_alpha",         "device", "per_device_train_batch_size"};
}

TEST(UtilSuggest, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("lr", "data"), 4u);
  EXPECT_EQ(edit_distance("trian", "train"), 1u);  // a swap is one edit
}

TEST(UtilSuggest, OnlyCloseNames) {
  EXPECT_EQ(close_names("lr", kKeys), (std::vector<std::string>{"learning_rate", "lora_r"}));  // initials
  EXPECT_EQ(close_names("learnig_rate", kKeys), (std::vector<std::string>{"learning_rate"}));  // one typo
  EXPECT_EQ(close_names("output-dir", kKeys), (std::vector<std::string>{"output_dir"}));       // kebab
  EXPECT_EQ(close_names("epochs", kKeys), (std::vector<std::string>{"num_train_epochs"}));     // part
  EXPECT_EQ(close_names("batch_size", kKeys), (std::vector<std::string>{"per_device_train_batch_size"}));
  EXPECT_EQ(close_names("train_batch_size", kKeys), (std::vector<std::string>{"per_device_train_batch_size"}));
  EXPECT_TRUE(close_names("tokenizer", kKeys).empty());
  EXPECT_TRUE(close_names("xyz", kKeys).empty());
  EXPECT_TRUE(close_names("", kKeys).empty());
  EXPECT_EQ(did_you_mean("trian", {"train", "chat", "merge"}), "; did you mean train?");
  EXPECT_EQ(did_you_mean("lr", kKeys, "--"), "; did you mean --learning_rate or --lora_r?");
  EXPECT_EQ(did_you_mean("zzz", kKeys, "--"), "");
  EXPECT_EQ(did_you_mean("lora_rnak", kKeys, "", true), "; did you mean \"lora_r\"?");  // a name plus junk
}

TEST(UtilSuggest, SnakeCase) { EXPECT_EQ(snake_case("max-new-tokens"), "max_new_tokens"); }
