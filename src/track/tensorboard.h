// TensorBoard event files (report_to: tensorboard), written without TensorFlow: a TFRecord
// stream (u64 length, masked crc32c of the length, the bytes, masked crc32c of the bytes)
// of hand-encoded `tensorflow.Event` protobufs holding scalar summaries. TensorBoard, and
// trackers that import TensorBoard logs, read the file as written.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace lorafit::track {

uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);  // Castagnoli, as TFRecord uses
uint32_t masked_crc32c(const void* data, size_t n);              // ((c >> 15) | (c << 17)) + 0xa282ead8

// Protobuf encodings of one Event (exposed for the unit test).
std::string encode_file_version_event(double wall_time);                     // "brain.Event:2"
std::string encode_scalar_event(double wall_time, int64_t step, std::string_view tag, float value);
std::string encode_tfrecord(std::string_view payload);

class TensorBoardWriter {
 public:
  // Creates <dir>/events.out.tfevents.<unix seconds>.<host>.<pid> and writes the header event.
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void add_scalar(std::string_view tag, int64_t step, double value, double wall_time);
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::FILE* f_ = nullptr;
};

}  // namespace lorafit::track
