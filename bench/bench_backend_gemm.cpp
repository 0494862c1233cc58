// GEMM library comparison at the shapes of a Qwen2.5-0.5B LoRA step (hidden 896, ffn 4864,
// kv 128, LoRA r 64, N = 2·384 rows) and of a batch-1 decode step, interleaved per repetition
// so that both sides see the same machine load; prints medians.
//   bench_backend_gemm [--reps 7] [--rows 768]
// Columns (GFLOP/s, median of reps; "cpu" = flops per process CPU second × threads, which
// discounts time the process spent descheduled on a shared machine):
//   openblas  cblas_sgemm of Debian's OpenBLAS (when built with it; its core is printed)
//   f32       lorafit's gemm() in fp32 (oneDNN matmul primitive)
//   bf16      lorafit's gemm() with bf16 operands, fp32 result (oneDNN bf16 matmul)
// Decode rows (M = 1, weights bf16 (O, I)), GB/s of weight bytes read:
//   convert+sgemm  the old path: weight block widened to fp32, then sgemm
//   matvec_f32     fp32 x, bf16 W streamed once (Highway FMA)
//   matvec_bf16    bf16 x, bf16 W streamed once (vdpbf16ps where present)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/simd.h"
#include "util/error.h"

#ifdef LORAFIT_BENCH_OPENBLAS
#include <cblas.h>
extern "C" char* openblas_get_corename();
extern "C" char* openblas_get_config();
#endif

namespace {

using namespace lorafit;

double wall_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timer {
  std::vector<double> wall, cpu;
  template <class F>
  void run(F&& f) {
    const double w0 = wall_s(), c0 = cpu_s();
    f();
    wall.push_back(wall_s() - w0);
    cpu.push_back(cpu_s() - c0);
  }
  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
  // work / median time; cpu: work per CPU second × threads
  std::string rate(double work) const {
    const int th = omp_get_max_threads();
    return fmt::format("{:6.1f} ({:6.1f} cpu)", work / median(wall) * 1e-9, work / median(cpu) * th * 1e-9);
  }
};

int run(int argc, char** argv) {
  int reps = 7;
  int64_t rows = 768;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--reps") reps = std::stoi(v);
    else if (k == "--rows") rows = std::stoll(v);
    else throw Error("unknown argument {}", k);
  }
  std::printf("threads %d; %s\n", omp_get_max_threads(), make_backend("cpu")->kernel_info().c_str());
#ifdef LORAFIT_BENCH_OPENBLAS
  std::printf("OpenBLAS: core %s; %s\n", openblas_get_corename(), openblas_get_config());
#endif
  struct Shape {
    const char* name;
    int64_t N, K;  // out features, in features: C (rows, N) = A (rows, K) · W (N, K)ᵀ
  };
  const Shape shapes[] = {{"q/o proj", 896, 896},   {"k/v proj", 128, 896},   {"gate/up", 4864, 896},
                          {"down", 896, 4864},      {"lora A (r 64)", 64, 896}, {"lora B (r 64)", 896, 64},
                          {"lora A down", 64, 4864}, {"lora B gate/up", 4864, 64}};
  std::printf("\nGEMM M=%lld rows, GFLOP/s wall (cpu), median of %d\n%-16s %-22s %-22s %-22s\n",
              static_cast<long long>(rows), reps, "shape", "openblas sgemm", "lorafit f32", "lorafit bf16");
  for (const Shape& s : shapes) {
    const int64_t M = rows, N = s.N, K = s.K;
    std::vector<float> a(static_cast<size_t>(M * K), 0.5f), w(static_cast<size_t>(N * K), 0.25f), c(static_cast<size_t>(M * N));
    std::vector<uint16_t> ab(a.size()), wb(w.size());
    cpu::convert_f32_to_bf16(ab.data(), a.data(), M * K);
    cpu::convert_f32_to_bf16(wb.data(), w.data(), N * K);
    Timer tob, t32, t16;
    for (int r = 0; r < reps + 1; ++r) {  // the first repetition warms up (JIT, page faults) and is dropped
#ifdef LORAFIT_BENCH_OPENBLAS
      tob.run([&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                    static_cast<int>(K), 1.f, a.data(), static_cast<int>(K), w.data(), static_cast<int>(K), 0.f,
                    c.data(), static_cast<int>(N));
      });
#endif
      t32.run([&] { cpu::sgemm(false, true, M, N, K, 1.f, a.data(), K, w.data(), K, 0.f, c.data(), N); });
      t16.run([&] {
        cpu::gemm(DType::BF16, DType::F32, false, true, M, N, K, 1.f, ab.data(), K, wb.data(), K, 0.f, c.data(), N);
      });
      if (r == 0) {
        for (Timer* t : {&tob, &t32, &t16})
          if (!t->wall.empty()) t->wall.clear(), t->cpu.clear();
      }
    }
    const double fl = 2.0 * static_cast<double>(M * N * K);
    std::printf("%-16s %-22s %-22s %-22s\n", s.name, tob.wall.empty() ? "(not built)" : tob.rate(fl).c_str(),
                t32.rate(fl).c_str(), t16.rate(fl).c_str());
  }
  const Shape decode[] = {{"q/o proj", 896, 896}, {"gate/up", 4864, 896}, {"down", 896, 4864}, {"lm head", 151936, 896}};
  std::printf("\ndecode M=1, bf16 weights, GB/s of weights read, wall (cpu), median of %d\n%-16s %-22s %-22s %-22s\n",
              reps, "shape", "convert+sgemm", "matvec_f32", "matvec_bf16");
  auto be = make_backend("cpu");
  for (const Shape& s : decode) {
    const int64_t N = s.N, K = s.K;
    std::vector<float> x(static_cast<size_t>(K), 0.5f), y(static_cast<size_t>(N));
    std::vector<uint16_t> xb(static_cast<size_t>(K), 0x3f00), wb(static_cast<size_t>(N * K), 0x3e80);
    std::vector<float> scratch(static_cast<size_t>(N * K));
    Timer told, tf, tb;
    for (int r = 0; r < reps + 1; ++r) {
      told.run([&] {
        cpu::convert_bf16_to_f32(scratch.data(), wb.data(), N * K);
        cpu::sgemm(false, true, 1, N, K, 1.f, x.data(), K, scratch.data(), K, 0.f, y.data(), N);
      });
      tf.run([&] { cpu::matvec_f32(y.data(), x.data(), wb.data(), true, 1, N, K, 1.f, 0.f); });
      tb.run([&] { cpu::matvec_bf16(y.data(), false, xb.data(), wb.data(), 1, N, K, 1.f, 0.f); });
      if (r == 0)
        for (Timer* t : {&told, &tf, &tb}) t->wall.clear(), t->cpu.clear();
    }
    const double bytes = 2.0 * static_cast<double>(N * K);
    std::printf("%-16s %-22s %-22s %-22s\n", s.name, told.rate(bytes).c_str(), tf.rate(bytes).c_str(),
                tb.rate(bytes).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_backend_gemm: %s\n", e.what());
    return 1;
  }
}
