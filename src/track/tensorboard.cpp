#include "track/tensorboard.h"

#include <array>
#include <cstring>

#include "util/error.h"
#include "util/sysinfo.h"

namespace lorafit::track {

namespace {

// Reflected CRC-32C table (polynomial 0x82F63B78).
const std::array<uint32_t, 256>& crc_table() {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <class T>
void put_le(std::string& out, T v) {  // fixed-width little-endian (x86/ARM are LE; stay explicit)
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
}

void put_double(std::string& out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  put_le(out, bits);
}

void put_bytes_field(std::string& out, int field, std::string_view bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);  // wire type 2: length-delimited
  put_varint(out, bytes.size());
  out.append(bytes);
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto& t = crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = t[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
std::string encode_file_version_event(double wall_time) {
  std::string e;
  e.push_back(0x09);  // field 1, wire type 1 (fixed64)
  put_double(e, wall_time);
  put_bytes_field(e, 3, "brain.Event:2");
  return e;
}

// Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
std::string encode_scalar_event(double wall_time, int64_t step, std::string_view tag, float value) {
  std::string v;
  put_bytes_field(v, 1, tag);
  v.push_back(0x15);  // field 2, wire type 5 (fixed32)
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  put_le(v, bits);
  std::string summary;
  put_bytes_field(summary, 1, v);
  std::string e;
  e.push_back(0x09);
  put_double(e, wall_time);
  e.push_back(0x10);  // field 2, varint
  put_varint(e, static_cast<uint64_t>(step));
  put_bytes_field(e, 5, summary);
  return e;
}

std::string encode_tfrecord(std::string_view payload) {
  std::string r;
  std::string len;
  put_le(len, static_cast<uint64_t>(payload.size()));
  r += len;
  put_le(r, masked_crc32c(len.data(), len.size()));
  r.append(payload);
  put_le(r, masked_crc32c(payload.data(), payload.size()));
  return r;
}

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir) {
  double now = sys::unix_time();
  path_ = dir / fmt::format("events.out.tfevents.{}.{}.{}", static_cast<long long>(now), sys::hostname(),
                            sys::process_id());
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_) throw Error("cannot create the TensorBoard event file {}: check the run folder is writable", path_.string());
  std::string rec = encode_tfrecord(encode_file_version_event(now));
  std::fwrite(rec.data(), 1, rec.size(), f_);
  std::fflush(f_);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::add_scalar(std::string_view tag, int64_t step, double value, double wall_time) {
  std::string rec = encode_tfrecord(encode_scalar_event(wall_time, step, tag, static_cast<float>(value)));
  std::fwrite(rec.data(), 1, rec.size(), f_);
}

void TensorBoardWriter::flush() { std::fflush(f_); }

}  // namespace lorafit::track
