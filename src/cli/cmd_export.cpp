// lorafit export: a model (merged with an adapter) as a GGUF file for llama.cpp / Ollama, with
// an Ollama Modelfile beside it; or the adapter alone as a llama.cpp LoRA GGUF.
//   lorafit export --model DIR [--adapter DIR] --format gguf --outtype f16 --output FILE.gguf
//   lorafit export --adapter DIR [--model DIR] --format gguf-lora --output FILE.gguf
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "formats/json_util.h"
#include "cli/command.h"
#include "export/gguf_export.h"
#include "export/modelfile.h"
#include "generate/adapter.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#include "track/progress.h"
#include "util/error.h"

namespace lorafit::cli {

namespace {

struct ExportOptions {
  std::string model, adapter, output, format = "gguf", outtype;
  bool overwrite = false, modelfile = true;
};

// Stop strings for Ollama: the eos/eot tokens of the GGUF, plus generation_config.json's eos ids.
std::vector<std::string> stop_tokens(const GgufExportResult& r, const fs::path& model_dir) {
  std::vector<std::string> stops = r.vocab.stop_tokens;
  const fs::path gc = model_dir / "generation_config.json";
  if (fs::exists(gc)) {
    const Tokenizer tok = Tokenizer::load(r.tokenizer_dir);
    nlohmann::json j;
    try {
      j = parse_json(read_file(gc), gc.string());
    } catch (const std::exception&) {  // generation_config.json was checked when the tokenizer loaded; stops are extra
    }
    std::vector<int64_t> ids;
    if (j.is_object() && j.contains("eos_token_id")) {
      const auto& e = j["eos_token_id"];
      if (e.is_number_integer()) ids.push_back(e.get<int64_t>());
      else if (e.is_array())
        for (const auto& x : e)
          if (x.is_number_integer()) ids.push_back(x.get<int64_t>());
    }
    for (int64_t id : ids) {
      const std::string t = tok.id_to_token(static_cast<int32_t>(id));
      if (!t.empty() && std::find(stops.begin(), stops.end(), t) == stops.end()) stops.push_back(t);
    }
  }
  std::erase(stops, std::string());
  return stops;
}

void write_modelfile(const ExportOptions& o, const GgufExportResult& r, const fs::path& model_dir) {
  const fs::path out(o.output);
  const fs::path mf = out.parent_path() / "Modelfile";
  if (fs::exists(mf) && !o.overwrite)
    throw Error("{} already exists; give --overwrite to replace it (or --modelfile false)", mf.string());
  std::string go;
  const std::vector<std::string> stops = stop_tokens(r, model_dir);
  if (!r.vocab.chat_template.empty()) {
    const TokenizerConfig tc = TokenizerConfig::load(r.tokenizer_dir);
    const ChatTemplate tmpl(r.vocab.chat_template, (r.tokenizer_dir / "tokenizer_config.json").string() + " chat_template",
                            tc.special_tokens_map());
    const std::string bos = tc.add_bos_token && tc.bos_token ? *tc.bos_token : "";
    try {
      go = ollama_template(chat_parts(tmpl, bos, stops));
    } catch (const Error& err) {  // the GGUF is complete and carries the Jinja template itself
      std::fprintf(stderr, "warning: Modelfile written without TEMPLATE (the GGUF keeps the Jinja chat template): %s\n",
                   err.what());
    }
  }
  const std::string system = o.adapter.empty() ? "" : trained_system_prompt(o.adapter);
  write_file_atomic(mf, modelfile_text("./" + out.filename().string(), go, stops, system));
  std::printf("wrote %s (ollama create NAME -f %s)\n", mf.string().c_str(), mf.string().c_str());
}

void run_export(const ExportOptions& o) {
  if (o.format != "gguf" && o.format != "gguf-lora")
    throw Error("--format {}: not implemented; choose gguf or gguf-lora", o.format);
  if (o.model.empty() && o.adapter.empty()) throw Error("give --model DIR (and/or --adapter DIR)");
  GgufExportOptions e;
  e.model_dir = o.model.empty() ? resolve_base_model(o.adapter) : fs::path(o.model);
  e.adapter_dir = o.adapter;
  e.output = o.output;
  // Defaults as llama.cpp's converters: gguf "auto" (the weights' 16-bit type), gguf-lora f32.
  const std::string outtype = !o.outtype.empty() ? o.outtype : o.format == "gguf" ? "auto" : "f32";
  e.outtype = outtype == "auto" ? gguf_auto_outtype(e.model_dir) : parse_gguf_outtype(outtype);
  e.overwrite = o.overwrite;
  std::unique_ptr<track::Progress> bar;
  int64_t shown = -1;  // MiB last reported
  e.progress = [&](uint64_t done, uint64_t total) {
    constexpr uint64_t MiB = 1 << 20;
    const auto total_mib = static_cast<int64_t>((total + MiB - 1) / MiB);
    if (!bar) bar = std::make_unique<track::Progress>("export MiB", total_mib);
    const int64_t mib = done == total ? total_mib : static_cast<int64_t>(done / MiB);
    if (mib != shown) bar->update(shown = mib);
  };
  const GgufExportResult r = o.format == "gguf" ? export_gguf_model(e) : export_gguf_lora(e);
  if (bar) bar->finish();
  std::printf("wrote %s: %s, %d tensors, %.1f MiB%s", o.output.c_str(), r.arch.c_str(), r.tensors,
              static_cast<double>(r.bytes) / (1 << 20), r.merged_modules ? "" : "\n");
  if (r.merged_modules) std::printf(", %d adapted modules merged from %s\n", r.merged_modules, o.adapter.c_str());
  if (r.fallback_f16)
    std::printf("note: %d tensors have rows not a multiple of 32 and were written as F16 (as llama.cpp's converter does)\n",
                r.fallback_f16);
  if (o.format == "gguf" && o.modelfile) write_modelfile(o, r, e.model_dir);
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<ExportOptions>();
  sub.add_option("--model", o->model, "base model folder (default: the adapter's base_model_name_or_path)");
  sub.add_option("--adapter", o->adapter, "PEFT adapter folder to merge (gguf) or convert (gguf-lora)");
  sub.add_option("--format", o->format, "gguf (the merged model) or gguf-lora (the adapter alone)")->capture_default_str();
  sub.add_option("--outtype", o->outtype,
                 "tensor type of the weights: f32, f16, bf16, q8_0 or auto (default for gguf: bf16 for bf16 weights, "
                 "else f16, as convert_hf_to_gguf; gguf-lora: f32)");
  sub.add_option("--output", o->output, "the .gguf file to write")->required();
  sub.add_flag("--overwrite", o->overwrite, "replace an existing output file");
  sub.add_option("--modelfile", o->modelfile, "write an Ollama Modelfile beside the GGUF (gguf format)")
      ->capture_default_str();
  sub.callback([o] { run_export(*o); });
}

const bool registered =
    register_command("export", "export a model (+ adapter) as GGUF for llama.cpp/Ollama, or an adapter as LoRA GGUF", setup);

}  // namespace

}  // namespace lorafit::cli
