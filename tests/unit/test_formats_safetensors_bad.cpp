// Malformed safetensors files, built here byte by byte: each must be refused with its own
// specific message naming the file (the label "bad.st") and, where there is one, the tensor.
#include <gtest/gtest.h>

#include <cstring>

#include "formats/safetensors.h"
#include "util/error.h"

namespace lorafit {
namespace {

// 8-byte little-endian length + header + `data_len` zero bytes.
std::string file_of(const std::string& header, size_t data_len, uint64_t n_override = UINT64_MAX) {
  uint64_t n = n_override == UINT64_MAX ? header.size() : n_override;
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);  // x86/arm64 are little-endian, as the format
  return s + header + std::string(data_len, '\0');
}

std::string error_of(const std::string& bytes) {
  try {
    (void)SafetensorsFile::from_bytes(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                                      "bad.st");
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

struct Case {
  const char* what;
  std::string bytes;
  const char* message;  // a substring of the expected error
};

class Bad : public ::testing::TestWithParam<Case> {};

TEST_P(Bad, RefusedWithSpecificMessage) {
  const Case& c = GetParam();
  std::string msg = error_of(c.bytes);
  EXPECT_NE(msg.find(c.message), std::string::npos) << c.what << "\n  got:  " << msg << "\n  want: " << c.message;
  EXPECT_EQ(msg.rfind("bad.st", 0), 0u) << "message must start with the file name: " << msg;
}

const std::string kOk = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

const Case kCases[] = {
    {"empty file", "", "bad.st: file is 0 bytes, shorter than the 8-byte header length"},
    {"7 bytes", std::string(7, '\0'), "file is 7 bytes, shorter than the 8-byte"},
    {"header past eof", file_of("{}", 0, 64), "header length 64 bytes runs past the end of the file (10 bytes)"},
    {"header over 100MB", file_of("{}", 0, 100'000'001), "header length 100000001 bytes is over the 100 MB limit"},
    {"header huge u64", file_of("{}", 0, UINT64_MAX - 1), "is over the 100 MB limit"},
    {"not json", file_of("{\"a\":", 0), "bad.st (header): not valid JSON"},
    {"trailing garbage", file_of("{}x", 0), "not valid JSON"},
    {"array header", file_of("[]      ", 0), "header is a JSON array, expected an object"},
    {"entry not object", file_of(R"({"a":[1]})", 0), "tensor \"a\": entry is a JSON array, expected an object"},
    {"missing dtype", file_of(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8), "tensor \"a\": missing \"dtype\""},
    {"missing shape", file_of(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8), "tensor \"a\": missing \"shape\""},
    {"missing offsets", file_of(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "tensor \"a\": missing \"data_offsets\""},
    {"unknown dtype", file_of(R"({"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", 8),
     "tensor \"a\": unknown dtype \"F128\"; expected one of BOOL, U8"},
    {"dtype not string", file_of(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4), "unknown dtype 4"},
    {"negative shape", file_of(R"({"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})", 8),
     "tensor \"a\": shape[1] = -1 is negative"},
    {"float shape", file_of(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8),
     "tensor \"a\": shape[0] = 2.0 is not an integer"},
    {"shape not array", file_of(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8),
     "tensor \"a\": shape is a JSON integer, expected an array"},
    {"shape overflow", file_of(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
     "tensor \"a\": shape [4294967296,4294967296] is too large"},
    {"offsets reversed", file_of(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
     "tensor \"a\": data_offsets [8,0] must be [begin, end] with integers 0 <= begin <= end"},
    {"offsets three", file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", 8),
     "data_offsets [0,4,8] must be [begin, end]"},
    {"offsets negative", file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8),
     "data_offsets [-8,0] must be [begin, end]"},
    {"size mismatch", file_of(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
     "tensor \"a\": data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12 bytes"},
    {"gap", file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[1],"data_offsets":[9,10]}})", 10),
     "tensor \"b\": data_offsets [9, 10] leave a gap of 1 bytes after tensor \"a\", which ends at 8"},
    {"gap at start", file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
     "tensor \"a\": data_offsets [4, 12] leave a gap of 4 bytes after the start of the data"},
    {"overlap", file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
     "tensor \"b\": data_offsets [4, 8] overlap tensor \"a\", which ends at 8"},
    {"overlap in offset order not header order",
     file_of(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
     "tensor \"b\": data_offsets [4, 8] overlap tensor \"a\""},
    {"file too long", file_of("{" + kOk + "}", 9), "the tensors' data ends at byte 8 after the header, so the file should be"},
    {"file too short", file_of("{" + kOk + "}", 7), "so the file should be 70 bytes (8 + header 54 + data), but it is 69 bytes"},
    {"duplicate name", file_of("{" + kOk + "," + kOk + "}", 8), "duplicate tensor name \"a\""},
    {"duplicate field", file_of(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
     "duplicate key `a.dtype`"},
    {"metadata not object", file_of(R"({"__metadata__":[1]})", 0), "__metadata__ is a JSON array, expected an object"},
    {"metadata int value", file_of(R"({"__metadata__":{"format":1}})", 0),
     "__metadata__ must map strings to strings, but \"format\" is a JSON integer"},
    {"metadata nested", file_of(R"({"__metadata__":{"x":{}}})", 0), "\"x\" is a JSON object"},
    {"invalid utf8 name", file_of("{\"\xff\":1}", 0), "not valid JSON"},
    // Found by fuzz_safetensors: nlohmann throws out_of_range, not parse_error, for this.
    {"number overflow", file_of(R"({"a":{"dtype":"F32","shape":[1e999],"data_offsets":[0,8]}})", 8),
     "bad.st (header): 1e999 in field `a.shape` is too large for a 64-bit float; use a smaller number"},
    {"NaN in header", file_of(R"({"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,8]}})", 8),
     "field `a.shape` is NaN"},
};

INSTANTIATE_TEST_SUITE_P(Formats, Bad, ::testing::ValuesIn(kCases));

TEST(SafetensorsBad, ValidEdgeCasesAreAccepted) {
  // No tensors at all; header not a multiple of 8 (Python's reader accepts it too); a
  // zero-size tensor sharing its offset with the next; unknown extra fields ignored.
  EXPECT_EQ(error_of(file_of("{}", 0)), "(accepted)");
  EXPECT_EQ(error_of(file_of("{" + kOk + "}", 8)), "(accepted)");
  EXPECT_EQ(error_of(file_of(R"({"z":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},)" + kOk + "}   ", 8)),
            "(accepted)");
  EXPECT_EQ(error_of(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8)),
            "(accepted)");
}

TEST(SafetensorsBad, UnalignedViewRefused) {
  // 8 + 1 header bytes past "{...}" put the F32 data at an odd address: readable, not viewable.
  std::string h = "{" + kOk + "}";
  std::string bytes = file_of(h + " ", 8);
  alignas(8) static uint8_t buf[128];
  std::memcpy(buf, bytes.data(), bytes.size());
  SafetensorsFile f = SafetensorsFile::from_bytes(std::span<const uint8_t>(buf, bytes.size()), "odd.st");
  try {
    (void)f.find("a")->view();
    FAIL() << "unaligned view accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("odd.st: tensor \"a\" (F32) is not aligned"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsBad, OpenMissingFileNamesIt) {
  try {
    SafetensorsFile f("/nonexistent/x.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.safetensors: cannot open"), std::string::npos);
  }
}

}  // namespace
}  // namespace lorafit
