// CudaBackend: device setup, memory, capabilities, the cuBLAS GEMM and the forward ops.
// Each op checks dtypes and shapes like CpuBackend (a mismatch is our bug: LF_CHECK), then
// launches the kernel of the same name (cuda_kernels.h).
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"

namespace lorafit {

using cuda::ET;

namespace {

// Elements of 16-bit weights widened to fp32 per GEMM block when activations are F32
// (64 MB): big enough for full-speed GEMMs, never a full fp32 copy of a large matrix.
constexpr int64_t kConvertBlock = int64_t{1} << 24;

cublasHandle_t handle(void* h) { return static_cast<cublasHandle_t>(h); }

cudaDataType cuda_type(ET t) {
  switch (t) {
    case ET::F32: return CUDA_R_32F;
    case ET::BF16: return CUDA_R_16BF;
    default: return CUDA_R_16F;
  }
}

int gemm_int(int64_t v) {
  LF_CHECK(v >= 0 && v <= INT_MAX, "GEMM dimension {} exceeds cuBLAS's int range", v);
  return static_cast<int>(v);
}

// (rows, cols) of a tensor seen as a matrix: the last dimension is cols.
struct Mat {
  int64_t rows, cols;
};
Mat as_matrix(const Tensor& t) {
  LF_CHECK(t.ndim >= 1);
  const int64_t cols = t.dim(-1);
  return {cols ? t.numel() / cols : 0, cols};
}

const char* at_bytes(const void* p, int64_t elems, ET t) {
  return static_cast<const char*>(p) + static_cast<size_t>(elems) * cuda::et_size(t);
}

}  // namespace

CudaBackend::CudaBackend() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // clear the error so a later CPU-only run is unaffected
    throw Error("no CUDA device: {} ({}); use --device cpu", cudaGetErrorString(e), cudaGetErrorName(e));
  }
  if (n == 0) throw Error("no CUDA device: the driver reports none (check CUDA_VISIBLE_DEVICES); use --device cpu");
  cudaDeviceProp prop{};
  LF_CUDA(cudaGetDeviceProperties(&prop, device_));
  if (prop.major < 8)
    throw Error("CUDA device 0 ({}) has compute capability {}.{}; the CUDA backend needs 8.0 or newer (Ampere, "
                "Ada, Hopper); use --device cpu",
                prop.name, prop.major, prop.minor);
  LF_CUDA(cudaSetDevice(device_));
  cublasHandle_t h = nullptr;
  LF_CUBLAS(cublasCreate(&h));
  cublas_ = h;
  // Default math: no TF32 for fp32 GEMMs (the F32 path keeps fp32 rounding), tensor cores for
  // bf16. LORAFIT_CUDA_TF32=1 opts the fp32 GEMMs into TF32 tensor cores (about 8x faster on
  // F32 activations, 10-bit mantissa inputs: the F32 parity bounds no longer hold).
  const char* tf32 = std::getenv("LORAFIT_CUDA_TF32");
  const bool use_tf32 = tf32 != nullptr && std::string_view(tf32) == "1";
  LF_CUBLAS(cublasSetMathMode(h, use_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

CudaBackend::~CudaBackend() {
  // Destructors do not throw: errors here are sticky and would have surfaced at the last sync.
  for (void* p : scratch_)
    if (p != nullptr) (void)cudaFree(p);
  if (cublas_ != nullptr) (void)cublasDestroy(handle(cublas_));
}

bool CudaBackend::supports(Op op, DType act, DType weight) const {
  const bool act_ok = act == DType::F32 || act == DType::BF16;
  const bool weight_ok = weight == DType::F32 || weight == DType::BF16 || weight == DType::F16;
  if (op == Op::AdamW || op == Op::SumSquares) return act == DType::F32 && weight == DType::F32;  // flat F32 buffers
  if (op == Op::Dequantize4bit) return act_ok && weight == DType::U8;
  return act_ok && weight_ok;
}

void* CudaBackend::alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 256));
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    throw Error("out of memory: could not allocate {} bytes on the GPU ({} of {} bytes free); use a smaller "
                "batch or sequence length, or enable gradient checkpointing",
                bytes, free_b, total_b);
  }
  LF_CUDA(e);
  LF_CUDA(cudaMemset(p, 0, std::max<size_t>(bytes, 256)));
  return p;
}

// Never throws (it runs in destructors): a failure here is sticky and the next checked call reports it.
void CudaBackend::free(void* p) {
  if (p != nullptr) (void)cudaFree(p);
}

void CudaBackend::upload(void* dst, const void* host_src, size_t bytes) {
  if (bytes > 0) LF_CUDA(cudaMemcpy(dst, host_src, bytes, cudaMemcpyDefault));
}
void CudaBackend::download(void* host_dst, const void* src, size_t bytes) {
  if (bytes > 0) LF_CUDA(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDefault));
}
void CudaBackend::sync() { LF_CUDA(cudaDeviceSynchronize()); }

void* CudaBackend::scratch(Slot slot, size_t bytes) {
  if (bytes > scratch_bytes_[slot]) {
    if (scratch_[slot] != nullptr) LF_CUDA(cudaFree(scratch_[slot]));  // cudaFree waits for pending work
    scratch_[slot] = nullptr;
    scratch_bytes_[slot] = 0;
    const size_t want = (bytes + (size_t{1} << 20) - 1) / (size_t{1} << 20) * (size_t{1} << 20);  // whole MiB
    scratch_[slot] = alloc(want);
    scratch_bytes_[slot] = want;
  }
  return scratch_[slot];
}

void CudaBackend::gemm(void* out, ET ot, int64_t ldc, const void* a, int64_t lda, bool ta, const void* b, int64_t ldb,
                       bool tb, ET in, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
  // Row-major out = op(a)·op(b) is column-major outᵀ = op(b)ᵀ·op(a)ᵀ: swap the operands.
  LF_CUBLAS(cublasGemmEx(handle(cublas_), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                         gemm_int(N), gemm_int(M), gemm_int(K), &alpha, b, cuda_type(in), gemm_int(ldb), a,
                         cuda_type(in), gemm_int(lda), &beta, out, cuda_type(ot), gemm_int(ldc), CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT));
}

int64_t CudaBackend::first_out_of_range(const int32_t* v, int64_t n, int32_t hi, bool allow_ignore) {
  LF_CHECK(n <= INT_MAX, "{} indices exceed the range check's int", n);
  int* flag = static_cast<int*>(scratch(kSmall, sizeof(int)));
  const int init = static_cast<int>(n);
  LF_CUDA(cudaMemcpy(flag, &init, sizeof init, cudaMemcpyHostToDevice));
  LF_CUDA(cuda::first_out_of_range(flag, v, n, hi, allow_ignore));
  int got = 0;
  LF_CUDA(cudaMemcpy(&got, flag, sizeof got, cudaMemcpyDeviceToHost));
  return got;
}

void CudaBackend::embedding_forward(Tensor out, Tensor ids, Tensor table) {
  const ET at = cuda::act_type(out, "embedding out");
  cuda::check_dev(ids, DType::I32, "embedding ids");
  const ET wt = cuda::weight_type(table, "embedding table");
  LF_CHECK(table.ndim == 2, "embedding table {}", table.shape_str());
  const int64_t N = ids.numel(), V = table.dim(0), C = table.dim(1);
  LF_CHECK(out.numel() == N * C && out.dim(-1) == C, "embedding out {} for N={} C={}", out.shape_str(), N, C);
  LF_CHECK(V <= INT_MAX);
  const int64_t bad = first_out_of_range(ids.as<int32_t>(), N, static_cast<int32_t>(V), false);
  if (bad < N) {
    int32_t id = 0;
    download(&id, ids.as<int32_t>() + bad, sizeof id);
    throw Error("token id {} at position {} is outside the vocabulary [0, {})", id, bad, V);
  }
  LF_CUDA(cuda::embedding_forward(out.data, at, ids.as<int32_t>(), table.data, wt, N, C));
}

void CudaBackend::rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) {
  const ET at = cuda::act_type(x, "rmsnorm x");
  LF_CHECK(cuda::act_type(out, "rmsnorm out") == at, "rmsnorm: out and x dtypes differ");
  const ET wt = cuda::weight_type(w, "rmsnorm weight");
  const auto [N, C] = as_matrix(x);
  LF_CHECK(out.numel() == N * C && out.dim(-1) == C, "rmsnorm out {} vs x {}", out.shape_str(), x.shape_str());
  LF_CHECK(w.numel() == C, "rmsnorm weight {} for C={}", w.shape_str(), C);
  if (!rstd.empty()) {
    cuda::check_dev(rstd, DType::F32, "rmsnorm rstd");
    LF_CHECK(rstd.numel() == N, "rmsnorm rstd {} for N={}", rstd.shape_str(), N);
  }
  LF_CUDA(cuda::rmsnorm_forward(out.data, rstd.empty() ? nullptr : rstd.as<float>(), x.data, at, w.data, wt, N, C,
                                eps));
}

void CudaBackend::matmul(Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha, float beta) {
  const ET ot = cuda::act_type(out, "matmul out"), at = cuda::act_type(a, "matmul a");
  const ET wt_in = cuda::weight_type(b, "matmul b");
  const Mat mo = as_matrix(out), ma = as_matrix(a), mb = as_matrix(b);
  const int64_t M = mo.rows, N = mo.cols;
  const int64_t K = trans_a ? ma.rows : ma.cols;
  LF_CHECK((trans_a ? ma.cols : ma.rows) == M, "matmul: a {} (trans {}) vs out {}", a.shape_str(), trans_a,
           out.shape_str());
  LF_CHECK((trans_b ? mb.cols : mb.rows) == K && (trans_b ? mb.rows : mb.cols) == N,
           "matmul: b {} (trans {}) vs a {} (trans {}) and out {}", b.shape_str(), trans_b, a.shape_str(), trans_a,
           out.shape_str());
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: out = beta·out (and never 0·NaN when beta is 0)
    if (beta == 0.f)
      LF_CUDA(cudaMemset(out.data, 0, out.nbytes()));
    else
      LF_CUDA(cuda::scale(out.data, ot, beta, M * N));
    return;
  }
  // A bf16 GEMM uses b at bf16 precision (backend.h): an F32/F16 b (a LoRA master) is rounded first.
  const void* bdata = b.data;
  ET wt = wt_in;
  if (at == ET::BF16 && wt != ET::BF16) {
    void* b16 = scratch(kConvB, static_cast<size_t>(K * N) * 2);
    LF_CUDA(cuda::convert(b16, ET::BF16, b.data, wt, K * N));
    bdata = b16;
    wt = ET::BF16;
  }
  // cuBLAS multiplies equal input types: mixed a/b run in fp32 (16-bit operands widened).
  const ET ct = at == wt ? at : ET::F32;
  const void* ain = a.data;
  if (at != ct) {
    void* conv = scratch(kConvA, static_cast<size_t>(M * K) * 4);
    LF_CUDA(cuda::convert(conv, ET::F32, a.data, at, M * K));
    ain = conv;
  }
  // cuBLAS writes an fp32 or an input-typed out; a bf16 out of an fp32 product is staged.
  void* cout = out.data;
  ET cot = ot;
  const bool staged = !(ot == ET::F32 || ot == ct);
  if (staged) {
    cout = scratch(kOutF32, static_cast<size_t>(M * N) * 4);
    cot = ET::F32;
    if (beta != 0.f) LF_CUDA(cuda::convert(cout, ET::F32, out.data, ot, M * N));
  }
  const int64_t lda = trans_a ? M : K;
  const size_t out_es = cuda::et_size(cot);
  if (wt == ct) {
    gemm(cout, cot, N, ain, lda, trans_a, bdata, trans_b ? K : N, trans_b, ct, M, N, K, alpha, beta);
  } else if (trans_b) {  // b (N,K): a block of b's rows is a block of output columns
    const int64_t nb = std::clamp<int64_t>(kConvertBlock / K, 1, N);
    void* buf = scratch(kConvB, static_cast<size_t>(nb * K) * 4);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
      const int64_t n1 = std::min(N, n0 + nb);
      LF_CUDA(cuda::convert(buf, ET::F32, at_bytes(b.data, n0 * K, wt), wt, (n1 - n0) * K));
      gemm(static_cast<char*>(cout) + static_cast<size_t>(n0) * out_es, cot, N, ain, lda, trans_a, buf, K, true,
           ET::F32, M, n1 - n0, K, alpha, beta);
    }
  } else {  // b (K,N): a block of b's rows is a slice of the reduction; accumulate the blocks
    const int64_t kb = std::clamp<int64_t>(kConvertBlock / N, 1, K);
    void* buf = scratch(kConvB, static_cast<size_t>(kb * N) * 4);
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
      const int64_t k1 = std::min(K, k0 + kb);
      LF_CUDA(cuda::convert(buf, ET::F32, at_bytes(b.data, k0 * N, wt), wt, (k1 - k0) * N));
      const void* ak = at_bytes(ain, trans_a ? k0 * M : k0, ET::F32);  // rows / columns k0.. of a
      gemm(cout, cot, N, ak, lda, trans_a, buf, N, false, ET::F32, M, N, k1 - k0, alpha, k0 == 0 ? beta : 1.f);
    }
  }
  if (staged) LF_CUDA(cuda::convert(out.data, ot, cout, ET::F32, M * N));
}

void CudaBackend::add_bias(Tensor out, Tensor bias) {
  const ET at = cuda::act_type(out, "add_bias out");
  const ET wt = cuda::weight_type(bias, "add_bias bias");
  const auto [N, O] = as_matrix(out);
  LF_CHECK(bias.numel() == O, "bias {} for out {}", bias.shape_str(), out.shape_str());
  LF_CUDA(cuda::add_bias(out.data, at, bias.data, wt, N, O));
}

namespace {
cuda::RopeFreqs rope_freqs(int64_t D, const RopeTable& rope) {
  LF_CHECK(D % 2 == 0 && D / 2 <= cuda::kMaxHeadDim, "rope head dim {} (the CUDA backend takes even D ≤ {})", D,
           2 * cuda::kMaxHeadDim);
  LF_CHECK(static_cast<int64_t>(rope.inv_freq.size()) == D / 2, "rope inv_freq {} for D {}", rope.inv_freq.size(), D);
  cuda::RopeFreqs f{};
  std::copy(rope.inv_freq.begin(), rope.inv_freq.end(), f.inv_freq);  // the CPU's fp32 values, bit for bit
  f.attention_scaling = rope.attention_scaling;
  return f;
}
}  // namespace

void CudaBackend::rope_forward(Tensor x, Tensor pos, const RopeTable& rope) {
  const ET at = cuda::act_type(x, "rope x");
  cuda::check_dev(pos, DType::I32, "rope pos");
  LF_CHECK(x.ndim >= 3, "rope x {} must be (N,H,D) or (B,T,H,D)", x.shape_str());
  const int64_t H = x.dim(-2), D = x.dim(-1), N = x.numel() / (H * D);
  LF_CHECK(pos.numel() == N, "rope: x {} pos {}", x.shape_str(), pos.shape_str());
  LF_CUDA(cuda::rope_rotate(x.data, at, pos.as<int32_t>(), N, H, D, rope_freqs(D, rope), +1));
}

void CudaBackend::rope_backward(Tensor dx, Tensor pos, const RopeTable& rope) {
  const ET at = cuda::act_type(dx, "rope_backward dx");
  cuda::check_dev(pos, DType::I32, "rope_backward pos");
  LF_CHECK(dx.ndim >= 3, "rope_backward dx {} must be (N,H,D) or (B,T,H,D)", dx.shape_str());
  const int64_t H = dx.dim(-2), D = dx.dim(-1), N = dx.numel() / (H * D);
  LF_CHECK(pos.numel() == N, "rope_backward: dx {} pos {}", dx.shape_str(), pos.shape_str());
  LF_CUDA(cuda::rope_rotate(dx.data, at, pos.as<int32_t>(), N, H, D, rope_freqs(D, rope), -1));
}

namespace {
void check_head_dim(int64_t D) {
  if (D < 1 || D > cuda::kMaxHeadDim)
    throw Error("attention head dim {} is not supported by the CUDA backend (1..{}); use --device cpu", D,
                cuda::kMaxHeadDim);
}
}  // namespace

void CudaBackend::attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor seg) {
  const ET at = cuda::act_type(q, "attention q");
  LF_CHECK(cuda::act_type(out, "attention out") == at && cuda::act_type(k, "attention k") == at &&
               cuda::act_type(v, "attention v") == at,
           "attention: out/q/k/v dtypes differ");
  LF_CHECK(q.ndim == 4 && k.ndim == 4 && v.ndim == 4, "attention wants (B,T,H,D) tensors");
  const int64_t B = q.dim(0), S = q.dim(1), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2);
  LF_CHECK(k.dim(0) == B && k.dim(1) == S && k.dim(3) == D && Hkv > 0 && H % Hkv == 0, "attention: q {} k {}",
           q.shape_str(), k.shape_str());
  LF_CHECK(v.numel() == k.numel() && v.dim(2) == Hkv && out.numel() == q.numel(), "attention: v {} out {}",
           v.shape_str(), out.shape_str());
  check_head_dim(D);
  float* l = nullptr;
  if (!lse.empty()) {
    cuda::check_dev(lse, DType::F32, "attention lse");
    LF_CHECK(lse.numel() == B * H * S, "attention lse {} for (B,H,T)=({},{},{})", lse.shape_str(), B, H, S);
    l = lse.as<float>();
  }
  const int32_t* sg = nullptr;
  if (!seg.empty()) {
    cuda::check_dev(seg, DType::I32, "attention seg");
    LF_CHECK(seg.numel() == B * S, "attention seg {} for (B,T)=({},{})", seg.shape_str(), B, S);
    sg = seg.as<int32_t>();
  }
  LF_CUDA(cuda::attention_forward(out.data, l, q.data, k.data, v.data, sg, at, {B, S, S, H, Hkv, D, 0}));
}

void CudaBackend::swiglu_forward(Tensor out, Tensor gate, Tensor up) {
  const ET at = cuda::act_type(gate, "swiglu gate");
  LF_CHECK(cuda::act_type(out, "swiglu out") == at && cuda::act_type(up, "swiglu up") == at, "swiglu dtypes differ");
  LF_CHECK(out.numel() == gate.numel() && up.numel() == gate.numel(), "swiglu: out {} gate {} up {}",
           out.shape_str(), gate.shape_str(), up.shape_str());
  LF_CUDA(cuda::swiglu_forward(out.data, gate.data, up.data, at, out.numel()));
}

void CudaBackend::convert(Tensor out, Tensor in) {
  LF_CHECK(out.numel() == in.numel(), "convert: out {} in {}", out.shape_str(), in.shape_str());
  const ET ot = cuda::act_type(out, "convert out"), it = cuda::weight_type(in, "convert in");
  if (out.data == in.data && ot == it) return;
  LF_CUDA(cuda::convert(out.data, ot, in.data, it, out.numel()));
}

void CudaBackend::dequantize_4bit(Tensor out, const Quant4View& w) {
  const ET ot = cuda::act_type(out, "dequantize_4bit out");
  LF_CHECK(out.numel() == w.numel() && w.packed.device == Device::CUDA, "dequantize_4bit: out {} for a {}x{} weight",
           out.shape_str(), w.rows, w.cols);
  LF_CUDA(cuda::dequantize_4bit(out.data, ot, w.packed.as<const uint8_t>(), w.absmax.data,
                                w.nested() ? w.nested_absmax.as<const float>() : nullptr, w.code4.as<const float>(),
                                w.nested() ? w.code8.as<const float>() : nullptr, w.offset, w.numel()));
}

void CudaBackend::add(Tensor out, Tensor a, Tensor b) {
  const ET ot = cuda::act_type(out, "add out");
  LF_CHECK(out.numel() == a.numel() && b.numel() == a.numel(), "add: out {} a {} b {}", out.shape_str(),
           a.shape_str(), b.shape_str());
  // Mixed dtypes (an F32 gradient += a BF16 piece): the other operand is widened to out's
  // type first (exact for BF16 -> F32, the case the model uses).
  const void* pa = a.data;
  const void* pb = b.data;
  const Slot slots[2] = {kConvA, kConvB};
  const Tensor* in[2] = {&a, &b};
  const void** ptr[2] = {&pa, &pb};
  for (int i = 0; i < 2; ++i) {
    const ET it = cuda::act_type(*in[i], "add input");
    if (it == ot) continue;
    void* conv = scratch(slots[i], static_cast<size_t>(out.numel()) * cuda::et_size(ot));
    LF_CUDA(cuda::convert(conv, ot, in[i]->data, it, out.numel()));
    *ptr[i] = conv;
  }
  LF_CUDA(cuda::add(out.data, pa, pb, ot, out.numel()));
}

void CudaBackend::scale(Tensor x, float s) {
  const ET at = cuda::act_type(x, "scale x");
  LF_CUDA(cuda::scale(x.data, at, s, x.numel()));
}

void CudaBackend::dropout(Tensor out, Tensor x, float p, uint64_t seed) {
  const ET at = cuda::act_type(x, "dropout x");
  LF_CHECK(cuda::act_type(out, "dropout out") == at, "dropout dtypes differ");
  LF_CHECK(out.numel() == x.numel(), "dropout: out {} x {}", out.shape_str(), x.shape_str());
  LF_CHECK(p >= 0.f && p < 1.f, "dropout probability {} outside [0, 1)", p);
  const float inv_keep = static_cast<float>(1.0 / (1.0 - static_cast<double>(p)));  // as cpu::dropout
  LF_CUDA(cuda::dropout(out.data, x.data, at, p, inv_keep, seed, x.numel()));
}

void CudaBackend::dora_norm(Tensor n, Tensor W, Tensor ba, float s, bool bf16_lora) {
  const ET wt = cuda::weight_type(W, "dora_norm W");
  cuda::check_dev(ba, DType::F32, "dora_norm ba");
  cuda::check_dev(n, DType::F32, "dora_norm n");
  const int64_t R = W.dim(0), I = W.dim(1);
  LF_CHECK(ba.numel() == R * I && n.numel() == R, "dora_norm: W {} ba {} n {}", W.shape_str(), ba.shape_str(),
           n.shape_str());
  LF_CUDA(cuda::dora_norm(n.as<float>(), W.data, wt, ba.as<const float>(), s, bf16_lora, R, I));
}

void CudaBackend::dora_combine(Tensor y, Tensor t1, Tensor t2, Tensor m, Tensor n, float s) {
  const ET at = cuda::act_type(y, "dora_combine y");
  LF_CHECK(cuda::act_type(t1, "dora_combine t1") == at && cuda::act_type(t2, "dora_combine t2") == at,
           "dora_combine dtypes differ");
  cuda::check_dev(m, DType::F32, "dora_combine m");
  cuda::check_dev(n, DType::F32, "dora_combine n");
  const int64_t N = y.dim(0), O = y.dim(1);
  LF_CHECK(t1.numel() == N * O && t2.numel() == N * O && m.numel() == O && n.numel() == O,
           "dora_combine: y {} t1 {} t2 {} m {} n {}", y.shape_str(), t1.shape_str(), t2.shape_str(), m.shape_str(),
           n.shape_str());
  LF_CUDA(cuda::dora_combine(y.data, t1.data, t2.data, at, m.as<const float>(), n.as<const float>(), s, N, O));
}

void CudaBackend::dora_backward_scale(Tensor dm, Tensor a, Tensor b, Tensor dy, Tensor m, Tensor n, float s) {
  const ET at = cuda::act_type(dy, "dora_backward_scale dy");
  LF_CHECK(cuda::act_type(a, "dora_backward_scale a") == at && cuda::act_type(b, "dora_backward_scale b") == at,
           "dora_backward_scale dtypes differ");
  cuda::check_dev(dm, DType::F32, "dora_backward_scale dm");
  cuda::check_dev(m, DType::F32, "dora_backward_scale m");
  cuda::check_dev(n, DType::F32, "dora_backward_scale n");
  const int64_t N = dy.dim(0), O = dy.dim(1);
  LF_CHECK(a.numel() == N * O && b.numel() == N * O && dm.numel() == O && m.numel() == O && n.numel() == O,
           "dora_backward_scale: dy {} a {} b {} dm {}", dy.shape_str(), a.shape_str(), b.shape_str(), dm.shape_str());
  LF_CUDA(cuda::dora_backward_scale(dm.as<float>(), a.data, b.data, dy.data, at, m.as<const float>(),
                                    n.as<const float>(), s, N, O));
}

void CudaBackend::kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor k, Tensor v, int64_t p0) {
  const ET at = cuda::act_type(k, "kv_cache_write k");
  LF_CHECK(cuda::act_type(v, "kv_cache_write v") == at && cuda::act_type(k_cache, "kv_cache_write k_cache") == at &&
               cuda::act_type(v_cache, "kv_cache_write v_cache") == at,
           "kv_cache_write dtypes differ");
  LF_CHECK(k.ndim == 4 && k_cache.ndim == 4, "kv_cache_write wants (B,T,Hkv,D) tensors");
  const int64_t B = k.dim(0), T = k.dim(1), Hkv = k.dim(2), D = k.dim(3), S = k_cache.dim(1);
  LF_CHECK(k_cache.dim(0) == B && k_cache.dim(2) == Hkv && k_cache.dim(3) == D && v_cache.shape == k_cache.shape &&
               v.shape == k.shape,
           "kv_cache_write: cache {} {} new {} {}", k_cache.shape_str(), v_cache.shape_str(), k.shape_str(),
           v.shape_str());
  LF_CHECK(p0 >= 0 && p0 + T <= S, "kv_cache_write: positions [{}, {}) outside a cache of {}", p0, p0 + T, S);
  if (B * T == 0) return;
  const size_t es = cuda::et_size(at), row = static_cast<size_t>(Hkv * D) * es;  // bytes of one position
  // Each batch row is one contiguous run of T positions, landing at position p0 of a row of S.
  for (auto [cache, src] : {std::pair{k_cache.data, k.data}, std::pair{v_cache.data, v.data}})
    LF_CUDA(cudaMemcpy2DAsync(static_cast<char*>(cache) + static_cast<size_t>(p0) * row, static_cast<size_t>(S) * row,
                              src, static_cast<size_t>(T) * row, static_cast<size_t>(T) * row,
                              static_cast<size_t>(B), cudaMemcpyDeviceToDevice, nullptr));
}

void CudaBackend::attention_decode(Tensor out, Tensor q, Tensor k_cache, Tensor v_cache, int64_t p0) {
  const ET at = cuda::act_type(q, "attention_decode q");
  LF_CHECK(cuda::act_type(out, "attention_decode out") == at &&
               cuda::act_type(k_cache, "attention_decode k_cache") == at &&
               cuda::act_type(v_cache, "attention_decode v_cache") == at,
           "attention_decode dtypes differ");
  LF_CHECK(q.ndim == 4 && k_cache.ndim == 4, "attention_decode wants (B,T,H,D) tensors");
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), D = q.dim(3), S = k_cache.dim(1), Hkv = k_cache.dim(2);
  LF_CHECK(k_cache.dim(0) == B && k_cache.dim(3) == D && Hkv > 0 && H % Hkv == 0 && v_cache.shape == k_cache.shape &&
               out.shape == q.shape,
           "attention_decode: q {} cache {} out {}", q.shape_str(), k_cache.shape_str(), out.shape_str());
  LF_CHECK(p0 >= 0 && p0 + T <= S, "attention_decode: positions [{}, {}) outside a cache of {}", p0, p0 + T, S);
  check_head_dim(D);
  LF_CUDA(cuda::attention_forward(out.data, nullptr, q.data, k_cache.data, v_cache.data, nullptr, at,
                                  {B, T, S, H, Hkv, D, p0}));
}

}  // namespace lorafit
