#include "serve/server.h"

#include <chrono>
#include <mutex>
#include <random>

#include "generate/adapter.h"
#include "net/http_server.h"
#include "serve/engine.h"
#include "serve/openai_request.h"
#include "util/error.h"

namespace lorafit::serve {

namespace {

using json = nlohmann::json;

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// How often a waiting handler looks whether its client is still there (seconds).
constexpr double kWatchS = 0.05;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
}

// How one served model's conversations become ids: the chat template of its own folder (an
// adapter folder with tokenizer_config.json holds the one training used; else the base's), the
// variables training recorded, and the stop ids that go with that template.
struct ChatRender {
  std::unique_ptr<ChatTemplate> tmpl;  // null: no template (/v1/completions only)
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  std::vector<int32_t> eos_ids;
};

struct Served {
  std::string name;
  const LoraParams* lora = nullptr;  // null: the base
  std::string root;                  // the folder
  std::shared_ptr<const ChatRender> chat;
};

}  // namespace

struct Server::Impl {
  ServeOptions opt;
  std::unique_ptr<Inference> inf;
  std::vector<std::unique_ptr<LoraParams>> loaded;  // adapters loaded at run time (kept while served or not)
  std::mutex models_mu;
  std::vector<Served> models;  // [0] the base
  std::unique_ptr<Engine> engine;
  httplib::Server http;
  int port = 0;
  int64_t created = now_s();
  int64_t capacity = 0;
  std::atomic<int64_t> next_id{0};
  std::shared_ptr<const ChatRender> base_chat;

  explicit Impl(const ServeOptions& o) : opt(o) {
    InferenceOptions io = o.inf;
    for (const auto& [n, d] : o.lora_modules) io.adapters.push_back(d);
    try {
      inf = std::make_unique<Inference>(io);
    } catch (const Error& e) {  // a model without a chat template still serves /v1/completions
      if (std::string(e.what()).find("chat_template") == std::string::npos) throw;
      io.raw = true;
      inf = std::make_unique<Inference>(io);
    }
    if (!inf->tokenizer()) throw Error("{}: no tokenizer.json; lorafit serve needs the tokenizer", inf->model_dir().string());
    base_chat = chat_render(inf->model_dir(), false);
    models.push_back({o.served_model_name.empty() ? o.inf.model : o.served_model_name, nullptr,
                      inf->model_dir().string(), base_chat});
    if (models[0].name.empty()) models[0].name = inf->model_dir().string();
    const auto names = inf->adapter_names();
    for (size_t i = 0; i < o.lora_modules.size(); ++i) {
      for (const auto& m : models)
        if (m.name == o.lora_modules[i].first)
          throw Error("--lora-modules {}: the name is already served; give each adapter its own name", m.name);
      models.push_back({o.lora_modules[i].first, inf->adapter(names[i]), o.lora_modules[i].second,
                        chat_render(o.lora_modules[i].second, true)});
    }
    const int64_t ctx = context_length(inf->model().config());
    if (o.max_model_len < 0 || o.max_model_len > ctx)
      throw Error("--max-model-len {}: the model's context is {} positions (max_position_embeddings); use 1..{}",
                  o.max_model_len, ctx, ctx);
    if (o.max_batch < 1) throw Error("--max-batch {}: must be at least 1", o.max_batch);
    if (o.max_queue < 1) throw Error("--max-queue {}: must be at least 1", o.max_queue);
    capacity = o.max_model_len > 0 ? o.max_model_len : ctx;
    engine = std::make_unique<Engine>(inf->model(), *inf->tokenizer(), o.max_batch, capacity, o.max_queue);
    routes();
    port = net::bind(http, o.host, o.port, "--port", "--host");
  }

  // The conversation rules of `folder` (an adapter's without tokenizer_config.json: the base's).
  // Its generation_config.json when it has one, else the base's, gives the eos ids.
  std::shared_ptr<const ChatRender> chat_render(const fs::path& folder, bool adapter) {
    if (adapter && !fs::exists(folder / "tokenizer_config.json")) return base_chat;
    auto r = std::make_shared<ChatRender>();
    std::optional<TokenizerConfig> tc;
    if (fs::exists(folder / "tokenizer_config.json")) tc = TokenizerConfig::load(folder);
    if (tc && !tc->chat_templates.empty()) r->tmpl = std::make_unique<ChatTemplate>(ChatTemplate::from_config(*tc));
    if (adapter) r->vars = trained_template_vars(folder);
    const fs::path gen = fs::exists(folder / "generation_config.json") ? folder : inf->model_dir();
    GenerationConfig gc;
    if (fs::exists(gen / "generation_config.json")) gc = load_generation_config(gen / "generation_config.json");
    r->eos_ids = stop_ids(gc, inf->tokenizer(), tc, inf->model().config());
    return r;
  }

  std::optional<Served> find_model(const std::string& name) {
    std::lock_guard lk(models_mu);
    for (const auto& m : models)
      if (m.name == name) return m;
    return std::nullopt;
  }

  json model_list() {
    std::lock_guard lk(models_mu);
    json data = json::array();
    for (const auto& m : models)
      data.push_back({{"id", m.name}, {"object", "model"}, {"created", created}, {"owned_by", "lorafit"},
                      {"root", m.root}, {"parent", m.lora ? json(models[0].name) : json()},
                      {"max_model_len", capacity}});
    return {{"object", "list"}, {"data", data}};
  }

  // The request as a Job: the model, the prompt's ids, the decoding settings (the model's
  // generation_config.json defaults under the request's values, as vLLM's default).
  std::shared_ptr<Job> make_job(const CompletionRequest& r, std::string& model_name) {
    const std::optional<Served> m = find_model(r.model);
    if (!m) throw ApiError(404, fmt::format("The model `{}` does not exist.", r.model), "model", "model_not_found");
    model_name = m->name;
    auto job = std::make_shared<Job>();
    job->lora = m->lora;
    const char* what = r.chat ? "messages" : "prompt";
    try {
      if (r.chat) {
        if (!m->chat->tmpl)
          throw ApiError(400, fmt::format("{} has no chat template (tokenizer_config.json chat_template); use "
                                          "/v1/completions with a prompt", m->root),
                         "messages", "no_chat_template");
        ChatOptions co;
        co.add_generation_prompt = true;
        co.extra = m->chat->vars;
        job->prompt = inf->tokenizer()->encode(m->chat->tmpl->render(r.messages, co));  // the template writes BOS
      } else {
        job->prompt = r.prompt_ids.empty() ? inf->encode_text(r.prompt) : r.prompt_ids;
      }
      inf->model().check_input(job->prompt, static_cast<int64_t>(job->prompt.size()), what);
    } catch (const Error& e) {
      throw ApiError(400, e.what(), what);
    }
    const int64_t P = static_cast<int64_t>(job->prompt.size());
    if (P == 0) throw ApiError(400, fmt::format("{} encodes to no tokens", what), what);
    if (P >= capacity)
      throw ApiError(400, fmt::format("This model's maximum context length is {} tokens. However, your {} has {} "
                                      "tokens, which leaves no room for an answer. Please shorten it.",
                                      capacity, what, P),
                     what, "context_length_exceeded");
    GenerateSettings s = inf->defaults();
    s.eos_ids = m->chat->eos_ids;
    if (r.max_tokens) {
      if (P + *r.max_tokens > capacity)
        throw ApiError(400, fmt::format("This model's maximum context length is {} tokens. However, you requested {} "
                                        "tokens ({} in the {}, {} in the completion). Please reduce the length of "
                                        "the {} or max_tokens.",
                                        capacity, P + *r.max_tokens, P, what, *r.max_tokens, what),
                       r.chat ? "max_tokens" : "max_tokens", "context_length_exceeded");
      s.max_new_tokens = static_cast<int>(*r.max_tokens);
    } else {
      s.max_new_tokens = static_cast<int>(capacity - P);  // vLLM: the rest of the context
    }
    if (r.temperature) {
      s.sampling.do_sample = *r.temperature > 0;  // 0: greedy, as vLLM
      if (*r.temperature > 0) s.sampling.temperature = *r.temperature;
    }
    if (r.top_p) s.sampling.top_p = *r.top_p;
    if (r.top_k) s.sampling.top_k = *r.top_k < 0 ? 0 : static_cast<int>(*r.top_k);  // -1: off (vLLM)
    if (r.min_p) s.sampling.min_p = *r.min_p > 0 ? std::optional<double>(*r.min_p) : std::nullopt;
    if (r.repetition_penalty) s.sampling.repetition_penalty = *r.repetition_penalty;
    if (!s.sampling.do_sample) {  // greedy ignores the warpers; don't let the model's defaults refuse it
      s.sampling.top_p = 1;
      s.sampling.top_k = 0;
      s.sampling.min_p.reset();
    }
    try {
      validate_sampling_params(s.sampling, "the request");
    } catch (const Error& e) {
      throw ApiError(400, e.what());
    }
    s.seed = r.seed ? *r.seed : std::random_device{}();
    if (r.ignore_eos) s.eos_ids.clear();
    s.logprobs = r.logprobs;
    job->settings = s;
    job->stop = r.stop;
    job->stop_ids = r.stop_token_ids;
    return job;
  }

  json usage(const Job& j) {
    return {{"prompt_tokens", j.prompt_tokens},
            {"completion_tokens", j.completion_tokens},
            {"total_tokens", j.prompt_tokens + j.completion_tokens}};
  }

  // Logprobs of tokens [from, to) of a job, in the shape of the endpoint: chat's
  // {"content": [{token, logprob, bytes, top_logprobs}]} or the completions' legacy
  // {tokens, token_logprobs, top_logprobs, text_offset}; offset counts the characters of the
  // token strings before `from` (text_offset). A token is its text alone, special tokens
  // spelled out; bytes are its raw UTF-8 bytes (whole characters may span tokens).
  json logprobs_json(bool chat, const std::vector<TokenLogprobs>& lps, size_t from, size_t to, int64_t& offset) {
    const Tokenizer& tok = *inf->tokenizer();
    auto text = [&](int32_t id) { return tok.decode(std::span(&id, 1), false); };
    auto bytes = [&](int32_t id) {
      json b = json::array();
      for (unsigned char c : tok.decode_bytes(std::span(&id, 1), false)) b.push_back(c);
      return b;
    };
    auto value = [](float lp) { return std::max(lp, -9999.f); };  // as vLLM: no -inf in JSON
    if (chat) {
      json content = json::array();
      for (size_t i = from; i < to; ++i) {
        json top = json::array();
        for (const auto& [id, lp] : lps[i].top)
          top.push_back({{"token", text(id)}, {"logprob", value(lp)}, {"bytes", bytes(id)}});
        content.push_back({{"token", text(lps[i].id)}, {"logprob", value(lps[i].logprob)}, {"bytes", bytes(lps[i].id)},
                           {"top_logprobs", top}});
      }
      return {{"content", content}};
    }
    json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
    for (size_t i = from; i < to; ++i) {
      const std::string t = text(lps[i].id);
      tokens.push_back(t);
      token_lps.push_back(value(lps[i].logprob));
      json top = json::object();  // the chosen token and the k most likely, as vLLM lists them
      top[t] = value(lps[i].logprob);
      for (const auto& [id, lp] : lps[i].top) top[text(id)] = value(lp);
      tops.push_back(top);
      offsets.push_back(offset);
      offset += static_cast<int64_t>(std::count_if(t.begin(), t.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // characters, as Python's len
      }));
    }
    return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
  }

  json choice(bool chat, const std::string& text, const json& finish, const json& stop_reason, bool delta, bool first,
              json logprobs = nullptr) {
    json c = {{"index", 0}};
    if (chat) {
      if (!delta) c["message"] = {{"role", "assistant"}, {"content", text}};
      else if (first) c["delta"] = {{"role", "assistant"}, {"content", text}};
      else if (finish.is_null()) c["delta"] = {{"content", text}};
      else c["delta"] = json::object();
    } else {
      c["text"] = text;
    }
    c["logprobs"] = std::move(logprobs);
    c["finish_reason"] = finish;
    c["stop_reason"] = stop_reason;
    return c;
  }

  void complete(const httplib::Request& req, httplib::Response& res, bool chat) {
    const CompletionRequest r = parse_completion_request(req.body, chat);
    std::string model_name;
    std::shared_ptr<Job> job = make_job(r, model_name);
    if (!engine->submit(job)) {
      res.set_header("Retry-After", "1");
      throw ApiError(503, "the server is busy: its queue is full (--max-queue); retry later", "", "queue_full");
    }
    const std::string id = fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", next_id++);
    const char* object = chat ? "chat.completion" : "text_completion";
    auto watch = std::make_shared<net::ClientWatch>(req);
    if (!r.stream) {
      while (!engine->wait(*job, std::string::npos, kWatchS))
        if (watch->gone()) {  // nobody to answer: free the slot, skip the response
          engine->cancel(*job);
          return;
        }
      const json out = engine->with_lock([&] {
        if (!job->error.empty()) throw ApiError(400, job->error);
        int64_t offset = 0;
        json lp = r.logprobs >= 0 ? logprobs_json(chat, job->logprobs, 0, job->logprobs.size(), offset) : json();
        return json{{"id", id}, {"object", object}, {"created", now_s()}, {"model", model_name},
                    {"choices", json::array({choice(chat, job->text, job->finish_reason, job->stop_reason, false, false,
                                                    std::move(lp))})},
                    {"usage", usage(*job)}};
      });
      res.set_content(dump(out), "application/json");
      return;
    }
    const char* chunk_object = chat ? "chat.completion.chunk" : "text_completion";
    const bool include_usage = r.include_usage, with_logprobs = r.logprobs >= 0;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, job, watch, id, chat, chunk_object, model_name, include_usage, with_logprobs](size_t,
                                                                                             httplib::DataSink& sink) {
          const int64_t t = now_s();
          auto send = [&](const json& j) {
            const std::string line = "data: " + dump(j) + "\n\n";
            return sink.write(line.data(), line.size());
          };
          auto chunk = [&](const json& c) {
            return json{{"id", id}, {"object", chunk_object}, {"created", t}, {"model", model_name},
                        {"choices", json::array({c})}};
          };
          size_t sent = 0, sent_lp = 0;  // bytes of text, logprob entries
          int64_t offset = 0;
          bool first = true;
          if (chat && !send(chunk(choice(true, "", nullptr, nullptr, true, true)))) {
            engine->cancel(*job);
            return false;
          }
          first = false;
          while (true) {
            const bool done = engine->wait(*job, sent, kWatchS);
            std::string piece, error;
            json finish, stop_reason, use, lp, last_lp;
            engine->with_lock([&] {
              piece = job->text.substr(sent, job->ready - sent);
              sent = job->ready;
              error = job->error;
              if (with_logprobs && !piece.empty()) {  // the tokens whose text this piece completes
                size_t n = sent_lp;
                while (n < job->token_end.size() && job->token_end[n] <= sent) ++n;
                lp = logprobs_json(chat, job->logprobs, sent_lp, n, offset);
                sent_lp = n;
              }
              if (done) {
                finish = job->finish_reason;
                stop_reason = job->stop_reason;
                use = usage(*job);
                if (with_logprobs) last_lp = logprobs_json(chat, job->logprobs, sent_lp, job->logprobs.size(), offset);
              }
              return 0;
            });
            if (!error.empty()) {
              const std::string line = "data: " + error_body(ApiError(400, error)) + "\n\n";
              sink.write(line.data(), line.size());
              break;
            }
            const bool gone = piece.empty() ? !done && watch->gone()
                                            : !send(chunk(choice(chat, piece, nullptr, nullptr, true, first, lp)));
            if (gone) {
              engine->cancel(*job);  // the client is gone: its slot frees at the next step
              return false;
            }
            if (done) {
              if (!send(chunk(choice(chat, "", finish, stop_reason, true, false, last_lp)))) return false;
              if (include_usage &&
                  !send({{"id", id}, {"object", chunk_object}, {"created", t}, {"model", model_name},
                         {"choices", json::array()}, {"usage", use}}))
                return false;
              break;
            }
          }
          const std::string end = "data: [DONE]\n\n";
          sink.write(end.data(), end.size());
          sink.done();
          return true;
        },
        [this, job](bool success) {
          if (!success) engine->cancel(*job);
        });
  }

  void load_lora(const httplib::Request& req, httplib::Response& res, bool load) {
    if (!opt.enable_lora_loading)
      throw ApiError(404, "adapters are loaded at run time only when the server runs with --enable-lora-loading",
                     "", "lora_loading_disabled");
    json body;
    try {
      body = json::parse(req.body, nullptr, true, false);
    } catch (const std::exception&) {
      throw ApiError(400, "the request body is not valid JSON", "", "invalid_json");
    }
    if (!body.is_object() || !body.contains("lora_name") || !body["lora_name"].is_string() ||
        body["lora_name"].get<std::string>().empty())
      throw ApiError(400, "lora_name must be a non-empty string", "lora_name", "invalid_value");
    const std::string name = body["lora_name"];
    std::lock_guard lk(models_mu);
    auto it = std::find_if(models.begin(), models.end(), [&](const Served& m) { return m.name == name; });
    if (!load) {
      if (it == models.end() || it == models.begin())
        throw ApiError(404, fmt::format("The lora adapter '{}' (lora_name) cannot be found.", name), "lora_name", "not_found");
      models.erase(it);  // its weights stay allocated: requests still decoding with it finish
      res.set_content(fmt::format("Success: LoRA adapter '{}' removed successfully.", name), "text/plain");
      return;
    }
    if (it != models.end())
      throw ApiError(400, fmt::format("The lora adapter '{}' has already been loaded.", name), "lora_name",
                     "invalid_value");
    if (!body.contains("lora_path") || !body["lora_path"].is_string())
      throw ApiError(400, "lora_path must be a string (an adapter folder on the server)", "lora_path", "invalid_value");
    const std::string path = body["lora_path"];
    try {
      loaded.push_back(load_adapter(inf->model().backend(), inf->model().config(), path));
    } catch (const Error& e) {
      throw ApiError(400, e.what(), "lora_path", "invalid_value");
    }
    std::shared_ptr<const ChatRender> chat;
    try {
      chat = chat_render(path, true);
    } catch (const Error& e) {
      throw ApiError(400, e.what(), "lora_path", "invalid_value");
    }
    models.push_back({name, loaded.back().get(), path, chat});
    res.set_content(fmt::format("Success: LoRA adapter '{}' added successfully.", name), "text/plain");
  }

  std::string metrics() {
    const EngineStats s = engine->stats();
    std::string o;
    auto metric = [&](const char* name, const char* type, const char* help, double v) {
      o += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, v);
    };
    metric("lorafit_requests_total", "counter", "Completion requests accepted.", static_cast<double>(s.requests_total));
    metric("lorafit_requests_running", "gauge", "Requests decoding now.", static_cast<double>(s.running));
    metric("lorafit_requests_waiting", "gauge", "Requests waiting for a batch slot.", static_cast<double>(s.waiting));
    metric("lorafit_prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
           static_cast<double>(s.prompt_tokens_total));
    metric("lorafit_generation_tokens_total", "counter", "Tokens generated.", static_cast<double>(s.generation_tokens_total));
    metric("lorafit_generation_tokens_per_second", "gauge", "Tokens generated per second of decoding (all rows).",
           s.decode_s_total > 0 ? static_cast<double>(s.generation_tokens_total) / s.decode_s_total : 0.0);
    o += "# HELP lorafit_time_to_first_token_seconds Time from queueing to the first token.\n"
         "# TYPE lorafit_time_to_first_token_seconds histogram\n";
    for (size_t b = 0; b < kTtftBounds.size(); ++b)
      o += fmt::format("lorafit_time_to_first_token_seconds_bucket{{le=\"{}\"}} {}\n", kTtftBounds[b], s.ttft_buckets[b]);
    o += fmt::format("lorafit_time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {}\n", s.ttft_count);
    o += fmt::format("lorafit_time_to_first_token_seconds_sum {}\n", s.ttft_sum_s);
    o += fmt::format("lorafit_time_to_first_token_seconds_count {}\n", s.ttft_count);
    return o;
  }

  // Runs a handler; an ApiError becomes OpenAI's error object with its status.
  template <class F>
  auto api(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      }
    };
  }

  void routes() {
    net::HttpLimits lim;
    lim.workers = static_cast<size_t>(std::max<int64_t>(64, opt.max_batch * 4 + 16));
    lim.read_timeout_s = 30;  // a request body must arrive within this
    lim.write_timeout_s = 30;
    lim.keep_alive_s = 5;
    net::configure(http, lim);
    http.set_payload_max_length(opt.max_body_bytes);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!net::host_allowed(opt.host, req.get_header_value("Host"))) {
        send_error(res, ApiError(403, "unexpected Host header on a loopback server", "", "forbidden"));
        return httplib::Server::HandlerResponse::Handled;
      }
      if (!opt.api_key.empty() && req.path.starts_with("/v1/") &&
          req.get_header_value("Authorization") != "Bearer " + opt.api_key) {
        send_error(res, ApiError(401, "Unauthorized: give the server's key as \"Authorization: Bearer KEY\"", "",
                                 "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump(model_list()), "application/json");
    });
    http.Post("/v1/chat/completions", api([this](const httplib::Request& q, httplib::Response& s) { complete(q, s, true); }));
    http.Post("/v1/completions", api([this](const httplib::Request& q, httplib::Response& s) { complete(q, s, false); }));
    http.Post("/v1/load_lora_adapter", api([this](const httplib::Request& q, httplib::Response& s) { load_lora(q, s, true); }));
    http.Post("/v1/unload_lora_adapter", api([this](const httplib::Request& q, httplib::Response& s) { load_lora(q, s, false); }));
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 413)
        send_error(res, ApiError(413, fmt::format("the request body is larger than {} bytes (--max-body-bytes)",
                                                  opt.max_body_bytes)));
      else if (res.status == 404)
        send_error(res, ApiError(404, fmt::format("no route {} {}", req.method, req.path)));
      else
        send_error(res, ApiError(res.status, fmt::format("HTTP {}", res.status)));
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, ApiError(500, what));
    });
  }
};

Server::Server(const ServeOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Server::~Server() { stop(); }
void Server::run() { impl_->http.listen_after_bind(); }
void Server::stop() { impl_->http.stop(); }
int Server::port() const { return impl_->port; }
std::string Server::url() const { return net::url(impl_->opt.host, impl_->port); }
std::vector<std::string> Server::model_names() const {
  std::lock_guard lk(impl_->models_mu);
  std::vector<std::string> n;
  for (const auto& m : impl_->models) n.push_back(m.name);
  return n;
}

}  // namespace lorafit::serve
