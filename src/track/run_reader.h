// Reading run folders for the dashboard: tolerant of runs in progress, runs killed
// mid-write (a truncated last line) and missing files — what exists is returned with
// warnings, never an exception for bad content.
//
// JSONL files are cached per path and read incrementally: a request for a live run parses
// only the bytes appended since the last request (a 100,000-step metrics.jsonl is parsed
// once). Series are downsampled server-side to at most `max_points` per chart.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lorafit::track {

namespace fs = std::filesystem;

// A JSONL file of flat numeric rows (metrics.jsonl, system.jsonl) as columns. Missing
// values are NaN. system.jsonl's "gpus" array is flattened to "gpu<i>_<field>".
struct Columns {
  std::vector<std::string> names;              // column order of first appearance
  std::map<std::string, std::vector<double>> values;  // each of length rows
  size_t rows = 0;
  std::vector<std::string> warnings;
};

// Keeps x (and a second x, e.g. time) where y is finite, then reduces to at most
// `max_points` by keeping the min and max y of each of max_points/2 equal buckets (in x
// order), so spikes survive. Returns {"x":[...], "t":[...], "y":[...], "total": n}.
nlohmann::json downsample_series(const std::vector<double>& x, const std::vector<double>& t,
                                 const std::vector<double>& y, size_t max_points);

class RunReader {
 public:
  explicit RunReader(fs::path runs_dir);  // throws Error if runs_dir is not a folder

  // Run ids are folder names found by scanning: runs_dir itself if it holds run files, else
  // its subfolders (and their subfolders, one level) that do. Only these ids resolve, so a
  // request cannot name a path outside runs_dir.
  std::vector<std::string> list_runs() const;
  // nullptr-like: empty path if `id` is not a run.
  fs::path resolve(const std::string& id) const;

  nlohmann::json runs_summary();                        // GET /api/runs
  nlohmann::json run_detail(const fs::path& run);       // config, env, status, config.yaml text
  nlohmann::json metrics(const fs::path& run, size_t max_points);  // series per metric
  nlohmann::json system(const fs::path& run, size_t max_points);
  nlohmann::json samples(const fs::path& run);

 private:
  struct CachedFile {
    uintmax_t offset = 0;       // bytes consumed (up to the last '\n')
    size_t lines = 0;
    Columns cols;
    std::vector<nlohmann::json> objects;  // samples.jsonl keeps whole objects
    std::string partial_warning;          // set while the file ends without '\n'
    fs::file_time_type mtime{};
  };
  // Reads new complete lines of `path` into the cache; returns a copy-safe reference while
  // holding mu_ (callers lock).
  CachedFile& refresh(const fs::path& path, bool keep_objects);
  nlohmann::json status_of(const fs::path& run, std::vector<std::string>& warnings, bool warn_stale);

  fs::path root_;
  std::mutex mu_;
  std::map<std::string, CachedFile> cache_;
};

}  // namespace lorafit::track
