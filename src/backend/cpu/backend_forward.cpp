// CpuBackend: memory, capabilities and the forward ops. Each op checks dtypes and shapes
// (a mismatch is our bug: LF_CHECK) and dispatches to kernels_forward.h or its vectorized twin
// in simd.h; matmul goes through gemm() (gemm.h), converting F16 (and, for many rows, BF16)
// weights block by block (never a full fp32 copy), or through the single-pass matvec for the
// few rows of a decode step.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/backend_bf16.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels_forward.h"
#include "backend/cpu/simd.h"

namespace lorafit {

namespace {

bool is_weight_dtype(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

// Calls f(typed pointer) for a weight tensor of F32, BF16 or F16.
template <class F>
void with_weight(const Tensor& w, F&& f) {
  switch (w.dtype) {
    case DType::F32: f(static_cast<const float*>(w.data)); return;
    case DType::BF16: f(static_cast<const cpu::Bf16*>(w.data)); return;
    case DType::F16: f(static_cast<const cpu::F16*>(w.data)); return;
    default: LF_CHECK(false, "weight dtype {} is not F32, BF16 or F16", dtype_name(w.dtype));
  }
}

void check_f32(const Tensor& t, const char* what) {
  LF_CHECK(t.data != nullptr && t.dtype == DType::F32 && t.device == Device::CPU,
           "{}: expected a CPU F32 tensor, got {} {}", what, dtype_name(t.dtype), t.shape_str());
}
void check_i32(const Tensor& t, const char* what) {
  LF_CHECK(t.data != nullptr && t.dtype == DType::I32 && t.device == Device::CPU,
           "{}: expected a CPU I32 tensor, got {} {}", what, dtype_name(t.dtype), t.shape_str());
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

// Converts rows [r0, r1) of a (rows, cols) weight matrix into dst (r1 − r0, cols) of type `to`
// (F32: exact widening; BF16: fp32 and f16 values rounded to nearest even, as torch's autocast
// rounds an fp32 weight for a bf16 matmul).
void convert_rows(void* dst, DType to, const Tensor& w, int64_t r0, int64_t r1, int64_t cols) {
  LF_CHECK(w.dtype != to && (to == DType::F32 || to == DType::BF16), "convert_rows: {} to {}", dtype_name(w.dtype),
           dtype_name(to));
#pragma omp parallel
  {
    std::vector<float> row;  // (cols) fp32 staging for f16 → bf16
#pragma omp for
    for (int64_t r = r0; r < r1; ++r) {
      const void* src = static_cast<const char*>(w.data) + static_cast<size_t>(r * cols) * dtype_size(w.dtype);
      float* d32 = static_cast<float*>(dst) + (r - r0) * cols;       // when to == F32
      uint16_t* d16 = static_cast<uint16_t*>(dst) + (r - r0) * cols;  // when to == BF16
      if (to == DType::F32 && w.dtype == DType::BF16) {
        cpu::convert_bf16_to_f32(d32, static_cast<const uint16_t*>(src), cols);
      } else if (to == DType::F32) {
        cpu::convert_f16_to_f32(d32, static_cast<const uint16_t*>(src), cols);
      } else if (w.dtype == DType::F32) {
        cpu::convert_f32_to_bf16(d16, static_cast<const float*>(src), cols);
      } else {
        row.resize(static_cast<size_t>(cols));
        cpu::convert_f16_to_f32(row.data(), static_cast<const uint16_t*>(src), cols);
        cpu::convert_f32_to_bf16(d16, row.data(), cols);
      }
    }
  }
}

// At most 20 MB of fp32 scratch per converted block: a whole decoder weight of a 0.5B-class
// model (4864 × 896) is one block, so each matmul is one sgemm call (OpenBLAS packs the
// activations once per call, so fewer calls pack less), while bigger models are still
// converted block by block, never as a full fp32 copy.
constexpr int64_t kScratchFloats = int64_t{5} << 20;

// Query rows per tile of the blocked fp32 attention: one head's (tile, keys) score block is
// 64 × T floats (96 KB at T = 384), small enough to stay in L2 between its two GEMMs.
constexpr int64_t kAttnTile = 64;

// The fp32 attention, blocked: per (b, h) and tile of queries [t0, t1), the scores against
// keys [0, t1) are one sgemm (rows of q/k/v read in place at their (B,T,H,D) strides), the
// masked softmax a row loop (float exp, sums in double), and the output one more sgemm.
// Same contract and arithmetic order per row as cpu::attention_forward (the reference, which
// the tests instantiate with double), except that dot products are fp32 sgemm sums.
// Deterministic: each (b, h) is one task; sgemm inside the parallel region runs on 1 thread.
// The allowed keys of query t are 0..t without packing segments, and the run of its own sample
// with them: that softmax runs vectorized (exp_shift_sum_f32, vector exp) from the run's first
// key, so a packed sample's rows get the same bits as the sample alone in a row (the packing
// test checks this); a segment split in pieces takes the scalar row loop.
void attention_forward_f32(float* out, float* lse, const float* q, const float* k, const float* v,
                           const int32_t* seg, int64_t B, int64_t S, int64_t H, int64_t Hkv, int64_t D) {
  const int64_t group = H / Hkv;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  const int64_t ldq = H * D, ldk = Hkv * D;
#pragma omp parallel
  {
    std::vector<float> p(static_cast<size_t>(std::min(kAttnTile, S) * S));  // (tile, keys) scores, then weights
    std::vector<float> kt(static_cast<size_t>(D * S));                        // (D, S) this head's keys, transposed
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        const float* kb = k + (b * S * Hkv + h / group) * D;  // (S, D) at row stride Hkv·D
        const float* vb = v + (b * S * Hkv + h / group) * D;  // (S, D) at row stride Hkv·D
        const int32_t* sb = seg ? seg + b * S : nullptr;       // (S) or null
        // Q·Kᵀ as Q·(Kᵀ) with Kᵀ stored: oneDNN's result for a score then does not depend on
        // where its key sits in the call (with a transposed operand it does), so a packed
        // sample's scores equal the sample's own.
        for (int64_t s = 0; s < S; ++s)
          for (int64_t d = 0; d < D; ++d) kt[static_cast<size_t>(d * S + s)] = kb[s * ldk + d];
        for (int64_t t0 = 0; t0 < S; t0 += kAttnTile) {
          const int64_t t1 = std::min(S, t0 + kAttnTile), nt = t1 - t0, ns = t1;  // keys 0 .. t1−1
          const float* qt = q + ((b * S + t0) * H + h) * D;  // (nt, D) at row stride H·D
          float* ot = out + ((b * S + t0) * H + h) * D;      // (nt, D) at row stride H·D
          cpu::sgemm(false, false, nt, ns, D, scale, qt, ldq, kt.data(), S, 0.f, p.data(), ns);
          for (int64_t i = 0; i < nt; ++i) {
            const int64_t t = t0 + i;
            float* pr = p.data() + i * ns;  // (ns) scores of query t
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t s = 0; s <= t; ++s)
              if (!sb || sb[s] == sb[t]) mx = std::max(mx, pr[s]);
            double sum = 0.0;  // up to T terms: double
            const int64_t s0 = cpu::allowed_run_start(sb, t);
            if (s0 >= 0) {  // keys s0..t: the vector softmax, from the run's first key on
              std::fill(pr, pr + s0, 0.f);
              sum = cpu::exp_shift_sum_f32(pr + s0, t + 1 - s0, mx);
              std::fill(pr + t + 1, pr + ns, 0.f);
            } else {
              for (int64_t s = 0; s < ns; ++s) {
                const bool allowed = s <= t && sb[s] == sb[t];
                pr[s] = allowed ? std::exp(pr[s] - mx) : 0.f;
                sum += pr[s];
              }
            }
            const float inv = static_cast<float>(1.0 / sum);
            for (int64_t s = 0; s <= t; ++s) pr[s] *= inv;
            if (lse) lse[(b * H + h) * S + t] = static_cast<float>(static_cast<double>(mx) + std::log(sum));
          }
          cpu::sgemm(false, false, nt, D, ns, 1.f, p.data(), ns, vb, ldk, 0.f, ot, ldq);
        }
      }
    }
  }
}

}  // namespace

std::string CpuBackend::kernel_info() const {
  static const std::string info = fmt::format(
      "cpu kernels: matmul {}; vector loops Highway {}; bf16 dot {}", cpu::gemm_kernel_info(), cpu::simd_target_name(),
      cpu::cpu_has_bf16_dot() ? "avx512_bf16 (vdpbf16ps)" : "none on this CPU (bf16 widened to fp32, FMA)");
  return info;
}

bool CpuBackend::supports(Op op, DType act, DType weight) const {
  // every op exists on the CPU backend, with F32 or BF16 activations; the optimizer's flat
  // buffers are F32
  if (op == Op::AdamW || op == Op::SumSquares) return act == DType::F32 && weight == DType::F32;
  if (op == Op::Dequantize4bit) return (act == DType::F32 || act == DType::BF16) && weight == DType::U8;
  return (act == DType::F32 || act == DType::BF16) && is_weight_dtype(weight);
}

void CpuBackend::dequantize_4bit(Tensor out, const Quant4View& w) {
  LF_CHECK(out.device == Device::CPU && w.packed.device == Device::CPU, "dequantize_4bit on the CPU");
  LF_CHECK(out.numel() == w.numel() && (out.dtype == DType::F32 || out.dtype == DType::BF16),
           "dequantize_4bit: {} {} for a {}x{} weight", dtype_name(out.dtype), out.shape_str(), w.rows, w.cols);
  const int64_t nb = (w.numel() + kQuant4Block - 1) / kQuant4Block, chunk = 1024;  // blocks per task
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nb; b += chunk) dequantize_4bit_blocks(out, w, b, std::min(nb, b + chunk));
}

void CpuBackend::convert(Tensor out, Tensor in) {
  LF_CHECK(out.device == Device::CPU && in.device == Device::CPU && out.data && in.data, "convert on the CPU");
  cpu_bf16::convert(out, in);
}

void* CpuBackend::alloc(size_t bytes) {
  const size_t n = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;  // aligned_alloc needs a multiple
  void* p = std::aligned_alloc(64, n);
  if (p == nullptr) throw Error("out of memory: could not allocate {} bytes on the CPU", bytes);
  std::memset(p, 0, n);
  return p;
}
void CpuBackend::free(void* p) { std::free(p); }
void CpuBackend::upload(void* dst, const void* host_src, size_t bytes) { std::memcpy(dst, host_src, bytes); }
void CpuBackend::download(void* host_dst, const void* src, size_t bytes) { std::memcpy(host_dst, src, bytes); }

void CpuBackend::embedding_forward(Tensor out, Tensor ids, Tensor table) {
  if (cpu_bf16::any({&out})) return cpu_bf16::embedding_forward(*this, out, ids, table);
  check_f32(out, "embedding out");
  check_i32(ids, "embedding ids");
  LF_CHECK(table.ndim == 2 && is_weight_dtype(table.dtype), "embedding table {}", table.shape_str());
  const int64_t N = ids.numel(), V = table.dim(0), C = table.dim(1);
  LF_CHECK(out.numel() == N * C && out.dim(-1) == C, "embedding out {} for N={} C={}", out.shape_str(), N, C);
  const int32_t* id = ids.as<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    if (id[n] < 0 || id[n] >= V)
      throw Error("token id {} at position {} is outside the vocabulary [0, {})", id[n], n, V);
  with_weight(table, [&](auto* w) { cpu::embedding_forward(out.as<float>(), id, w, N, C); });
}

void CpuBackend::rmsnorm_forward(Tensor out, Tensor rstd, Tensor x, Tensor w, float eps) {
  if (cpu_bf16::any({&out, &x})) return cpu_bf16::rmsnorm_forward(*this, out, rstd, x, w, eps);
  check_f32(out, "rmsnorm out");
  check_f32(x, "rmsnorm x");
  // plain variables, not a structured binding: the lambda and the OpenMP region below use them
  // (C++20 allows capturing bindings; clang 14, which builds the fuzz targets, does not)
  const Mat m = as_matrix(x);
  const int64_t N = m.rows, C = m.cols;
  LF_CHECK(out.numel() == N * C && out.dim(-1) == C, "rmsnorm out {} vs x {}", out.shape_str(), x.shape_str());
  LF_CHECK(w.numel() == C && is_weight_dtype(w.dtype), "rmsnorm weight {} for C={}", w.shape_str(), C);
  if (!rstd.empty()) {
    check_f32(rstd, "rmsnorm rstd");
    LF_CHECK(rstd.numel() == N, "rmsnorm rstd {} for N={}", rstd.shape_str(), N);
  }
  float* r = rstd.empty() ? nullptr : rstd.as<float>();
  // The vectorized row (simd.h) on the weight widened once to fp32 (exact), per row as
  // cpu::rmsnorm_forward: Σx² in double, r rounded to fp32, out = w·(x·r).
  std::vector<float> w32(static_cast<size_t>(C));  // (C)
  with_weight(w, [&](auto* wp) {
    for (int64_t c = 0; c < C; ++c) w32[static_cast<size_t>(c)] = static_cast<float>(cpu::load_weight(wp, c));
  });
  const float* xp = x.as<float>();
  float* op = out.as<float>();
#pragma omp parallel for schedule(static) if (N > 1)
  for (int64_t n = 0; n < N; ++n) {
    const float rn = cpu::rmsnorm_row_f32(op + n * C, xp + n * C, w32.data(), C, eps);
    if (r) r[n] = rn;
  }
}

void CpuBackend::matmul(Tensor out, Tensor a, bool trans_a, Tensor b, bool trans_b, float alpha,
                        float beta) {
  LF_CHECK(a.data != nullptr && (a.dtype == DType::F32 || a.dtype == DType::BF16) && a.device == Device::CPU,
           "matmul a: expected a CPU F32 or BF16 tensor, got {} {}", dtype_name(a.dtype), a.shape_str());
  LF_CHECK(out.data != nullptr && (out.dtype == DType::F32 || out.dtype == DType::BF16),
           "matmul out: expected F32 or BF16, got {} {}", dtype_name(out.dtype), out.shape_str());
  if (a.dtype == DType::F32 && out.dtype == DType::BF16) return cpu_bf16::matmul_f32_rounded(*this, out, a, trans_a, b, trans_b, alpha, beta);
  LF_CHECK(is_weight_dtype(b.dtype) && b.data != nullptr, "matmul b dtype {}", dtype_name(b.dtype));
  const Mat mo = as_matrix(out), ma = as_matrix(a), mb = as_matrix(b);
  const int64_t M = mo.rows, N = mo.cols;
  const int64_t K = trans_a ? ma.rows : ma.cols;
  LF_CHECK((trans_a ? ma.cols : ma.rows) == M, "matmul: a {} (trans {}) vs out {}", a.shape_str(), trans_a,
           out.shape_str());
  LF_CHECK((trans_b ? mb.cols : mb.rows) == K && (trans_b ? mb.rows : mb.cols) == N,
           "matmul: b {} (trans {}) vs a {} (trans {}) and out {}", b.shape_str(), trans_b, a.shape_str(),
           trans_a, out.shape_str());
  if (M == 0 || N == 0) return;
  const DType act = a.dtype;  // the GEMM's operand type: b is brought to it
  // A decode step (a few rows times a weight as Hugging Face stores it, (O, I)): one pass over
  // the weight in its own dtype, no conversion buffer.
  const bool few_rows = !trans_a && trans_b && M <= cpu::kMatvecRows && K > 0;
  if (few_rows && act == DType::F32 && (b.dtype == DType::F32 || b.dtype == DType::BF16)) {
    cpu::matvec_f32(out.as<float>(), a.as<float>(), b.data, b.dtype == DType::BF16, M, N, K, alpha, beta);
    return;
  }
  if (few_rows && act == DType::BF16 && b.dtype == DType::BF16) {
    cpu::matvec_bf16(out.data, out.dtype == DType::BF16, static_cast<const uint16_t*>(a.data),
                     static_cast<const uint16_t*>(b.data), M, N, K, alpha, beta);
    return;
  }
  const int64_t lda = trans_a ? M : K;
  const size_t as = dtype_size(act), cs = dtype_size(out.dtype);
  char* c = static_cast<char*>(out.data);
  if (b.dtype == act) {  // weights used in place
    cpu::gemm(act, out.dtype, trans_a, trans_b, M, N, K, alpha, a.data, lda, b.data, trans_b ? K : N, beta, c, N);
    return;
  }
  // Other weight dtypes: convert blocks of b's rows to the operand type and multiply each block.
  thread_local std::vector<char> scratch;
  if (trans_b) {  // b (N,K): a block of rows is a block of output columns
    const int64_t nb = std::clamp<int64_t>(kScratchFloats / std::max<int64_t>(K, 1), 1, N);
    scratch.resize(static_cast<size_t>(nb * K) * as);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
      const int64_t n1 = std::min(N, n0 + nb);
      convert_rows(scratch.data(), act, b, n0, n1, K);
      cpu::gemm(act, out.dtype, trans_a, true, M, n1 - n0, K, alpha, a.data, lda, scratch.data(), K, beta,
                c + static_cast<size_t>(n0) * cs, N);
    }
  } else {  // b (K,N): a block of rows is a slice of the reduction; accumulate the blocks
    // A BF16 out is rounded once, so its reduction is not split into blocks.
    const int64_t kb = out.dtype == DType::BF16
                           ? std::max<int64_t>(K, 1)
                           : std::clamp<int64_t>(kScratchFloats / std::max<int64_t>(N, 1), 1, std::max<int64_t>(K, 1));
    scratch.resize(static_cast<size_t>(kb * N) * as);
    if (K == 0) cpu::gemm(act, out.dtype, trans_a, false, M, N, 0, alpha, a.data, lda, b.data, N, beta, c, N);
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
      const int64_t k1 = std::min(K, k0 + kb);
      convert_rows(scratch.data(), act, b, k0, k1, N);
      const char* ak = static_cast<const char*>(a.data) + static_cast<size_t>(trans_a ? k0 * M : k0) * as;  // columns/rows k0.. of a
      cpu::gemm(act, out.dtype, trans_a, false, M, N, k1 - k0, alpha, ak, lda, scratch.data(), N,
                k0 == 0 ? beta : 1.f, c, N);
    }
  }
}

void CpuBackend::add_bias(Tensor out, Tensor bias) {
  if (cpu_bf16::any({&out})) return cpu_bf16::add_bias(*this, out, bias);
  check_f32(out, "add_bias out");
  const Mat m = as_matrix(out);  // not a structured binding: the lambda uses N, O (clang 14)
  const int64_t N = m.rows, O = m.cols;
  LF_CHECK(bias.numel() == O && is_weight_dtype(bias.dtype), "bias {} for out {}", bias.shape_str(), out.shape_str());
  with_weight(bias, [&](auto* bp) { cpu::add_bias(out.as<float>(), bp, N, O); });
}

void CpuBackend::rope_forward(Tensor x, Tensor pos, const RopeTable& rope) {
  if (cpu_bf16::any({&x})) return cpu_bf16::rope(x, pos, rope, +1);
  check_f32(x, "rope x");
  check_i32(pos, "rope pos");
  LF_CHECK(x.ndim >= 3, "rope x {} must be (N,H,D) or (B,T,H,D)", x.shape_str());
  const int64_t H = x.dim(-2), D = x.dim(-1), N = x.numel() / (H * D);
  LF_CHECK(D % 2 == 0 && pos.numel() == N && static_cast<int64_t>(rope.inv_freq.size()) == D / 2,
           "rope: x {} pos {} inv_freq {}", x.shape_str(), pos.shape_str(), rope.inv_freq.size());
  cpu::rope_forward(x.as<float>(), pos.as<int32_t>(), N, H, D, rope.inv_freq.data(), rope.attention_scaling);
}

void CpuBackend::attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor seg) {
  if (cpu_bf16::any({&out, &q})) return cpu_bf16::attention_forward(out, lse, q, k, v, seg);
  check_f32(out, "attention out");
  check_f32(q, "attention q");
  check_f32(k, "attention k");
  check_f32(v, "attention v");
  LF_CHECK(q.ndim == 4 && k.ndim == 4 && v.ndim == 4, "attention wants (B,T,H,D) tensors");
  const int64_t B = q.dim(0), S = q.dim(1), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2);
  LF_CHECK(k.dim(0) == B && k.dim(1) == S && k.dim(3) == D && Hkv > 0 && H % Hkv == 0,
           "attention: q {} k {}", q.shape_str(), k.shape_str());
  LF_CHECK(v.numel() == k.numel() && v.dim(2) == Hkv && out.numel() == q.numel(),
           "attention: v {} out {}", v.shape_str(), out.shape_str());
  float* l = nullptr;
  if (!lse.empty()) {
    check_f32(lse, "attention lse");
    LF_CHECK(lse.numel() == B * H * S, "attention lse {} for (B,H,T)=({},{},{})", lse.shape_str(), B, H, S);
    l = lse.as<float>();
  }
  const int32_t* sg = nullptr;
  if (!seg.empty()) {
    check_i32(seg, "attention seg");
    LF_CHECK(seg.numel() == B * S, "attention seg {} for (B,T)=({},{})", seg.shape_str(), B, S);
    sg = seg.as<int32_t>();
  }
  attention_forward_f32(out.as<float>(), l, q.as<float>(), k.as<float>(), v.as<float>(), sg, B, S, H, Hkv, D);
}

void CpuBackend::swiglu_forward(Tensor out, Tensor gate, Tensor up) {
  if (cpu_bf16::any({&out, &gate})) return cpu_bf16::swiglu_forward(out, gate, up);
  check_f32(out, "swiglu out");
  check_f32(gate, "swiglu gate");
  check_f32(up, "swiglu up");
  LF_CHECK(out.numel() == gate.numel() && up.numel() == gate.numel(), "swiglu: out {} gate {} up {}",
           out.shape_str(), gate.shape_str(), up.shape_str());
  cpu::swiglu_forward_f32(out.as<float>(), gate.as<float>(), up.as<float>(), out.numel());
}

void CpuBackend::add(Tensor out, Tensor a, Tensor b) {
  if (cpu_bf16::any({&out, &a, &b})) return cpu_bf16::add(*this, out, a, b);
  check_f32(out, "add out");
  check_f32(a, "add a");
  check_f32(b, "add b");
  LF_CHECK(out.numel() == a.numel() && b.numel() == a.numel(), "add: out {} a {} b {}", out.shape_str(),
           a.shape_str(), b.shape_str());
  cpu::add(out.as<float>(), a.as<float>(), b.as<float>(), out.numel());
}

void CpuBackend::scale(Tensor x, float s) {
  if (cpu_bf16::any({&x})) return cpu_bf16::scale(x, s);
  check_f32(x, "scale x");
  if (s == 0.f) {
    std::memset(x.data, 0, x.nbytes());
    return;
  }
  cpu::scale(x.as<float>(), s, x.numel());
}

void CpuBackend::dropout(Tensor out, Tensor x, float p, uint64_t seed) {
  if (cpu_bf16::any({&out, &x})) return cpu_bf16::dropout(*this, out, x, p, seed);
  check_f32(out, "dropout out");
  check_f32(x, "dropout x");
  LF_CHECK(out.numel() == x.numel(), "dropout: out {} x {}", out.shape_str(), x.shape_str());
  LF_CHECK(p >= 0.f && p < 1.f, "dropout probability {} outside [0, 1)", p);
  cpu::dropout(out.as<float>(), x.as<float>(), p, seed, x.numel());
}

}  // namespace lorafit
