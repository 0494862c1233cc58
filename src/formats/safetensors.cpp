// safetensors reader (validating, zero-copy) and writer (byte-identical to Python
// safetensors 0.4.5). Layout: u64 little-endian N, N bytes of JSON header, then the data.
#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "formats/json_util.h"
#include "util/error.h"

namespace lorafit {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // Python safetensors' MAX_HEADER_SIZE

constexpr const char* kDtypeList =
    "BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64";

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// A non-negative JSON integer, or a message saying why not.
bool as_u64(const nlohmann::json& v, uint64_t& out) {
  if (!v.is_number_unsigned()) return false;
  out = v.get<uint64_t>();
  return true;
}

std::string describe_non_u64(const nlohmann::json& v) {
  if (v.is_number_integer()) return fmt::format("{} is negative", v.dump());
  return fmt::format("{} is not an integer", v.dump());
}

struct Parsed {
  TensorInfo info;
  uint64_t begin = 0, end = 0;
};

Parsed parse_entry(const std::string& label, const std::string& name, const nlohmann::json& e) {
  auto fail = [&](const std::string& what) -> Error {
    return Error("{}: tensor \"{}\": {}", label, name, what);
  };
  if (!e.is_object())
    throw fail(fmt::format("entry is a JSON {}, expected an object with dtype, shape, data_offsets",
                           json_type_name(e)));
  for (const char* k : {"dtype", "shape", "data_offsets"})
    if (!e.contains(k)) throw fail(fmt::format("missing \"{}\" (each entry needs dtype, shape, data_offsets)", k));

  Parsed p;
  p.info.name = name;
  p.info.file = label;
  const auto& d = e["dtype"];
  std::optional<DType> dt = d.is_string() ? dtype_from_name(d.get<std::string>()) : std::nullopt;
  if (!dt) throw fail(fmt::format("unknown dtype {}; expected one of {}", d.dump(), kDtypeList));
  p.info.dtype = *dt;

  const auto& s = e["shape"];
  if (!s.is_array()) throw fail(fmt::format("shape is a JSON {}, expected an array of non-negative integers", json_type_name(s)));
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = 0; i < s.size(); ++i) {
    uint64_t dim = 0;
    if (!as_u64(s[i], dim))
      throw fail(fmt::format("shape[{}] = {}; expected a non-negative integer", i, describe_non_u64(s[i])));
    if (dim > static_cast<uint64_t>(INT64_MAX)) overflow = true;
    overflow |= __builtin_mul_overflow(numel, dim, &numel);
    p.info.shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t nbytes = 0;
  overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(p.info.dtype)), &nbytes);
  if (overflow) throw fail(fmt::format("shape {} is too large to address", s.dump()));

  const auto& o = e["data_offsets"];
  if (!o.is_array() || o.size() != 2 || !as_u64(o[0], p.begin) || !as_u64(o[1], p.end) || p.begin > p.end)
    throw fail(fmt::format("data_offsets {} must be [begin, end] with integers 0 <= begin <= end", o.dump()));
  if (p.end - p.begin != nbytes)
    throw fail(fmt::format("data_offsets [{}, {}] hold {} bytes but shape {} of {} needs {} bytes", p.begin,
                           p.end, p.end - p.begin, shape_string(p.info.shape), dtype_name(p.info.dtype), nbytes));
  p.info.nbytes = static_cast<size_t>(nbytes);
  return p;
}

}  // namespace

Tensor TensorInfo::view() const {
  if (shape.size() > static_cast<size_t>(Tensor::kMaxDims))
    throw Error("{}: tensor \"{}\" has rank {} (shape {}); only tensors of rank <= {} can be used", file, name,
                shape.size(), shape_string(shape), Tensor::kMaxDims);
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(dtype) != 0)
    throw Error("{}: tensor \"{}\" ({}) is not aligned to {} bytes in the file (the header length is not a "
                "multiple of 8?); re-save it with Python safetensors",
                file, name, dtype_name(dtype), dtype_size(dtype));
  Tensor t;
  t.data = const_cast<uint8_t*>(data);  // views are read-only by convention: the map is PROT_READ
  t.dtype = dtype;
  t.ndim = static_cast<int>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
  return t;
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  map_ = std::make_shared<MappedFile>(path);
  parse(map_->bytes(), path.string());
}

SafetensorsFile SafetensorsFile::from_bytes(std::span<const uint8_t> bytes, std::string label) {
  SafetensorsFile f;
  f.path_ = label;
  f.parse(bytes, label);
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::parse(std::span<const uint8_t> bytes, const std::string& label) {
  const uint64_t size = bytes.size();
  if (size < 8)
    throw Error("{}: file is {} bytes, shorter than the 8-byte header length of a safetensors file; "
                "it is truncated or not safetensors",
                label, size);
  const uint64_t n = read_u64_le(bytes.data());
  if (n > kMaxHeaderBytes)
    throw Error("{}: header length {} bytes is over the 100 MB limit; the file is corrupt or not safetensors",
                label, n);
  if (n > size - 8)
    throw Error("{}: header length {} bytes runs past the end of the file ({} bytes); the file is truncated",
                label, n, size);
  std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, n);
  std::vector<std::string> order_in_file;
  nlohmann::json h = parse_json_strict_sorted(text, label + " (header)", "tensor name", &order_in_file);
  if (!h.is_object())
    throw Error("{}: header is a JSON {}, expected an object mapping tensor names to "
                "{{dtype, shape, data_offsets}}",
                label, json_type_name(h));

  std::vector<Parsed> parsed;
  for (const std::string& name : order_in_file) {
    const nlohmann::json& entry = *h.find(name);  // present: the callback saw the key
    if (name == "__metadata__") {
      if (!entry.is_object())
        throw Error("{}: __metadata__ is a JSON {}, expected an object of string values", label,
                    json_type_name(entry));
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string())
          throw Error("{}: __metadata__ must map strings to strings, but \"{}\" is a JSON {}", label, k,
                      json_type_name(v));
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    parsed.push_back(parse_entry(label, name, entry));
  }

  // Data must be contiguous: in offset order each tensor starts where the previous ended.
  std::vector<size_t> order(parsed.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(parsed[a].begin, parsed[a].end) < std::pair(parsed[b].begin, parsed[b].end);
  });
  uint64_t expected = 0;
  const std::string* prev = nullptr;
  for (size_t i : order) {
    const Parsed& p = parsed[i];
    if (p.begin > expected)
      throw Error("{}: tensor \"{}\": data_offsets [{}, {}] leave a gap of {} bytes after {}; safetensors data "
                  "must be contiguous",
                  label, p.info.name, p.begin, p.end, p.begin - expected,
                  prev ? fmt::format("tensor \"{}\", which ends at {}", *prev, expected)
                       : std::string("the start of the data"));
    if (p.begin < expected)
      throw Error("{}: tensor \"{}\": data_offsets [{}, {}] overlap tensor \"{}\", which ends at {}; "
                  "safetensors data must not overlap",
                  label, p.info.name, p.begin, p.end, *prev, expected);
    expected = p.end;
    prev = &p.info.name;
  }
  const uint64_t data_len = size - 8 - n;
  if (expected != data_len)
    throw Error("{}: the tensors' data ends at byte {} after the header, so the file should be {} bytes "
                "(8 + header {} + data), but it is {} bytes",
                label, expected, 8 + n + expected, n, size);

  const uint8_t* data = bytes.data() + 8 + n;
  tensors_.reserve(parsed.size());
  for (auto& p : parsed) {
    p.info.data = data + p.begin;
    index_[p.info.name] = tensors_.size();
    tensors_.push_back(std::move(p.info));
  }
}

namespace {

// Tensors in the order Python writes them, and the 8-byte length + padded JSON header.
std::string serialize_header(const std::vector<TensorToWrite>& tensors,
                             const std::map<std::string, std::string>& metadata,
                             std::vector<const TensorToWrite*>& order) {
  // Python sorts by dtype descending in its enum order (BOOL < U8 < ... < U64, which is
  // ours too), i.e. by alignment, then by name bytewise.
  order.clear();
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    if (a->dtype != b->dtype) return a->dtype > b->dtype;
    return a->name < b->name;
  });

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      append_json_string(header, k);
      header += ':';
      append_json_string(header, v);
    }
    header += '}';
  }
  std::map<std::string_view, int> seen;
  uint64_t offset = 0;
  for (const TensorToWrite* t : order) {
    if (++seen[t->name] > 1) throw Error("safetensors: tensor name \"{}\" given twice", t->name);
    if (t->name == "__metadata__") throw Error("safetensors: \"__metadata__\" cannot name a tensor");
    uint64_t numel = 1;
    for (int64_t d : t->shape) {
      LF_CHECK(d >= 0, "tensor {} has negative dimension {}", t->name, d);
      numel *= static_cast<uint64_t>(d);
    }
    if (numel * dtype_size(t->dtype) != t->bytes.size())
      throw Error("safetensors: tensor \"{}\": shape {} of {} needs {} bytes but {} were given", t->name,
                  shape_string(t->shape), dtype_name(t->dtype), numel * dtype_size(t->dtype), t->bytes.size());
    if (header.size() > 1) header += ',';
    append_json_string(header, t->name);
    header += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", dtype_name(t->dtype),
                          fmt::join(t->shape, ","), offset, offset + t->bytes.size());
    offset += t->bytes.size();
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');  // so the data starts 8-aligned

  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  out += header;
  return out;
}

}  // namespace

std::string safetensors_serialize(const std::vector<TensorToWrite>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> order;
  std::string out = serialize_header(tensors, metadata, order);
  for (const TensorToWrite* t : order) out.append(reinterpret_cast<const char*>(t->bytes.data()), t->bytes.size());
  return out;
}

// Streams tensor by tensor so that a multi-GB export never exists twice in memory.
void safetensors_save(const fs::path& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> order;
  std::string head = serialize_header(tensors, metadata, order);
  AtomicFile f(path);
  f.write(head);
  for (const TensorToWrite* t : order) f.write(t->bytes.data(), t->bytes.size());
  f.commit();
}

}  // namespace lorafit
