// GPU LoRA training throughput: tokens/s, MFU and device memory of one optimizer step
// (forward, chunked lm-head + CE, backward, clip, AdamW) of the real model code on the CUDA
// backend, LoRA r 64 alpha 16 on all seven projections, random token ids.
//   bench_train_cuda --model DIR [--device cuda] [--T 384] [--B 2] [--ckpt 1] [--iters 3]
//                    [--peak-tflops 989]
// DIR is a random-init model folder (bench/gpu_baseline.py --make-model writes a
// Qwen2.5-7B-shaped one). Prints one line: `lorafit <device> train T=.. B=.. ckpt=..: ...`.
// MFU counts model FLOPs only: 4·P per token for the frozen linears (forward + input
// gradients, no weight gradients) plus 6·L·H·D·T causal-attention FLOPs per token; the
// LoRA matmuls and the checkpointing recompute are not counted.
// A plain main (not Google Benchmark): one configuration per process, so memory is per run.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "train/train_step.h"
#ifdef LORAFIT_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace {

using namespace lorafit;

struct Args {
  std::string model, device = "cuda";
  int64_t T = 384, B = 2, iters = 3;
  bool ckpt = true;
  double peak_tflops = 989.0;  // H100/H200 SXM dense bf16
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") a.model = v;
    else if (k == "--device") a.device = v;
    else if (k == "--T") a.T = std::stoll(v);
    else if (k == "--B") a.B = std::stoll(v);
    else if (k == "--iters") a.iters = std::stoll(v);
    else if (k == "--ckpt") a.ckpt = v != "0";
    else if (k == "--peak-tflops") a.peak_tflops = std::stod(v);
    else throw Error("unknown argument {}", k);
  }
  if (a.model.empty()) throw Error("--model DIR is required (bench/gpu_baseline.py --make-model writes one)");
  return a;
}

// Device memory in use (total − free), GiB; −1 where unknown.
double device_used_gib(const std::string& device) {
#ifdef LORAFIT_HAVE_CUDA
  if (device == "cuda") {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      return static_cast<double>(total_b - free_b) / (1024.0 * 1024.0 * 1024.0);
  }
#endif
  return -1;
}

int run(const Args& a) {
  auto be = make_backend(a.device);
  Model m(*be, a.model);
  const ModelConfig& c = m.config();
  LoraConfig lc;
  lc.r = 64;
  lc.alpha = 16;
  lc.dropout = 0.0;
  lc.target = parse_lora_target("all-linear");
  LoraParams p(*be, lc, c);
  lora_init_peft(p, 42, m.weights().dtype() == DType::BF16);
  TrainConfig tc;
  tc.gradient_checkpointing = a.ckpt;
  LoraTrainer trainer(m, p, tc, LrSchedule(LrSchedulerType::Linear, 1e-4, 1000));
  std::mt19937 g(0);
  std::uniform_int_distribution<int32_t> tok(0, c.vocab_size - 1);
  MicroBatch mb;
  mb.B = a.B;
  mb.T = a.T;
  for (int64_t i = 0; i < a.B * a.T; ++i) {
    mb.ids.push_back(tok(g));
    mb.labels.push_back(mb.ids.back());
  }
  trainer.step({mb});  // warm-up: arena and scratch allocation, cuBLAS heuristics
  be->sync();
  const auto t0 = std::chrono::steady_clock::now();
  double loss = 0;
  for (int64_t i = 0; i < a.iters; ++i) loss = trainer.step({mb}).loss;
  be->sync();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / a.iters;
  const double tokens_s = static_cast<double>(a.B * a.T) / s;
  const double C = c.hidden_size, F = c.intermediate_size, H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  const double L = c.num_layers, V = c.vocab_size;
  const double P = L * (2 * C * H * D + 2 * C * Hkv * D + 3 * C * F) + V * C;  // linears + lm head
  const double flops_per_token = 4 * P + 6 * L * H * D * static_cast<double>(a.T);
  const double mfu = tokens_s * flops_per_token / (a.peak_tflops * 1e12);
  std::printf("lorafit %s train T=%lld B=%lld ckpt=%d layers=%d: %.3f s/step, %.0f tokens/s, MFU %.1f%% "
              "(peak %.0f TFLOPS), device memory in use %.2f GiB, loss %.4f\n",
              a.device.c_str(), static_cast<long long>(a.T), static_cast<long long>(a.B), a.ckpt ? 1 : 0,
              c.num_layers, s, tokens_s, 100 * mfu, a.peak_tflops, device_used_gib(a.device), loss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_cuda: %s\n", e.what());
    return 1;
  }
}
