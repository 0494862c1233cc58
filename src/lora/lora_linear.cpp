#include "lora/lora_linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "util/error.h"

namespace lorafit {

namespace {

// DoRA's CUDA kernels (backend.h "DoRA") have not run on a GPU yet (their parity rows skip
// without one): until they have, every DoRA entry point refuses a non-CPU backend, here too so
// that no caller (serve's per-request adapters included) reaches them unchecked.
void require_dora_checked_backend(Backend& be) {
  if (be.device() != Device::CPU)
    throw Error(
        "a DoRA adapter (use_dora) runs on the CPU backend only, not {} (its CUDA kernels have not been checked on "
        "a GPU yet); use --device cpu (or merge it into the weights: --merge)",
        be.name());
}

// A device buffer for the duration of one call (freed on every path out).
struct ScopedBuffer {
  Backend& be;
  void* p;
  ScopedBuffer(Backend& b, size_t bytes) : be(b), p(bytes > 0 ? b.alloc(bytes) : nullptr) {}
  ~ScopedBuffer() {
    if (p != nullptr) be.free(p);
  }
  ScopedBuffer(const ScopedBuffer&) = delete;
  ScopedBuffer& operator=(const ScopedBuffer&) = delete;
};

// A (rows, cols) view of dtype dt starting byte_offset bytes into a scratch buffer.
Tensor scratch_view(Tensor buf, DType dt, size_t byte_offset, int64_t rows, int64_t cols) {
  LF_CHECK(!buf.empty() && buf.nbytes() >= byte_offset + static_cast<size_t>(rows * cols) * dtype_size(dt),
           "LoRA scratch {} {} for {} ({}, {}) at byte {}", dtype_name(buf.dtype), buf.shape_str(), dtype_name(dt),
           rows, cols, byte_offset);
  return Tensor(static_cast<uint8_t*>(buf.data) + byte_offset, dt, {rows, cols}, buf.device);
}

// The first rows·cols elements of a scratch buffer as a (rows, cols) matrix.
Tensor part(Tensor buf, int64_t rows, int64_t cols) {
  LF_CHECK(!buf.empty() && buf.numel() >= rows * cols, "LoRA scratch {} for ({}, {})", buf.shape_str(), rows, cols);
  return Tensor(buf.data, buf.dtype, {rows, cols}, buf.device);
}

// y (N,O) = x·Wᵀ + b, the base projection every row shares.
void base_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias) {
  if (y.dtype == DType::BF16 && !bias.empty()) {  // y = bf16(x·Wᵀ + b), one rounding as torch's addmm
    be.scale(y, 0.f);
    be.add_bias(y, bias);
    be.matmul(y, x, false, W, true, 1.f, 1.f);
  } else {
    be.matmul(y, x, false, W, true, 1.f, 0.f);
    if (!bias.empty()) be.add_bias(y, bias);
  }
}

// y (N,O) += s·((in·Aᵀ)·Bᵀ): the LoRA branch, the one place its arithmetic lives. xa (N, r) is
// written (the backward reads it); branch (≥ N·O) is the bf16 runs' scratch for t.
void add_branch(Backend& be, Tensor y, Tensor in, const LoraWeights& lora, Tensor xa, Tensor branch) {
  be.matmul(xa, in, false, lora.A, true, 1.f, 0.f);  // (N, r)
  if (y.dtype != DType::BF16) {
    be.matmul(y, xa, false, lora.B, true, lora.scale, 1.f);  // y += s · xa·Bᵀ
    return;
  }
  const Tensor t = part(branch, y.dim(0), y.dim(1));  // (N, O)
  be.matmul(t, xa, false, lora.B, true, 1.f, 0.f);    // t = lora_B(xa)
  be.scale(t, lora.scale);                            // · scaling
  be.add(y, y, t);                                    // result + ...
}

}  // namespace

void linear_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias, const LoraWeights* lora,
                    LoraSaved* saved, bool training) {
  base_forward(be, y, x, W, bias);
  if (lora == nullptr || lora->empty()) return;
  LF_CHECK(saved != nullptr && !saved->xa.empty(), "LoRA forward needs a saved xa buffer");
  if (lora->dora()) {
    dora_weight_norm(be, W, *lora, y.dtype);
    dora_forward(be, y, x, W, *lora, *saved, training);
    return;
  }
  Tensor in = x;
  if (training && lora->dropout > 0.f) {
    LF_CHECK(!saved->xdrop.empty(), "LoRA dropout needs a saved xdrop buffer");
    be.dropout(saved->xdrop, x, lora->dropout, saved->dropout_seed);
    in = saved->xdrop;
  }
  add_branch(be, y, in, *lora, saved->xa, saved->branch);
}

void linear_forward(Backend& be, Tensor y, Tensor x, Tensor W, Tensor bias, std::span<const LoraRows> groups,
                    const LoraSaved& scratch) {
  base_forward(be, y, x, W, bias);
  int64_t prev_end = 0;
  for (const LoraRows& g : groups) {
    LF_CHECK(g.begin >= prev_end && g.begin < g.end && g.end <= y.dim(0), "LoRA row group [{}, {}) of {} rows",
             g.begin, g.end, y.dim(0));
    prev_end = g.end;
    if (g.w == nullptr || g.w->empty()) continue;
    const Tensor xa = part(scratch.xa, g.end - g.begin, g.w->A.dim(0));  // (rows, r) of this adapter's rank
    if (g.w->dora()) {  // the same DoRA branch as the single-adapter form, on this group's rows
      LoraSaved s;
      s.xa = xa;
      s.dora = scratch.dora;
      dora_weight_norm(be, W, *g.w, y.dtype);
      dora_forward(be, y.rows(g.begin, g.end), x.rows(g.begin, g.end), W, *g.w, s, false);
      continue;
    }
    add_branch(be, y.rows(g.begin, g.end), x.rows(g.begin, g.end), *g.w, xa, scratch.branch);
  }
}

void dora_weight_norm(Backend& be, Tensor W, const LoraWeights& lora, DType act) {
  require_dora_checked_backend(be);
  const int64_t O = W.dim(0), I = W.dim(1), r = lora.A.dim(0);
  LF_CHECK(lora.norm.numel() == O && lora.B.dim(0) == O && lora.A.dim(1) == I, "DoRA norm shapes");
  const bool bf16 = act == DType::BF16;
  constexpr int64_t kRows = 64;  // rows of B·A per GEMM: bounded scratch for any O
  const ScopedBuffer ba(be, static_cast<size_t>(kRows * I) * sizeof(float));  // (rows, I) B[rows]·A
  // bf16 (autocast): lora_weight = lora_B(lora_A(eye)).T is a bf16 GEMM of bf16(B) and bf16(A)
  // (the bf16 matmul rounds the F32 A on the fly); dora_norm rounds it and s·it to bf16.
  const ScopedBuffer b16(be, bf16 ? static_cast<size_t>(O * r) * 2 : 0);
  Tensor B = lora.B;
  if (bf16) {
    B = Tensor(b16.p, DType::BF16, {O, r}, be.device());
    be.convert(B, lora.B);
  }
  for (int64_t o0 = 0; o0 < O; o0 += kRows) {
    const int64_t rows = std::min(kRows, O - o0);
    const Tensor t(ba.p, DType::F32, {rows, I}, be.device());
    be.matmul(t, B.rows(o0, o0 + rows), false, lora.A, false, 1.f, 0.f);
    be.dora_norm(lora.norm.rows(o0, o0 + rows), W.rows(o0, o0 + rows), t, lora.scale, bf16);
  }
}

void dora_forward(Backend& be, Tensor y, Tensor x, Tensor W, const LoraWeights& lora, LoraSaved& saved, bool training) {
  require_dora_checked_backend(be);
  const int64_t N = y.dim(0), O = y.dim(1);
  Tensor in = x;  // xd: PEFT drops x out once, for both W and the LoRA branch
  if (training && lora.dropout > 0.f) {
    LF_CHECK(!saved.xdrop.empty(), "LoRA dropout needs a saved xdrop buffer");
    be.dropout(saved.xdrop, x, lora.dropout, saved.dropout_seed);
    in = saved.xdrop;
  }
  be.matmul(saved.xa, in, false, lora.A, true, 1.f, 0.f);  // (N, r)
  // t1 = F.linear(xd, W) (no bias), t2 = lora_B(lora_A(xd)); bf16 GEMMs in a bf16 run.
  const size_t bytes = static_cast<size_t>(N * O) * dtype_size(y.dtype);
  const Tensor t1 = scratch_view(saved.dora, y.dtype, 0, N, O), t2 = scratch_view(saved.dora, y.dtype, bytes, N, O);
  be.matmul(t1, in, false, W, true, 1.f, 0.f);
  be.matmul(t2, saved.xa, false, lora.B, true, 1.f, 0.f);
  be.dora_combine(y, t1, t2, lora.m, lora.norm, lora.scale);
}

namespace {

// DoRA's backward with BF16 activations: autograd of dora_forward's bf16 form (PEFT under autocast).
// With g = fp32(dy): db = fp32(g·s) is the gradient of c·t2; dt2 = bf16(db·c), dt1 = bf16(g·(c − 1))
// (each cast back to its bf16 tensor); dm += (Σ_rows g·t1 + Σ_rows db·t2) / n. Then lora_B and
// lora_A's bf16 GEMMs as plain LoRA's (dB/dA each a bf16 tensor before += into fp32), and the
// input gradient: bf16(dt1·W) and bf16(dxa·bf16(A)) summed in fp32 (xd's dtype), dropout's
// backward in fp32, cast to bf16 (x.to(fp32)'s backward), added to dx in bf16.
// scratch.dora: ≥ 2·N·max(O, I) fp32; halves P | Q.
void dora_backward_bf16(Backend& be, Tensor dx, Tensor dy, Tensor in, const LoraWeights& lora, const LoraSaved& saved,
                        bool dropped, Tensor W, const LoraGradScratch& scratch) {
  const int64_t N = dy.dim(0), O = dy.dim(1), I = W.dim(1), r = lora.A.dim(0);
  const size_t q_off = scratch.dora.nbytes() / 2;  // Q: the second half
  const Tensor t1 = scratch_view(scratch.dora, DType::BF16, 0, N, O);
  const Tensor t2 = scratch_view(scratch.dora, DType::BF16, static_cast<size_t>(N * O) * 2, N, O);
  LF_CHECK(static_cast<size_t>(N * O) * 4 <= q_off, "DoRA bf16 scratch {} for ({}, {})", scratch.dora.shape_str(), N,
           O);
  be.matmul(t1, in, false, W, true, 1.f, 0.f);             // F.linear(xd, W), recomputed
  be.matmul(t2, saved.xa, false, lora.B, true, 1.f, 0.f);  // lora_B(xa), recomputed
  be.dora_backward_scale(lora.dm, t1, t2, dy, lora.m, lora.norm, lora.scale);  // dm; t1, t2 -> dt1, dt2
  const Tensor dB16 = part(scratch.dw, O, r), dA16 = part(scratch.dw, r, I);
  be.matmul(dB16, t2, true, saved.xa, false, 1.f, 0.f);  // bf16(dt2ᵀ·xa)
  be.add(lora.dB, lora.dB, dB16);
  be.matmul(scratch.dxa, t2, false, lora.B, false, 1.f, 0.f);  // dxa = bf16(dt2·bf16(B))
  be.matmul(dA16, scratch.dxa, true, in, false, 1.f, 0.f);     // bf16(dxaᵀ·xd)
  be.add(lora.dA, lora.dA, dA16);
  if (dx.empty()) return;
  const Tensor d1 = part(scratch.dys, N, I);  // (N, I) bf16
  const Tensor d2 = scratch_view(scratch.dora, DType::BF16, q_off, N, I);
  be.matmul(d1, t1, false, W, false, 1.f, 0.f);                // bf16(dt1·W)
  be.matmul(d2, scratch.dxa, false, lora.A, false, 1.f, 0.f);  // bf16(dxa·bf16(A))
  if (!dropped) {
    be.add(d1, d1, d2);  // the fp32 sum, rounded once to bf16
  } else {
    const Tensor f = scratch_view(scratch.dora, DType::F32, 0, N, I);  // P (t1 is spent)
    be.add(f, d1, d2);
    be.dropout(f, f, lora.dropout, saved.dropout_seed);  // same mask, same 1/(1−p), in fp32
    be.convert(d1, f);
  }
  be.add(dx, dx, d1);
}

void dora_backward(Backend& be, Tensor dx, Tensor dy, Tensor in, const LoraWeights& lora, const LoraSaved& saved,
                   bool dropped, Tensor W, const LoraGradScratch& scratch) {
  require_dora_checked_backend(be);
  LF_CHECK(!lora.dm.empty(), "DoRA backward needs a dm view");
  if (dy.dtype == DType::BF16) {
    dora_backward_bf16(be, dx, dy, in, lora, saved, dropped, W, scratch);
    return;
  }
  const int64_t N = dy.dim(0), O = dy.dim(1);
  const Tensor S = part(scratch.dora, N, O);  // (N, O)
  const Tensor S2 = scratch_view(scratch.dora, DType::F32, static_cast<size_t>(N * O) * sizeof(float), N, O);
  // dm = Σ_rows dy⊙v / n, v = xd·Wᵀ + s·xa·Bᵀ (what c multiplies; ∂c/∂m = 1/n); then S = c⊙dy,
  // the LoRA branch's gradient, and S2 = (c − 1)⊙dy, the (c − 1)⊙(xd·Wᵀ) term's.
  be.matmul(S, in, false, W, true, 1.f, 0.f);
  be.matmul(S, saved.xa, false, lora.B, true, lora.scale, 1.f);
  be.dora_backward_scale(lora.dm, S, S2, dy, lora.m, lora.norm, lora.scale);
  be.matmul(lora.dB, S, true, saved.xa, false, lora.scale, 1.f);     // dB += s·gᵀ·xa
  be.matmul(scratch.dxa, S, false, lora.B, false, lora.scale, 0.f);  // dxa = s·g·B
  be.matmul(lora.dA, scratch.dxa, true, in, false, 1.f, 1.f);        // dA += dxaᵀ·xd
  if (dx.empty()) return;
  // The (c − 1)⊙(xd·Wᵀ) term's input gradient joins the branch's before drop⁻¹.
  Tensor d = dx;
  if (dropped) {
    LF_CHECK(!scratch.dxin.empty(), "LoRA backward with dropout needs a dxin scratch buffer");
    d = scratch.dxin;
    be.matmul(d, S2, false, W, false, 1.f, 0.f);
  } else {
    be.matmul(d, S2, false, W, false, 1.f, 1.f);
  }
  be.matmul(d, scratch.dxa, false, lora.A, false, 1.f, 1.f);
  if (!dropped) return;
  be.dropout(d, d, lora.dropout, saved.dropout_seed);  // same mask, same 1/(1−p)
  be.add(dx, dx, d);
}

}  // namespace

void linear_backward(Backend& be, Tensor dx, Tensor dy, Tensor x, Tensor W, const LoraWeights* lora,
                     const LoraSaved* saved, bool training, LoraGradScratch scratch) {
  if (!dx.empty()) be.matmul(dx, dy, false, W, false, 1.f, 0.f);  // dx = dy·W
  if (lora == nullptr || lora->empty()) return;
  LF_CHECK(saved != nullptr && !saved->xa.empty() && !scratch.dxa.empty(),
           "LoRA backward needs the saved xa and a dxa scratch buffer");
  LF_CHECK(!lora->dA.empty() && !lora->dB.empty(), "LoRA backward needs dA/dB views");
  const bool dropped = training && lora->dropout > 0.f;
  const Tensor in = dropped ? saved->xdrop : x;  // (N, I) what A saw
  LF_CHECK(!in.empty(), "LoRA backward: the forward's drop(x) was not saved");
  if (lora->dora()) {
    dora_backward(be, dx, dy, in, *lora, *saved, dropped, W, scratch);
    return;
  }
  if (dy.dtype != DType::BF16) {
    be.matmul(lora->dB, dy, true, saved->xa, false, lora->scale, 1.f);   // dB += s·dyᵀ·xa
    be.matmul(scratch.dxa, dy, false, lora->B, false, lora->scale, 0.f);  // dxa = s·dy·B
    be.matmul(lora->dA, scratch.dxa, true, in, false, 1.f, 1.f);         // dA += dxaᵀ·drop(x)
  } else {
    const int64_t N = dy.dim(0), O = dy.dim(1), r = lora->A.dim(0), I = lora->A.dim(1);
    const Tensor g = part(scratch.dys, N, O);
    be.convert(g, dy);
    be.scale(g, lora->scale);                                     // g = bf16(s·dy)
    const Tensor dB16 = part(scratch.dw, O, r), dA16 = part(scratch.dw, r, I);
    be.matmul(dB16, g, true, saved->xa, false, 1.f, 0.f);         // bf16(gᵀ·xa)
    be.add(lora->dB, lora->dB, dB16);                             // dB += (fp32)
    be.matmul(scratch.dxa, g, false, lora->B, false, 1.f, 0.f);   // dxa = bf16(g·B)
    be.matmul(dA16, scratch.dxa, true, in, false, 1.f, 0.f);      // bf16(dxaᵀ·drop(x))
    be.add(lora->dA, lora->dA, dA16);                             // dA += (fp32)
  }
  if (dx.empty()) return;
  if (!dropped) {
    if (dx.dtype != DType::BF16) {
      be.matmul(dx, scratch.dxa, false, lora->A, false, 1.f, 1.f);  // dx += dxa·A
    } else {  // the LoRA input gradient is its own bf16 tensor before autograd adds it to dx
      const Tensor dd = part(scratch.dys, dx.dim(0), dx.dim(1));
      be.matmul(dd, scratch.dxa, false, lora->A, false, 1.f, 0.f);
      be.add(dx, dx, dd);
    }
    return;
  }
  LF_CHECK(!scratch.dxin.empty(), "LoRA backward with dropout needs a dxin scratch buffer");
  be.matmul(scratch.dxin, scratch.dxa, false, lora->A, false, 1.f, 0.f);  // d drop(x)
  be.dropout(scratch.dxin, scratch.dxin, lora->dropout, saved->dropout_seed);  // same mask, same 1/(1−p)
  be.add(dx, dx, scratch.dxin);
}

}  // namespace lorafit
