// `lorafit serve`: an OpenAI-compatible HTTP server (docs/serve.md) for a base model and its
// LoRA adapters, as vLLM serves them: GET /v1/models, POST /v1/chat/completions and
// /v1/completions (streaming with server-sent events), GET /health, GET /metrics (Prometheus).
// Requests decode in the Engine's continuous batches; a request's "model" names the base
// (--served-model-name) or an adapter (--lora-modules NAME=DIR).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "generate/inference.h"

namespace lorafit::serve {

struct ServeOptions {
  InferenceOptions inf;                                         // model, device, dtype
  std::vector<std::pair<std::string, std::string>> lora_modules;  // NAME, DIR
  std::string served_model_name;  // "" : the --model argument as given (vLLM's default)
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;          // "" : no key needed
  int64_t max_batch = 8;        // rows decoded together per served model
  int64_t max_model_len = 0;    // 0: the model's context
  int64_t max_queue = 256;      // requests waiting for a slot; more get 503 + Retry-After
  size_t max_body_bytes = size_t{4} << 20;
  bool enable_lora_loading = false;
};

class Server {
 public:
  // Loads the model and adapters and binds the socket (Error when either fails).
  explicit Server(const ServeOptions& options);
  ~Server();
  void run();   // serves until stop() (or a signal handler calling stop())
  void stop();
  int port() const;
  std::string url() const;
  std::vector<std::string> model_names() const;  // the base first, then the adapters

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorafit::serve
