// CudaBackend: backward ops, the fused chunked lm-head + cross-entropy pair, and the
// optimizer ops. Mirrors cpu/backend_backward.cpp op for op.
#include <algorithm>
#include <climits>
#include <cmath>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"

namespace lorafit {

using cuda::ET;

namespace {

// Vocabulary rows per lm-head chunk, as on the CPU: the logits chunk is (N, 4096) fp32
// (32 MB at N = 2048), never (N, V).
constexpr int64_t kVocabChunk = 4096;

const char* at_bytes(const void* p, int64_t elems, ET t) {
  return static_cast<const char*>(p) + static_cast<size_t>(elems) * cuda::et_size(t);
}

}  // namespace

void CudaBackend::rmsnorm_backward(Tensor dx, Tensor dout, Tensor x, Tensor w, Tensor rstd) {
  const ET at = cuda::act_type(x, "rmsnorm_backward x");
  LF_CHECK(cuda::act_type(dx, "rmsnorm_backward dx") == at && cuda::act_type(dout, "rmsnorm_backward dout") == at,
           "rmsnorm_backward dtypes differ");
  const ET wt = cuda::weight_type(w, "rmsnorm_backward w");
  cuda::check_dev(rstd, DType::F32, "rmsnorm_backward rstd");
  const int64_t C = x.dim(-1), N = x.numel() / C;
  LF_CHECK(dx.numel() == N * C && dout.numel() == N * C && w.numel() == C && rstd.numel() == N);
  LF_CUDA(cuda::rmsnorm_backward(dx.data, dout.data, x.data, at, w.data, wt, rstd.as<float>(), N, C));
}

void CudaBackend::bias_grad(Tensor dbias, Tensor dout) {
  cuda::check_dev(dbias, DType::F32, "bias_grad dbias");
  const ET at = cuda::act_type(dout, "bias_grad dout");
  const int64_t O = dbias.numel(), N = O ? dout.numel() / O : 0;
  LF_CHECK(dout.numel() == N * O);
  LF_CUDA(cuda::bias_grad(dbias.as<float>(), dout.data, at, N, O));
}

void CudaBackend::attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                                     Tensor out, Tensor lse, Tensor seg) {
  const char* op = "attention_backward";
  const ET at = cuda::act_type(q, op);
  for (const Tensor* t : {&dq, &dk, &dv, &dout, &k, &v, &out})
    LF_CHECK(cuda::act_type(*t, op) == at, "{}: tensor dtypes differ", op);
  cuda::check_dev(lse, DType::F32, "attention_backward lse");
  LF_CHECK(q.ndim == 4 && k.ndim == 4, "{}: q and k must be (B,T,H,D)", op);
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2);
  LF_CHECK(Hkv > 0 && H % Hkv == 0 && k.numel() == B * T * Hkv * D && v.numel() == k.numel() &&
           dk.numel() == k.numel() && dv.numel() == k.numel() && dq.numel() == q.numel() &&
           dout.numel() == q.numel() && out.numel() == q.numel() && lse.numel() == B * H * T);
  if (D < 1 || D > cuda::kMaxHeadDim)
    throw Error("attention head dim {} is not supported by the CUDA backend (1..{}); use --device cpu", D,
                cuda::kMaxHeadDim);
  const int32_t* sg = nullptr;
  if (!seg.empty()) {
    cuda::check_dev(seg, DType::I32, "attention_backward seg");
    LF_CHECK(seg.numel() == B * T);
    sg = seg.as<int32_t>();
  }
  float* delta = static_cast<float*>(scratch(kDlogits, static_cast<size_t>(B * H * T) * 4));  // (B,H,T)
  LF_CUDA(cuda::attention_backward(dq.data, dk.data, dv.data, dout.data, q.data, k.data, v.data, out.data,
                                   lse.as<float>(), sg, delta, at, {B, T, T, H, Hkv, D, 0}));
}

void CudaBackend::swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) {
  const char* op = "swiglu_backward";
  const ET at = cuda::act_type(gate, op);
  for (const Tensor* t : {&dgate, &dup, &dout, &up}) LF_CHECK(cuda::act_type(*t, op) == at, "{}: dtypes differ", op);
  const int64_t n = gate.numel();
  LF_CHECK(dgate.numel() == n && dup.numel() == n && dout.numel() == n && up.numel() == n);
  LF_CUDA(cuda::swiglu_backward(dgate.data, dup.data, dout.data, gate.data, up.data, at, n));
}

// Logits of vocabulary rows [v0, v0+nc) into logits (N, nc) F32; *wchunk = those rows of w
// in the compute type ct (w itself, or a widened copy).
void CudaBackend::lmhead_chunk_logits(float* logits, const void* xin, ET ct, const Tensor& w, int64_t v0, int64_t nc,
                                      int64_t N, int64_t C, const void** wchunk) {
  const ET wt = cuda::weight_type(w, "lmhead w");
  if (wt == ct) {
    *wchunk = at_bytes(w.data, v0 * C, wt);
  } else {
    void* buf = scratch(kConvB, static_cast<size_t>(nc * C) * 4);
    LF_CUDA(cuda::convert(buf, ET::F32, at_bytes(w.data, v0 * C, wt), wt, nc * C));
    *wchunk = buf;
  }
  gemm(logits, ET::F32, nc, xin, C, false, *wchunk, C, true, ct, N, nc, C, 1.f, 0.f);
}

// What both lm-head ops do first: refuse a target outside [0, V) that is not −100, and bring
// x (N,C) to the GEMM compute type ct (x itself, or an fp32 copy when x and w differ).
const void* CudaBackend::lmhead_prepare(const Tensor& x, const Tensor& w, const int32_t* tg, int64_t N, ET* ct) {
  const int64_t V = w.dim(0), C = w.dim(1);
  const int64_t bad = first_out_of_range(tg, N, static_cast<int32_t>(V), true);
  if (bad < N) {
    int32_t t = 0;
    download(&t, tg + bad, sizeof t);
    throw Error("lm-head cross-entropy: target {} at row {} is outside the vocabulary [0, {}) "
                "and is not the ignore index -100; check the labels of the batch",
                t, bad, V);
  }
  const ET at = cuda::act_type(x, "lmhead x"), wt = cuda::weight_type(w, "lmhead w");
  *ct = at == wt ? at : ET::F32;
  if (at == *ct) return x.data;
  void* conv = scratch(kConvA, static_cast<size_t>(N * C) * 4);
  LF_CUDA(cuda::convert(conv, ET::F32, x.data, at, N * C));
  return conv;
}

namespace {
void check_lmhead(const Tensor& x, const Tensor& w, const Tensor& targets) {
  cuda::act_type(x, "lmhead x");
  cuda::weight_type(w, "lmhead w");
  cuda::check_dev(targets, DType::I32, "lmhead targets");
  LF_CHECK(w.ndim == 2 && w.dim(0) > 0 && w.dim(0) <= INT_MAX && w.dim(1) > 0, "lmhead w {}", w.shape_str());
}
}  // namespace

void CudaBackend::lmhead_ce_forward(Tensor loss, Tensor lse, Tensor x, Tensor w, Tensor targets) {
  check_lmhead(x, w, targets);
  cuda::check_dev(loss, DType::F32, "lmhead loss");
  cuda::check_dev(lse, DType::F32, "lmhead lse");
  const int64_t V = w.dim(0), C = w.dim(1), N = x.numel() / C;
  LF_CHECK(x.numel() == N * C && loss.numel() == N && lse.numel() == N && targets.numel() == N);
  if (N == 0) return;
  const int32_t* tg = targets.as<int32_t>();  // (N)
  ET ct;
  const void* xin = lmhead_prepare(x, w, tg, N, &ct);
  const int64_t VC = std::min(kVocabChunk, V);
  float* logits = static_cast<float*>(scratch(kLogits, static_cast<size_t>(N * VC) * 4));  // (N, VC)
  char* state = static_cast<char*>(scratch(kCeState, static_cast<size_t>(N) * 20));
  double* run_max = reinterpret_cast<double*>(state);  // (N)
  double* run_sum = run_max + N;                       // (N)
  float* zt = reinterpret_cast<float*>(run_sum + N);   // (N) the target's logit
  LF_CUDA(cuda::ce_init(run_max, run_sum, zt, N));
  for (int64_t v0 = 0; v0 < V; v0 += VC) {
    const int64_t nc = std::min(V, v0 + VC) - v0;
    const void* wchunk = nullptr;
    lmhead_chunk_logits(logits, xin, ct, w, v0, nc, N, C, &wchunk);
    LF_CUDA(cuda::ce_chunk_stats(run_max, run_sum, zt, logits, tg, N, nc, v0));
  }
  LF_CUDA(cuda::ce_finish(loss.as<float>(), lse.as<float>(), run_max, run_sum, zt, tg, N));
}

// Recomputes each chunk's logits, turns them into dlogits, and accumulates
// dx += dlogits (N,VC) · wc (VC,C) in fp32 (the first chunk overwrites: activation gradient).
void CudaBackend::lmhead_ce_backward(Tensor dx, Tensor dloss, Tensor x, Tensor w, Tensor targets, Tensor lse) {
  check_lmhead(x, w, targets);
  const ET dt = cuda::act_type(dx, "lmhead dx");
  cuda::check_dev(dloss, DType::F32, "lmhead dloss");
  cuda::check_dev(lse, DType::F32, "lmhead lse");
  const int64_t V = w.dim(0), C = w.dim(1), N = x.numel() / C;
  LF_CHECK(x.numel() == N * C && dx.numel() == N * C && dloss.numel() == N && lse.numel() == N &&
           targets.numel() == N);
  if (N == 0) return;
  const int32_t* tg = targets.as<int32_t>();  // (N)
  ET ct;
  const void* xin = lmhead_prepare(x, w, tg, N, &ct);
  const int64_t VC = std::min(kVocabChunk, V);
  float* logits = static_cast<float*>(scratch(kLogits, static_cast<size_t>(N * VC) * 4));  // (N, VC)
  // dlogits in the GEMM's input type: in place over the fp32 logits, or a 16-bit chunk.
  void* dlogits = ct == ET::F32 ? static_cast<void*>(logits)
                                : scratch(kDlogits, static_cast<size_t>(N * VC) * cuda::et_size(ct));
  float* dacc = dt == ET::F32 ? dx.as<float>()
                              : static_cast<float*>(scratch(kDxAcc, static_cast<size_t>(N * C) * 4));  // (N, C)
  for (int64_t v0 = 0; v0 < V; v0 += VC) {
    const int64_t nc = std::min(V, v0 + VC) - v0;
    const void* wchunk = nullptr;
    lmhead_chunk_logits(logits, xin, ct, w, v0, nc, N, C, &wchunk);
    LF_CUDA(cuda::ce_dlogits(dlogits, ct, logits, dloss.as<float>(), lse.as<float>(), tg, N, nc, v0));
    gemm(dacc, ET::F32, C, dlogits, nc, false, wchunk, C, false, ct, N, C, nc, 1.f, v0 == 0 ? 0.f : 1.f);
  }
  if (dt != ET::F32) LF_CUDA(cuda::convert(dx.data, dt, dacc, ET::F32, N * C));
}

void CudaBackend::adamw(Tensor p, Tensor g, Tensor m, Tensor v, const AdamWParams& hp) {
  for (const Tensor* t : {&p, &g, &m, &v}) cuda::check_dev(*t, DType::F32, "adamw");
  const int64_t n = p.numel();
  LF_CHECK(g.numel() == n && m.numel() == n && v.numel() == n && hp.step >= 1);
  // The scalars of cpu::adamw_kernel, rounded to fp32 the same way.
  const double bc1 = 1.0 - std::pow(hp.beta1, static_cast<double>(hp.step));
  const double bc2 = 1.0 - std::pow(hp.beta2, static_cast<double>(hp.step));
  cuda::AdamWScalars s{};
  s.step_size = static_cast<float>(hp.lr / bc1);
  s.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  s.decay = static_cast<float>(1.0 - hp.lr * hp.weight_decay);
  s.w1 = static_cast<float>(1.0 - hp.beta1);
  s.b2 = static_cast<float>(hp.beta2);
  s.w2 = static_cast<float>(1.0 - hp.beta2);
  s.eps = static_cast<float>(hp.eps);
  s.apply_decay = hp.weight_decay != 0.0 ? 1 : 0;
  LF_CUDA(cuda::adamw(p.as<float>(), g.as<float>(), m.as<float>(), v.as<float>(), n, s));
}

double CudaBackend::sum_squares(Tensor x) {
  cuda::check_dev(x, DType::F32, "sum_squares x");
  if (x.numel() == 0) return 0.0;
  double* buf = static_cast<double*>(scratch(kSmall, (1 + cuda::kSumSquaresBlocks) * sizeof(double)));
  LF_CUDA(cuda::sum_squares(buf, buf + 1, x.as<float>(), x.numel()));
  double s = 0.0;
  LF_CUDA(cudaMemcpy(&s, buf, sizeof s, cudaMemcpyDeviceToHost));
  return s;
}

}  // namespace lorafit
