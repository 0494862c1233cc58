// TensorBoard event encoding against hand-derived bytes from the protobuf wire format and
// the published CRC-32C check value; tools/check_tensorboard.py reads real files back with
// the tensorboard package itself.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "track/tensorboard.h"
#include "util/file.h"

using namespace lorafit::track;

TEST(TrackTensorBoard, Crc32cCheckValue) {
  // The CRC-32C (Castagnoli) check value of "123456789" is 0xE3069283 (RFC 3720 B.4 /
  // the CRC catalogue); an empty input gives 0.
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  // 32 zero bytes: 0x8A9136AA (RFC 3720 B.4 test vector).
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(TrackTensorBoard, MaskedCrc) {
  uint32_t c = 0xE3069283u;
  uint32_t expect = ((c >> 15) | (c << 17)) + 0xa282ead8u;  // TFRecord's mask, written out
  EXPECT_EQ(masked_crc32c("123456789", 9), expect);
}

TEST(TrackTensorBoard, ScalarEventBytes) {
  // Event{wall_time=1.0 (field 1, fixed64), step=5 (field 2, varint),
  //       summary (field 5) {value (field 1) {tag (1) "loss", simple_value (2, fixed32) 0.5f}}}
  const unsigned char expect[] = {
      0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,  // 1.0 as little-endian IEEE double
      0x10, 0x05,                          // step 5
      0x2a, 0x0d,                          // summary, 13 bytes
      0x0a, 0x0b,                          // value, 11 bytes
      0x0a, 0x04, 'l', 'o', 's', 's',      // tag
      0x15, 0x00, 0x00, 0x00, 0x3f};       // 0.5f little-endian
  std::string got = encode_scalar_event(1.0, 5, "loss", 0.5f);
  ASSERT_EQ(got.size(), sizeof expect);
  EXPECT_EQ(std::memcmp(got.data(), expect, sizeof expect), 0);
}

TEST(TrackTensorBoard, LargeStepVarint) {
  // 300 = 0b1_0010_1100 → varint bytes 0xac 0x02.
  std::string got = encode_scalar_event(0.0, 300, "a", 1.0f);
  EXPECT_EQ(static_cast<unsigned char>(got[9]), 0x10);
  EXPECT_EQ(static_cast<unsigned char>(got[10]), 0xac);
  EXPECT_EQ(static_cast<unsigned char>(got[11]), 0x02);
}

TEST(TrackTensorBoard, FileVersionEvent) {
  std::string got = encode_file_version_event(2.0);
  std::string tail = got.substr(9);
  EXPECT_EQ(static_cast<unsigned char>(got[0]), 0x09);
  EXPECT_EQ(tail, std::string("\x1a\x0d") + "brain.Event:2");
}

TEST(TrackTensorBoard, RecordFraming) {
  std::string payload = "hello";
  std::string rec = encode_tfrecord(payload);
  ASSERT_EQ(rec.size(), 8 + 4 + payload.size() + 4);
  uint64_t len;
  std::memcpy(&len, rec.data(), 8);
  EXPECT_EQ(len, payload.size());
  uint32_t len_crc, data_crc;
  std::memcpy(&len_crc, rec.data() + 8, 4);
  std::memcpy(&data_crc, rec.data() + 12 + payload.size(), 4);
  EXPECT_EQ(len_crc, masked_crc32c(rec.data(), 8));
  EXPECT_EQ(data_crc, masked_crc32c(payload.data(), payload.size()));
  EXPECT_EQ(rec.substr(12, payload.size()), payload);
}

TEST(TrackTensorBoard, WriterFile) {
  auto dir = std::filesystem::temp_directory_path() / ("lorafit_tb_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::path path;
  {
    TensorBoardWriter w(dir);
    path = w.path();
    w.add_scalar("train/loss", 1, 2.5, 10.0);
    w.flush();
  }
  EXPECT_NE(path.filename().string().find("events.out.tfevents."), std::string::npos);
  std::string bytes = lorafit::read_file(path);
  std::string expect = encode_tfrecord(encode_scalar_event(10.0, 1, "train/loss", 2.5f));
  ASSERT_GT(bytes.size(), expect.size());
  EXPECT_EQ(bytes.substr(bytes.size() - expect.size()), expect);  // header record, then ours
  std::filesystem::remove_all(dir);
}
