// safetensors reader and writer against files written by Python safetensors 0.4.5
// (tests/fixtures/formats, made by tools/golden/make_formats_fixtures.py) and the real
// stories260K checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/safetensors.h"
#include "util/error.h"

namespace lorafit {
namespace {

const fs::path kFixtures = fs::path(LORAFIT_FIXTURES) / "formats";

std::vector<uint8_t> hex_bytes(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// One fixture file's tensors as the Python script described them.
struct Described {
  std::vector<std::vector<uint8_t>> data;  // owns the bytes the spans point at
  std::vector<TensorToWrite> tensors;
  std::map<std::string, std::string> metadata;
};

Described describe(const std::string& file) {
  auto j = nlohmann::json::parse(read_file(kFixtures / "reference.json"))[file];
  Described d;
  for (auto& [k, v] : j["metadata"].items()) d.metadata[k] = v.get<std::string>();
  d.data.reserve(j["tensors"].size());
  for (const auto& t : j["tensors"]) {
    d.data.push_back(hex_bytes(t["hex"].get<std::string>()));
    auto dt = dtype_from_name(t["dtype"].get<std::string>());
    EXPECT_TRUE(dt.has_value());
    d.tensors.push_back({t["name"].get<std::string>(), *dt, t["shape"].get<std::vector<int64_t>>(), d.data.back()});
  }
  return d;
}

class Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Reference, WriterBytesEqualPython) {
  Described d = describe(GetParam());
  std::string ours = safetensors_serialize(d.tensors, d.metadata);
  std::string theirs = read_file(kFixtures / GetParam());
  ASSERT_EQ(ours.size(), theirs.size());
  EXPECT_TRUE(ours == theirs) << "header ours:   " << ours.substr(8, 200) << "\nheader python: " << theirs.substr(8, 200);
}

TEST_P(Reference, ReaderSeesWhatPythonWrote) {
  Described d = describe(GetParam());
  SafetensorsFile f(kFixtures / GetParam());
  EXPECT_EQ(f.metadata(), d.metadata);
  ASSERT_EQ(f.tensors().size(), d.tensors.size());
  for (const auto& want : d.tensors) {
    const TensorInfo* t = f.find(want.name);
    ASSERT_NE(t, nullptr) << want.name;
    EXPECT_EQ(t->dtype, want.dtype) << want.name;
    EXPECT_EQ(t->shape, want.shape) << want.name;
    ASSERT_EQ(t->nbytes, want.bytes.size()) << want.name;
    if (t->nbytes) {
      EXPECT_EQ(std::memcmp(t->data, want.bytes.data(), t->nbytes), 0) << want.name;
    }
    EXPECT_EQ(t->file, (kFixtures / GetParam()).string());
  }
  EXPECT_EQ(f.find("nope"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Formats, Reference,
                         ::testing::Values("reference.safetensors", "reference_unsigned.safetensors"));

TEST(Safetensors, HeaderOrderIsFileOrderAndSortedLikePython) {
  SafetensorsFile f(kFixtures / "reference.safetensors");
  std::vector<std::string> names;
  for (const auto& t : f.tensors()) names.push_back(t.name);
  // Python: dtype descending (I64, F64, F32, I32, BF16, F16, I16, F8_E4M3, F8_E5M2, I8, U8,
  // BOOL), then bytewise name order within a dtype ("Z" < "e", "layer.10" < "layer.2").
  std::vector<std::string> want = {"ids",    "Z_upper",    "empty",      "layer.10.w", "layer.2.w", "rank5",
                                   "scalar", "\u00e9_unicode", "b.weight", "a.bias", "quote\"back\\slash",
                                   "f8",     "f8b",        "tab\tname",  "pixels",     "mask"};
  EXPECT_EQ(names, want);
}

TEST(Safetensors, ViewsAndZeroCopy) {
  std::string bytes = read_file(kFixtures / "reference.safetensors");
  auto span = std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  SafetensorsFile f = SafetensorsFile::from_bytes(span, "mem");
  for (const auto& t : f.tensors()) {  // every data pointer lies inside the given bytes
    EXPECT_GE(t.data, span.data());
    EXPECT_LE(t.data + t.nbytes, span.data() + span.size());
  }
  Tensor s = f.find("scalar")->view();
  EXPECT_EQ(s.ndim, 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(*s.as<float>(), 3.25f);
  Tensor e = f.find("empty")->view();
  EXPECT_EQ(e.ndim, 2);
  EXPECT_EQ(e.numel(), 0);
  Tensor ids = f.find("ids")->view();
  EXPECT_EQ(ids.as<int64_t>()[2], int64_t{1} << 40);
  EXPECT_EQ(ids.as<int64_t>()[1], -1);
  // Rank 5 is a valid file entry; only the 4-d Tensor view refuses it, naming the tensor.
  EXPECT_EQ(f.find("rank5")->shape.size(), 5u);
  try {
    (void)f.find("rank5")->view();
    FAIL() << "rank-5 view accepted";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("mem: tensor \"rank5\" has rank 5"), std::string::npos) << err.what();
  }
}

TEST(Safetensors, RoundTripThroughAFile) {
  std::vector<float> a = {1.5f, -2.0f, 0.25f, 8.0f, 9.0f, -1.0f};  // (2, 3)
  std::vector<uint16_t> b = {0x3f80, 0xbf80};                     // bf16 (2,): 1, -1
  std::vector<int32_t> c = {7};                                   // scalar
  auto bytes_of = [](const auto& v) {
    return std::span(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(v[0]));
  };
  std::vector<TensorToWrite> ts = {{"w", DType::F32, {2, 3}, bytes_of(a)},
                                   {"b", DType::BF16, {2}, bytes_of(b)},
                                   {"step", DType::I32, {}, bytes_of(c)}};
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "a\"b\\c\n\x01 \u00fc"}};
  fs::path p = fs::temp_directory_path() / fmt::format("lorafit_st_{}.safetensors", ::getpid());
  safetensors_save(p, ts, meta);
  {
    SafetensorsFile f(p);
    EXPECT_EQ(f.metadata(), meta);
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.tensors()[0].name, "w");  // F32 sorts before I32 before BF16
    EXPECT_EQ(f.tensors()[1].name, "step");
    EXPECT_EQ(f.tensors()[2].name, "b");
    const TensorInfo* w = f.find("w");
    EXPECT_EQ(std::memcmp(w->data, a.data(), 24), 0);
    EXPECT_EQ(w->view().as<float>()[4], 9.0f);
    EXPECT_EQ(bf16_to_f32(f.find("b")->view().as<uint16_t>()[1]), -1.0f);
    EXPECT_EQ(f.find("step")->view().as<int32_t>()[0], 7);
    EXPECT_EQ(fs::file_size(p), safetensors_serialize(ts, meta).size());
  }
  fs::remove(p);
  // Header is padded with spaces to a multiple of 8 and the data follows at once.
  std::string s = safetensors_serialize(ts, {});
  uint64_t n = 0;
  std::memcpy(&n, s.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(s.substr(8, 2), "{\"");  // no __metadata__ when there is none
  EXPECT_EQ(s.size(), 8 + n + 24 + 4 + 4);
}

TEST(Safetensors, WriterRefusesBadInput) {
  std::vector<uint8_t> four(4);
  EXPECT_THROW(safetensors_serialize({{"x", DType::F32, {2}, four}}, {}), Error);  // 2 floats need 8 bytes
  EXPECT_THROW(safetensors_serialize({{"x", DType::F32, {1}, four}, {"x", DType::F32, {1}, four}}, {}), Error);
  EXPECT_THROW(safetensors_serialize({{"x", DType::F32, {1}, four}, {"x", DType::I32, {1}, four}}, {}), Error);
}

TEST(Safetensors, Stories260K) {
  SafetensorsFile f(fs::path(LORAFIT_TEST_DATA) / "stories260K" / "model.safetensors");
  ASSERT_EQ(f.tensors().size(), 62u);  // embed + 5 layers x 12 + final norm (lm_head tied)
  EXPECT_EQ(f.metadata().at("format"), "pt");
  struct Want {
    const char* name;
    std::vector<int64_t> shape;
  };
  for (const Want& w : {Want{"model.embed_tokens.weight", {512, 64}}, Want{"model.norm.weight", {64}},
                        Want{"model.layers.0.mlp.down_proj.weight", {64, 172}},
                        Want{"model.layers.0.mlp.gate_proj.weight", {172, 64}},
                        Want{"model.layers.4.self_attn.k_proj.weight", {32, 64}},
                        Want{"model.layers.4.self_attn.k_proj.bias", {32}},
                        Want{"model.layers.4.self_attn.q_proj.weight", {64, 64}}}) {
    const TensorInfo* t = f.find(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->dtype, DType::F32);
    EXPECT_EQ(t->shape, w.shape) << w.name;
  }
  EXPECT_EQ(f.find("lm_head.weight"), nullptr);
  // Values as numpy reads them: norm[0] = 0x401d54ef, embed[511, 63] = 0xbed91acd.
  uint32_t u;
  std::memcpy(&u, f.find("model.norm.weight")->data, 4);
  EXPECT_EQ(u, 0x401d54efu);
  std::memcpy(&u, f.find("model.embed_tokens.weight")->data + (511 * 64 + 63) * 4, 4);
  EXPECT_EQ(u, 0xbed91acdu);
}

}  // namespace
}  // namespace lorafit
