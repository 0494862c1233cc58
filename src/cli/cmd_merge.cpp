// lorafit merge: a PEFT adapter merged into its base model, written as a normal Hugging Face
// folder that transformers loads as it is.
//   lorafit merge --adapter DIR --output_dir DIR [--model DIR] [--max_shard_size 2GB]
// W' = round(W + s·B·A) in fp32, rounded once to the base dtype (generate/adapter.h).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "generate/adapter.h"
#include "util/error.h"
#include "util/parse.h"

namespace lorafit::cli {

namespace {

struct MergeOptions {
  std::string model, adapter, output, max_shard_size = "2GB";
};

// "2GB", "500MB", "1.5GB", "100KB", "123" (bytes); decimal units as transformers' max_shard_size.
int64_t parse_size(const std::string& s) {
  const size_t unit_at = s.find_last_of("0123456789.") + 1;  // 0 when there is no digit
  const std::string unit = s.substr(unit_at);
  const std::optional<double> v = try_parse_double(std::string_view(s).substr(0, unit_at));
  double mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KB") mult = 1e3;
  else if (unit == "MB") mult = 1e6;
  else if (unit == "GB") mult = 1e9;
  if (!v || mult == 0 || !(*v > 0))
    throw Error("--max_shard_size \"{}\": expected a size such as 2GB, 500MB or 1000000", s);
  return static_cast<int64_t>(*v * mult);
}

void run_merge(const MergeOptions& o) {
  const fs::path model = o.model.empty() ? resolve_base_model(o.adapter) : fs::path(o.model);
  MergeExportOptions opts;
  opts.max_shard_bytes = parse_size(o.max_shard_size);
  const std::string warning = qlora_merge_warning(o.adapter, model);
  const int n = export_merged(model, o.adapter, o.output, opts);  // refuses a 4-bit model folder by name
  if (!warning.empty()) std::fprintf(stderr, "%s\n", warning.c_str());
  std::printf("merged %d adapted modules of %s into %s -> %s\n", n, o.adapter.c_str(), model.string().c_str(),
              o.output.c_str());
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<MergeOptions>();
  sub.add_option("--model,--model_name_or_path", o->model, "base model folder (default: the adapter's base_model_name_or_path)");
  sub.add_option("--adapter,--adapter_name_or_path", o->adapter, "PEFT adapter folder")->required();
  sub.add_option("--output_dir,--output", o->output, "new folder for the merged model (must not exist)")->required();
  sub.add_option("--max_shard_size", o->max_shard_size, "largest safetensors shard, e.g. 2GB or 500MB")
      ->capture_default_str();
  sub.callback([o] { run_merge(*o); });
}

const bool registered = register_command("merge", "merge a LoRA adapter into its base model (HF folder)", setup);

}  // namespace

}  // namespace lorafit::cli
