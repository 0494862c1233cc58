#include "track/run_reader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>

#include "formats/json_util.h"
#include "util/error.h"
#include "util/file.h"

namespace lorafit::track {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kMaxWarnings = 20;  // a corrupt file should not produce a megabyte of warnings
constexpr double kStaleAfterS = 120;  // a "running" run with no file touched for this long

bool is_run_dir(const fs::path& d) {
  std::error_code ec;
  for (const char* f : {"status.json", "metrics.jsonl", "config.yaml", "config.json", "eval_results.json"})
    if (fs::exists(d / f, ec)) return true;
  return false;
}

bool inside(const fs::path& child, const fs::path& root) {
  std::error_code ec;
  auto c = fs::weakly_canonical(child, ec);
  if (ec) return false;
  auto r = fs::weakly_canonical(root, ec);
  if (ec) return false;
  auto [ri, ci] = std::mismatch(r.begin(), r.end(), c.begin(), c.end());
  return ri == r.end();
}

// A file of a run folder, as long as it stays inside that folder: a symlink leading out of it
// (to /etc/passwd, another run, a home folder) counts as absent, so the dashboard never
// serves data from outside the run folder.
bool present(const fs::path& file) {
  std::error_code ec;
  return fs::exists(file, ec) && inside(file, file.parent_path());
}

void add_warning(std::vector<std::string>& w, std::string msg) {
  if (w.size() < kMaxWarnings) w.push_back(std::move(msg));
}

void add_value(Columns& c, const std::string& name, double v) {
  auto [it, fresh] = c.values.try_emplace(name);
  if (fresh) {
    c.names.push_back(name);
    it->second.assign(c.rows, kNaN);
  }
  if (it->second.size() == c.rows) it->second.push_back(v);  // first value of this row wins
}

void add_row(Columns& c, const nlohmann::json& row) {
  for (const auto& [k, v] : row.items()) {
    if (v.is_number()) {
      add_value(c, k, v.get<double>());
    } else if (k == "gpus" && v.is_array()) {  // system.jsonl: flatten per device
      for (size_t i = 0; i < v.size(); ++i)
        if (v[i].is_object())
          for (const auto& [gk, gv] : v[i].items())
            if (gv.is_number() && gk != "index") add_value(c, "gpu" + std::to_string(i) + "_" + gk, gv.get<double>());
    }
  }
  ++c.rows;
  for (auto& [name, col] : c.values)
    if (col.size() < c.rows) col.push_back(kNaN);
}

nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    auto o = nlohmann::json::object();
    for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    auto a = nlohmann::json::array();
    for (const auto& e : n) a.push_back(yaml_to_json(e));
    return a;
  }
  if (!n.IsScalar()) return nullptr;
  const std::string& s = n.Scalar();
  if (n.Tag() != "!") {  // unquoted: numbers and booleans as such
    long long i;
    double d;
    bool b;
    if (YAML::convert<long long>::decode(n, i)) return i;
    if (YAML::convert<double>::decode(n, d)) return d;
    if (YAML::convert<bool>::decode(n, b)) return b;
  }
  return s;
}

std::optional<nlohmann::json> read_json_file(const fs::path& p, std::vector<std::string>& warnings) {
  if (!present(p)) return std::nullopt;
  try {
    return parse_json(read_file(p), "");  // depth-limited: the page dumps what it reads
  } catch (const std::exception& e) {
    add_warning(warnings, fmt::format("{}: cannot be read as JSON ({})", p.filename().string(), e.what()));
    return std::nullopt;
  }
}

// config.json, or config.yaml converted when config.json is missing (older or hand-made runs).
std::optional<nlohmann::json> load_config(const fs::path& run, std::vector<std::string>& warnings) {
  auto cfg = read_json_file(run / "config.json", warnings);
  std::error_code ec;
  if (!cfg && present(run / "config.yaml")) {
    try {
      cfg = yaml_to_json(YAML::Load(read_file(run / "config.yaml")));
    } catch (const std::exception& e) {
      add_warning(warnings, fmt::format("config.yaml: cannot be parsed ({})", e.what()));
    }
  }
  return cfg;
}

double file_age_s(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return std::numeric_limits<double>::infinity();
  return std::chrono::duration<double>(fs::file_time_type::clock::now() - t).count();
}

}  // namespace

nlohmann::json downsample_series(const std::vector<double>& x, const std::vector<double>& t,
                                 const std::vector<double>& y, size_t max_points) {
  std::vector<size_t> keep;  // indices with a value
  keep.reserve(y.size());
  for (size_t i = 0; i < y.size(); ++i)
    if (std::isfinite(y[i])) keep.push_back(i);
  size_t n = keep.size();
  std::vector<size_t> out;
  if (n <= max_points || max_points < 4) {
    out = keep;
  } else {
    size_t buckets = max_points / 2;
    for (size_t b = 0; b < buckets; ++b) {
      size_t lo = b * n / buckets, hi = (b + 1) * n / buckets;
      if (lo >= hi) continue;
      size_t mn = keep[lo], mx = keep[lo];
      for (size_t j = lo; j < hi; ++j) {
        if (y[keep[j]] < y[mn]) mn = keep[j];
        if (y[keep[j]] > y[mx]) mx = keep[j];
      }
      out.push_back(std::min(mn, mx));
      if (mn != mx) out.push_back(std::max(mn, mx));
    }
    if (out.back() != keep.back()) out.back() = keep.back();  // the latest value is always shown
  }
  auto xs = nlohmann::json::array(), ts = nlohmann::json::array(), ys = nlohmann::json::array();
  for (size_t i : out) {
    xs.push_back(i < x.size() && std::isfinite(x[i]) ? nlohmann::json(x[i]) : nlohmann::json(i));
    ts.push_back(i < t.size() && std::isfinite(t[i]) ? nlohmann::json(t[i]) : nlohmann::json(nullptr));
    ys.push_back(y[i]);
  }
  return {{"x", xs}, {"t", ts}, {"y", ys}, {"total", n}};
}

RunReader::RunReader(fs::path runs_dir) : root_(std::move(runs_dir)) {
  std::error_code ec;
  if (!fs::is_directory(root_, ec))
    throw Error("runs folder {} does not exist or is not a folder: pass the folder holding your run folders "
                "(the output_dir of `lorafit train`, or its parent)",
                root_.string());
}

std::vector<std::string> RunReader::list_runs() const {
  std::vector<std::string> ids;
  if (is_run_dir(root_)) {
    auto name = fs::weakly_canonical(root_).filename().string();
    ids.push_back(name.empty() ? "run" : name);
    return ids;
  }
  std::error_code ec;
  std::vector<fs::path> subs;
  for (const auto& e : fs::directory_iterator(root_, ec))
    if (e.is_directory(ec) && inside(e.path(), root_)) subs.push_back(e.path());
  std::sort(subs.begin(), subs.end());
  for (const auto& s : subs) {
    if (is_run_dir(s)) {
      ids.push_back(s.filename().string());
      continue;
    }
    std::vector<fs::path> subsubs;
    for (const auto& e : fs::directory_iterator(s, ec))
      if (e.is_directory(ec) && is_run_dir(e.path()) && inside(e.path(), root_)) subsubs.push_back(e.path());
    std::sort(subsubs.begin(), subsubs.end());
    for (const auto& ss : subsubs) ids.push_back(s.filename().string() + "/" + ss.filename().string());
  }
  return ids;
}

fs::path RunReader::resolve(const std::string& id) const {
  auto ids = list_runs();
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) return {};
  if (is_run_dir(root_)) return root_;
  return root_ / fs::path(id);
}

RunReader::CachedFile& RunReader::refresh(const fs::path& path, bool keep_objects) {
  auto& c = cache_[path.string()];
  if (!present(path)) return c;
  std::error_code ec;
  uintmax_t size = fs::file_size(path, ec);
  if (ec) return c;
  auto mtime = fs::last_write_time(path, ec);
  if (size < c.offset) c = CachedFile{};  // rewritten (a new run in the same folder): start over
  c.mtime = mtime;
  if (size == c.offset) return c;
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(c.offset));
  std::string buf(size - c.offset, '\0');
  f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
  buf.resize(static_cast<size_t>(f.gcount()));
  size_t end = buf.rfind('\n');
  size_t consumed = end == std::string::npos ? 0 : end + 1;
  std::string name = path.filename().string();
  size_t pos = 0;
  while (pos < consumed) {
    size_t nl = buf.find('\n', pos);
    std::string_view line(buf.data() + pos, nl - pos);
    pos = nl + 1;
    ++c.lines;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json j;
    try {
      j = parse_json(line, "");  // depth-limited, as above
    } catch (const Error&) {
      j = nlohmann::json::value_t::discarded;
    }
    if (j.is_discarded() || !j.is_object()) {
      add_warning(c.cols.warnings, fmt::format("{} line {}: not a JSON object, skipped", name, c.lines));
      continue;
    }
    add_row(c.cols, j);
    if (keep_objects) c.objects.push_back(std::move(j));
  }
  c.offset += consumed;
  size_t partial = buf.size() - consumed;
  c.partial_warning = partial == 0 ? std::string()
                                   : fmt::format("{}: the last line is incomplete ({} bytes, no newline; a run killed "
                                                 "mid-write?) and is not shown",
                                                 name, partial);
  return c;
}

nlohmann::json RunReader::status_of(const fs::path& run, std::vector<std::string>& warnings, bool warn_stale) {
  auto st = read_json_file(run / "status.json", warnings);
  nlohmann::json s = st && st->is_object() ? *st : nlohmann::json::object();
  if (!st) {
    std::error_code ec;
    s["status"] = "unknown";
    if (present(run / "status")) {  // a plain "running 12" / "done 60" / "failed ..." file
      std::string word = read_file(run / "status");
      word = word.substr(0, word.find_first_of(" \n"));
      s["status"] = word == "done" ? "finished" : word;
    } else if (!present(run / "status.json")) {
      add_warning(warnings, "status.json is missing: status unknown");
    }
  }
  if (s.value("status", "") == "running") {
    double age = std::min({file_age_s(run / "status.json"), file_age_s(run / "metrics.jsonl"),
                           file_age_s(run / "system.jsonl")});
    if (age > kStaleAfterS) {
      s["stale_s"] = age;
      if (warn_stale)
        add_warning(warnings, fmt::format("status says running but nothing was written for {:.0f} s: the process may "
                                        "have been killed",
                                        age));
    }
  }
  return s;
}

nlohmann::json RunReader::runs_summary() {
  std::lock_guard lock(mu_);
  auto out = nlohmann::json::array();
  // One row; a malformed file (e.g. a string where a time should be) costs only its row.
  auto summarize = [&](const std::string& id) -> nlohmann::json {
    fs::path run = is_run_dir(root_) ? root_ : root_ / fs::path(id);
    std::vector<std::string> w;
    auto status = status_of(run, w, /*warn_stale=*/true);
    auto cfg = load_config(run, w).value_or(nlohmann::json::object());
    if (!cfg.is_object()) cfg = nlohmann::json::object();
    auto pick = [&](std::initializer_list<const char*> keys) -> nlohmann::json {
      for (const char* k : keys)
        if (cfg.contains(k)) return cfg[k];
      return nullptr;
    };
    nlohmann::json hp = nlohmann::json::object();
    for (const char* k : {"learning_rate", "lora_r", "lora_alpha", "lora_dropout", "per_device_train_batch_size",
                          "gradient_accumulation_steps", "num_train_epochs", "max_steps", "cutoff_len", "lr_scheduler_type"})
      if (cfg.contains(k)) hp[k] = cfg[k];
    nlohmann::json final_loss = nullptr, last_step = nullptr, last_time = nullptr;
    std::error_code ec;
    if (present(run / "metrics.jsonl")) {
      auto& m = refresh(run / "metrics.jsonl", false);
      for (const char* key : {"loss", "step", "time"}) {
        auto it = m.cols.values.find(key);
        if (it == m.cols.values.end()) continue;
        for (size_t i = it->second.size(); i-- > 0;)
          if (std::isfinite(it->second[i])) {
            (key[0] == 'l' ? final_loss : key[0] == 's' ? last_step : last_time) = it->second[i];
            break;
          }
      }
      if (!m.partial_warning.empty()) add_warning(w, m.partial_warning);
    } else {
      add_warning(w, "metrics.jsonl is missing");
    }
    nlohmann::json duration = nullptr;
    if (status.contains("start_time") && status["start_time"].is_number()) {
      double end = status.value("end_time", status.value("update_time", 0.0));
      if (last_time.is_number()) end = std::max(end, last_time.get<double>());
      if (status.value("status", "") == "running" && !status.contains("stale_s"))
        end = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
      duration = end - status["start_time"].get<double>();
    }
    return {{"id", id},
                   {"status", status.value("status", "unknown")},
                   {"stale", status.contains("stale_s")},
                   {"error", status.value("error", "")},
                   {"model", pick({"model_name_or_path", "model", "base_model"})},
                   {"data", pick({"data", "dataset", "train_file", "data_path"})},
                   {"hyperparameters", hp},
                   {"final_loss", final_loss},
                   {"last_step", last_step},
                   {"total_steps", status.value("total_steps", nlohmann::json(nullptr))},
                   {"start_time", status.value("start_time", nlohmann::json(nullptr))},
                   {"duration_s", duration},
                   {"warnings", w}};
  };
  for (const auto& id : list_runs()) {
    try {
      out.push_back(summarize(id));
    } catch (const std::exception& e) {
      out.push_back({{"id", id}, {"status", "unknown"}, {"stale", false}, {"error", ""}, {"hyperparameters", nlohmann::json::object()},
                     {"warnings", nlohmann::json::array({fmt::format("this run's files cannot be summarised: {}", e.what())})}});
    }
  }
  return out;
}

nlohmann::json RunReader::run_detail(const fs::path& run) {
  std::lock_guard lock(mu_);
  std::vector<std::string> w;
  nlohmann::json d;
  d["status"] = status_of(run, w, /*warn_stale=*/false);  // the runs table warns once
  auto cfg = load_config(run, w);
  std::error_code ec;
  if (present(run / "config.yaml")) {
    std::string text = read_file(run / "config.yaml");
    d["config_yaml"] = text.size() > (1u << 20) ? text.substr(0, 1u << 20) : text;
  }
  if (!cfg) add_warning(w, "config.json and config.yaml are missing: no settings to show");
  d["config"] = cfg.value_or(nlohmann::json::object());
  auto env = read_json_file(run / "env.json", w);
  if (!env) add_warning(w, "env.json is missing: no environment to show");
  d["env"] = env.value_or(nlohmann::json::object());
  auto files = nlohmann::json::array();
  for (const auto& e : fs::directory_iterator(run, ec)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  d["files"] = files;
  d["warnings"] = w;
  return d;
}

nlohmann::json RunReader::metrics(const fs::path& run, size_t max_points) {
  std::lock_guard lock(mu_);
  std::vector<std::string> w;
  auto series = nlohmann::json::object();
  std::error_code ec;
  size_t rows = 0;
  if (!present(run / "metrics.jsonl")) {
    add_warning(w, "metrics.jsonl is missing: no training metrics yet");
  } else {
    auto& c = refresh(run / "metrics.jsonl", false);
    rows = c.cols.rows;
    w = c.cols.warnings;
    if (!c.partial_warning.empty()) add_warning(w, c.partial_warning);
    static const std::vector<double> none;
    auto col = [&](const char* k) -> const std::vector<double>& {
      auto it = c.cols.values.find(k);
      return it == c.cols.values.end() ? none : it->second;
    };
    for (const auto& name : c.cols.names)
      if (name != "step" && name != "time") series[name] = downsample_series(col("step"), col("time"), c.cols.values[name], max_points);
  }
  return {{"series", series}, {"rows", rows}, {"warnings", w}};
}

nlohmann::json RunReader::system(const fs::path& run, size_t max_points) {
  std::lock_guard lock(mu_);
  std::vector<std::string> w;
  auto series = nlohmann::json::object();
  std::error_code ec;
  size_t rows = 0;
  if (!present(run / "system.jsonl")) {
    add_warning(w, "system.jsonl is missing: no hardware readings");
  } else {
    auto& c = refresh(run / "system.jsonl", false);
    rows = c.cols.rows;
    w = c.cols.warnings;
    if (!c.partial_warning.empty()) add_warning(w, c.partial_warning);
    auto it = c.cols.values.find("time");
    std::vector<double> none;
    const auto& time = it == c.cols.values.end() ? none : it->second;
    for (const auto& name : c.cols.names)
      if (name != "time") series[name] = downsample_series(time, time, c.cols.values[name], max_points);
  }
  return {{"series", series}, {"rows", rows}, {"warnings", w}};
}

nlohmann::json RunReader::samples(const fs::path& run) {
  std::lock_guard lock(mu_);
  std::vector<std::string> w;
  auto rows = nlohmann::json::array();
  std::error_code ec;
  if (!present(run / "samples.jsonl")) {
    add_warning(w, "samples.jsonl is missing: no answers were recorded");
  } else {
    auto& c = refresh(run / "samples.jsonl", true);
    w = c.cols.warnings;
    if (!c.partial_warning.empty()) add_warning(w, c.partial_warning);
    for (const auto& o : c.objects) rows.push_back(o);
  }
  return {{"samples", rows}, {"warnings", w}};
}

}  // namespace lorafit::track
