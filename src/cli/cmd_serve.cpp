// lorafit serve: an OpenAI-compatible server (docs/serve.md), flags as vLLM names them.
//   lorafit serve --model DIR [--lora-modules NAME=DIR ...] [--served-model-name NAME]
//                 [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--max-batch N] [--max-model-len N]
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/quant_flags.h"
#include "serve/server.h"
#include "util/error.h"
#include "util/signals.h"

namespace lorafit::cli {

namespace {

struct ServeFlags {
  serve::ServeOptions o;
  std::vector<std::string> lora_modules;
};

void run_serve(ServeFlags& f) {
  if (f.o.inf.model.empty()) throw Error("serve: give the model folder with --model DIR");
  for (const auto& m : f.lora_modules) {
    const size_t eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
      throw Error("--lora-modules {}: expected NAME=DIR (an adapter folder served as model NAME)", m);
    f.o.lora_modules.emplace_back(m.substr(0, eq), m.substr(eq + 1));
  }
  serve::Server server(f.o);
  std::printf("lorafit serve: OpenAI-compatible API at %sv1 (Ctrl-C to stop)\n", server.url().c_str());
  const auto names = server.model_names();
  for (size_t i = 0; i < names.size(); ++i)
    std::printf("  model %s%s\n", names[i].c_str(), i == 0 ? " (base)" : " (LoRA adapter)");
  if (f.o.host != "127.0.0.1" && f.o.host != "localhost" && f.o.host != "::1")
    std::printf("note: bound to %s, so other machines can reach it%s\n", f.o.host.c_str(),
                f.o.api_key.empty() ? " without a key (--api-key KEY)" : "");
  std::fflush(stdout);
  StopScope stop([&](int) { server.stop(); }, [](int sig) { std::_Exit(128 + sig); });
  server.run();
}

void setup(CLI::App& sub) {
  auto f = std::make_shared<ServeFlags>();
  serve::ServeOptions& o = f->o;
  sub.add_option("--model,--model_name_or_path", o.inf.model, "Hugging Face model folder");
  sub.add_option("--lora_modules", f->lora_modules, "adapters to serve: NAME=DIR ... (a request's model picks one)");
  sub.add_option("--served_model_name", o.served_model_name, "the base model's name in the API (default: --model)");
  sub.add_option("--host", o.host, "address to bind (loopback unless told otherwise)")->capture_default_str();
  sub.add_option("--port", o.port, "TCP port (0: any free port)")->capture_default_str();
  sub.add_option("--api_key", o.api_key, "require \"Authorization: Bearer KEY\" on /v1/ routes");
  sub.add_option("--max_batch,--max_num_seqs", o.max_batch, "rows decoded together per served model")
      ->capture_default_str();
  sub.add_option("--max_model_len", o.max_model_len, "positions per request, prompt + answer (default: the model's "
                                                     "context)");
  sub.add_option("--max_queue", o.max_queue, "requests waiting for a slot before 503 + Retry-After")
      ->capture_default_str();
  sub.add_option("--max_body_bytes", o.max_body_bytes, "largest request body (413 beyond)")->capture_default_str();
  sub.add_flag("--enable_lora_loading", o.enable_lora_loading, "allow POST /v1/load_lora_adapter and unload_lora_adapter");
  sub.add_option("--device", o.inf.device, "cpu or cuda")->capture_default_str();
  add_quant_flags(sub, o.inf.quant);
  sub.add_option("--dtype", o.inf.dtype, "activations: auto, bf16 or f32")->capture_default_str();
  sub.callback([f] { run_serve(*f); });
}

const bool registered = register_command("serve", "serve the model and its adapters over an OpenAI-compatible API", setup);

}  // namespace

}  // namespace lorafit::cli
