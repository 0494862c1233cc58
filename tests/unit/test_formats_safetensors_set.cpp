// SafetensorsSet over model folders: a single model.safetensors, or shards listed by
// model.safetensors.index.json (each shard checked against the index). Shards are made
// in a temporary folder by our writer (itself checked byte-for-byte against Python).
#include <gtest/gtest.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "util/error.h"

namespace lorafit {
namespace {

class ShardDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("lorafit_shards_{}_{}", ::getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A shard holding F32 tensors of shape (n,), each filled with its first value.
  void shard(const std::string& file, const std::vector<std::pair<std::string, float>>& tensors, int n = 2) {
    std::vector<std::vector<float>> data;  // (n,) each
    data.reserve(tensors.size());
    std::vector<TensorToWrite> ts;
    for (const auto& [name, v] : tensors) {
      data.emplace_back(n, v);
      ts.push_back({name, DType::F32, {n}, std::span(reinterpret_cast<const uint8_t*>(data.back().data()), n * 4)});
    }
    safetensors_save(dir_ / file, ts, {{"format", "pt"}});
  }
  void index(const std::string& weight_map_json) {
    write_file_atomic(dir_ / "model.safetensors.index.json",
                      R"({"metadata":{"total_size":32},"weight_map":)" + weight_map_json + "}");
  }
  std::string error_of() {
    try {
      SafetensorsSet s(dir_);
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  }
  std::string idx() const { return (dir_ / "model.safetensors.index.json").string(); }

  fs::path dir_;
};

TEST_F(ShardDir, TwoShards) {
  shard("model-00001-of-00002.safetensors", {{"b", 2.0f}, {"a", 1.0f}});
  shard("model-00002-of-00002.safetensors", {{"c", 3.0f}});
  index(R"({"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors",
            "c":"model-00002-of-00002.safetensors"})");
  SafetensorsSet s(dir_);
  auto all = s.all();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]->name, "a");
  EXPECT_EQ(all[1]->name, "b");
  EXPECT_EQ(all[2]->name, "c");
  EXPECT_EQ(s.find("c")->view().as<float>()[1], 3.0f);
  EXPECT_EQ(s.find("c")->file, (dir_ / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(s.find("zz"), nullptr);
}

TEST_F(ShardDir, SingleFileAndItWinsOverAnIndex) {
  shard("model.safetensors", {{"w", 5.0f}});
  index(R"({"x":"missing.safetensors"})");  // transformers looks for model.safetensors first
  SafetensorsSet s(dir_);
  ASSERT_EQ(s.all().size(), 1u);
  EXPECT_EQ(s.find("w")->view().as<float>()[0], 5.0f);
  SafetensorsSet direct(dir_ / "model.safetensors");  // a file path works too
  EXPECT_NE(direct.find("w"), nullptr);
}

TEST_F(ShardDir, EmptyFolder) {
  EXPECT_EQ(error_of(), dir_.string() + ": no model.safetensors or model.safetensors.index.json");
}

TEST_F(ShardDir, ListedTensorMissingFromItsShard) {
  shard("s1.safetensors", {{"a", 1.0f}});
  index(R"({"a":"s1.safetensors","b":"s1.safetensors"})");
  EXPECT_EQ(error_of(), idx() + ": tensor \"b\" is listed in shard \"s1.safetensors\" but that file does not contain it");
}

TEST_F(ShardDir, TensorInTwoShards) {
  shard("s1.safetensors", {{"a", 1.0f}});
  shard("s2.safetensors", {{"a", 1.0f}, {"b", 2.0f}});
  index(R"({"a":"s1.safetensors","b":"s2.safetensors"})");
  EXPECT_EQ(error_of(), idx() + ": tensor \"a\" is in two shards, \"s1.safetensors\" and \"s2.safetensors\"; each "
                                "tensor must be in exactly one");
}

TEST_F(ShardDir, ShardTensorNotInIndex) {
  shard("s1.safetensors", {{"a", 1.0f}, {"extra", 0.0f}});
  index(R"({"a":"s1.safetensors"})");
  EXPECT_NE(error_of().find(idx() + ": shard \"s1.safetensors\" contains tensor \"extra\", which weight_map does not list"),
            std::string::npos);
}

TEST_F(ShardDir, MissingShardFile) {
  index(R"({"a":"gone.safetensors"})");
  std::string e = error_of();
  EXPECT_NE(e.find(idx() + ": shard \"gone.safetensors\": "), std::string::npos) << e;
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
}

TEST_F(ShardDir, CorruptShardNamesIndexAndShard) {
  write_file_atomic(dir_ / "s1.safetensors", "1234");
  index(R"({"a":"s1.safetensors"})");
  std::string e = error_of();
  EXPECT_NE(e.find(idx() + ": shard \"s1.safetensors\": "), std::string::npos) << e;
  EXPECT_NE(e.find("file is 4 bytes, shorter than the 8-byte"), std::string::npos) << e;
}

TEST_F(ShardDir, BadIndexes) {
  index(R"({"a":1})");
  EXPECT_EQ(error_of(), idx() + ": weight_map[\"a\"] is a JSON integer, expected a shard file name");
  index(R"({"a":"../outside.safetensors"})");
  EXPECT_NE(error_of().find("weight_map[\"a\"] = \"../outside.safetensors\" is not a file inside"), std::string::npos);
  index(R"({"a":"s.safetensors","a":"t.safetensors"})");
  EXPECT_NE(error_of().find(idx() + ": duplicate key `weight_map.a`"), std::string::npos) << error_of();
  index("{}");
  EXPECT_EQ(error_of(), idx() + ": weight_map is empty");
  write_file_atomic(dir_ / "model.safetensors.index.json", R"({"metadata":{}})");
  EXPECT_EQ(error_of(), idx() + ": expected an object with \"weight_map\": {tensor name: shard file}");
  write_file_atomic(dir_ / "model.safetensors.index.json", R"({"weight_map":)");
  EXPECT_NE(error_of().find(idx() + ": not valid JSON"), std::string::npos) << error_of();
}

}  // namespace
}  // namespace lorafit
