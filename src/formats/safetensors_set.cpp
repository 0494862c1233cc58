// SafetensorsSet: every tensor of a Hugging Face model folder, from model.safetensors or
// from the shards listed in model.safetensors.index.json (checked against each shard).
#include <set>

#include "formats/json_util.h"
#include "formats/safetensors.h"
#include "util/error.h"

namespace lorafit {

namespace {

// A shard name from weight_map must be a file inside the model folder.
bool is_plain_relative(const std::string& f) {
  fs::path p(f);
  if (f.empty() || p.is_absolute()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

}  // namespace

SafetensorsSet::SafetensorsSet(const fs::path& dir_or_file) {
  std::error_code ec;
  if (!fs::is_directory(dir_or_file, ec)) {
    files_.push_back(std::make_unique<SafetensorsFile>(dir_or_file));
    for (const auto& t : files_.back()->tensors()) by_name_[t.name] = &t;
    return;
  }
  // transformers prefers the single file when both are present.
  const fs::path single = dir_or_file / "model.safetensors";
  const fs::path index = dir_or_file / "model.safetensors.index.json";
  if (fs::exists(single, ec)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single));
    for (const auto& t : files_.back()->tensors()) by_name_[t.name] = &t;
    return;
  }
  if (!fs::exists(index, ec))
    throw Error("{}: no model.safetensors or model.safetensors.index.json", dir_or_file.string());

  const std::string label = index.string();
  // Sorted: a weight_map has one key per tensor (tens of thousands for big MoE models).
  nlohmann::json j = parse_json_strict_sorted(read_file(index), label, "key", nullptr);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error("{}: expected an object with \"weight_map\": {{tensor name: shard file}}", label);

  // Shard file -> the tensors the index puts there.
  std::map<std::string, std::set<std::string>> listed;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string())
      throw Error("{}: weight_map[\"{}\"] is a JSON {}, expected a shard file name", label, name,
                  json_type_name(file));
    std::string f = file.get<std::string>();
    if (!is_plain_relative(f))
      throw Error("{}: weight_map[\"{}\"] = \"{}\" is not a file inside {}", label, name, f, dir_or_file.string());
    listed[f].insert(name);
  }
  if (listed.empty()) throw Error("{}: weight_map is empty", label);

  std::map<std::string, std::string> shard_of;  // tensor -> the shard it was found in
  for (const auto& [f, names] : listed) {
    try {
      files_.push_back(std::make_unique<SafetensorsFile>(dir_or_file / f));
    } catch (const Error& e) {
      throw Error("{}: shard \"{}\": {}", label, f, e.what());
    }
    const SafetensorsFile& shard = *files_.back();
    for (const auto& name : names)
      if (!shard.find(name))
        throw Error("{}: tensor \"{}\" is listed in shard \"{}\" but that file does not contain it", label, name, f);
    for (const auto& t : shard.tensors()) {
      auto [it, fresh] = shard_of.emplace(t.name, f);
      if (!fresh)
        throw Error("{}: tensor \"{}\" is in two shards, \"{}\" and \"{}\"; each tensor must be in exactly one",
                    label, t.name, it->second, f);
      if (!names.count(t.name))
        throw Error("{}: shard \"{}\" contains tensor \"{}\", which weight_map does not list (or lists in "
                    "another shard)",
                    label, f, t.name);
      by_name_[t.name] = &t;
    }
  }
}

const TensorInfo* SafetensorsSet::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const TensorInfo*> SafetensorsSet::all() const {
  std::vector<const TensorInfo*> v;
  v.reserve(by_name_.size());
  for (const auto& [name, t] : by_name_) v.push_back(t);
  return v;
}

}  // namespace lorafit
