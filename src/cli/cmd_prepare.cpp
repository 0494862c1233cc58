// lorafit prepare: reads, converts and validates a dataset with the model's tokenizer and chat
// template exactly as `lorafit train` would (same keys), and prints token-length statistics.
//   lorafit prepare --model DIR --data FILE.jsonl [--cutoff_len 384 --system ... --key value ...]
//   --export FILE.jsonl also writes the conversations in chat form ({"messages": [...]}).
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "train/data_prep.h"
#include "train/render.h"
#include "train/train_config.h"
#include "util/error.h"

namespace lorafit::cli {

namespace {

void run_prepare(std::vector<std::string> args) {
  std::string export_path;
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--export" && i + 1 < args.size()) {
      export_path = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
  TrainSettings s = parse_train_args(args);
  if (s.output_dir.empty()) s.output_dir = ".";  // not used by prepare
  validate_settings(s);
  const ChatRenderer r(s.model_name_or_path, chat_setup_of(s));
  const PreparedData d = prepare_data(s, r);
  std::printf("%s", describe_data(d, s).c_str());
  const RenderStats& t = d.train_stats;
  std::printf("length histogram (tokens):\n");
  const int64_t edges[] = {64, 128, 256, 384, 512, 1024, 2048, 4096, INT64_MAX};
  int64_t lo = 0;
  for (int64_t hi : edges) {
    int64_t n = 0;
    for (int64_t len : t.lengths) n += len > lo && len <= hi;
    if (n) std::printf("  %5lld..%-8s %6lld\n", static_cast<long long>(lo + 1),
                       hi == INT64_MAX ? "" : std::to_string(hi).c_str(), static_cast<long long>(n));
    lo = hi;
  }
  if (!d.eval.empty()) std::printf("eval split: %zu samples\n", d.eval.size());
  if (!export_path.empty()) {
    std::string out;
    for (const Record& rec : d.ds.records)
      out += (rec.messages.empty() ? nlohmann::ordered_json{{"text", rec.text}}
                                   : nlohmann::ordered_json{{"messages", rec.messages}})
                 .dump() +
             "\n";
    write_file_atomic(export_path, out);
    std::printf("wrote %zu conversations to %s\n", d.ds.records.size(), export_path.c_str());
  }
  std::printf("ok: the dataset is ready for `lorafit train`\n");
}

void setup(CLI::App& sub) {
  sub.allow_extras();
  sub.footer("Takes the keys of `lorafit train` (--model, --data, --dataset_format, --columns, --system, --cutoff_len, "
             "...) and --export FILE.jsonl.");
  sub.callback([&sub] { run_prepare(sub.remaining()); });
}

const bool registered =
    register_command("prepare", "convert and validate a dataset, print token-length statistics", setup);

}  // namespace

}  // namespace lorafit::cli
