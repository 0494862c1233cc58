// The adapter alone as convert_lora_to_gguf.py writes it (see gguf_export.h).
#include <algorithm>
#include <cmath>

#include "backend/backend.h"
#include "export/gguf_arch.h"
#include "export/gguf_export.h"
#include "formats/model_config.h"
#include "generate/adapter.h"
#include "util/error.h"

namespace lorafit {

GgufExportResult export_gguf_lora(const GgufExportOptions& o) {
  if (o.adapter_dir.empty()) throw Error("--format gguf-lora needs --adapter DIR");
  if (fs::exists(o.output) && !o.overwrite)
    throw Error("--output {} already exists; give --overwrite to replace it", o.output.string());
  const fs::path config_file = o.model_dir / "config.json";
  if (!fs::exists(config_file)) throw Error("{}: no config.json; expected a Hugging Face model folder", o.model_dir.string());
  const ModelConfig cfg = load_model_config(config_file);
  const GgufArch arch = gguf_arch_for(cfg, config_file.string());
  auto be = make_backend("cpu");
  const std::unique_ptr<LoraParams> lora = load_adapter(*be, cfg, o.adapter_dir);
  if (lora->config().use_dora)  // llama.cpp's convert_lora_to_gguf.py takes lora_A/lora_B tensors only
    throw Error("{}: a DoRA adapter (use_dora: true) cannot be written as a GGUF LoRA: llama.cpp's LoRA format has "
                "no magnitude vector; export the merged model instead (lorafit export --format gguf --adapter DIR)",
                (o.adapter_dir / "adapter_config.json").string());
  const std::vector<float> host = lora->download_params();
  const LoraConfig& lc = lora->config();

  // Modules in PEFT key order (the converter walks adapter_model.safetensors by name).
  std::vector<int> order(lora->modules().size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int>(k);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return lora->modules()[static_cast<size_t>(a)].name < lora->modules()[static_cast<size_t>(b)].name; });

  struct Part {
    int module;
    bool is_B;
    const float* data;  // A (r, I) or B (O, r)
    int heads;
  };
  const GgmlType want = [&] {
    switch (o.outtype) {
      case GgufOutType::F32: return GgmlType::F32;
      case GgufOutType::F16: return GgmlType::F16;
      case GgufOutType::BF16: return GgmlType::BF16;
      case GgufOutType::Q8_0: return GgmlType::Q8_0;
    }
    return GgmlType::F32;
  }();
  std::vector<Part> parts;
  std::vector<GgufTensor> tensors;
  GgufExportResult res;
  res.arch = arch.name;
  for (int m : order) {
    const LinearModule& mod = lora->modules()[static_cast<size_t>(m)];
    const std::string wname = mod.name + ".weight";
    const std::string gname = *gguf_tensor_name(wname, (o.adapter_dir / "adapter_model.safetensors").string());
    const float *A = nullptr, *B = nullptr;
    for (const LoraTensor& t : lora->tensors())
      if (t.module == m) (t.is_B ? B : A) = host.data() + t.offset;
    const int64_t r = lc.r;
    for (const bool is_B : {false, true}) {
      GgufTensor g;
      g.name = gname + (is_B ? ".lora_b" : ".lora_a");
      g.dims = is_B ? std::vector<int64_t>{r, mod.out} : std::vector<int64_t>{mod.in, r};
      bool fell = false;
      g.type = gguf_tensor_type(g.name, 2, g.dims[0], want, &fell);
      res.fallback_f16 += fell;
      parts.push_back({m, is_B, is_B ? B : A, is_B ? gguf_permute_heads(arch, wname) : 0});
      tensors.push_back(std::move(g));
    }
  }

  GgufMetadata kv;
  kv.set_string("general.architecture", arch.name);
  kv.set_string("general.type", "adapter");
  kv.set_string("adapter.type", "lora");
  kv.set_string("general.name", gguf_title_from_id(fs::absolute(o.adapter_dir).lexically_normal().filename().string()));
  // llama.cpp scales by alpha / r: write s·r so rsLoRA (s = alpha/√r) is applied as PEFT does.
  kv.set_f32("adapter.lora.alpha", static_cast<float>(lc.use_rslora ? lc.scale() * lc.r : lc.alpha));
  kv.set_u32("general.quantization_version", 2);

  res.merged_modules = 0;
  res.tensors = static_cast<int>(tensors.size());
  for (const GgufTensor& t : tensors) res.bytes += t.nbytes();
  gguf_write(
      o.output, kv, tensors,
      [&](size_t k, const GgufSink& out) {
        const Part& p = parts[k];
        const GgufTensor& g = tensors[k];
        const int64_t row = g.dims[0], rows = g.dims[1];
        std::vector<float> f(p.data, p.data + row * rows);  // (rows, row)
        if (p.heads) gguf_permute_rows(f.data(), rows, row, p.heads);
        std::vector<uint8_t> enc(ggml_nbytes(g.type, row * rows));
        ggml_encode(g.type, f.data(), row * rows, enc.data());
        out(enc.data(), enc.size());
      },
      o.progress);
  return res;
}

}  // namespace lorafit
