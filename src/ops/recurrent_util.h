// Shared machinery of the whole-sequence recurrent ops (LSTM, GRU): shape inference, lengths,
// and the two drivers that run a cell over time, forward and backward (BPTT).
//
// Layout (PyTorch nn.LSTM/nn.GRU, batch_first=True, one layer): x [N, T, F];
// w_ih [dirs*G*H, F], w_hh [dirs*G*H, H], b_ih, b_hh [dirs*G*H] (direction 0 rows first);
// optional lengths i64 [N]. Outputs y [N, T, dirs*H] and h_last [N, dirs*H].
//
// Int8 gates (inference only): with inputs 6 and 7, w_ih_scale and w_hh_scale f32 [dirs*G*H],
// the weights are int8 (symmetric, one scale per row, as `minnow quantize` stores them) and
// both projections are dynamically quantized int8 products (kernels/qgemm_dynamic.h): every
// input row and every step's hidden state is quantized to u8 with its own range. x, biases and
// the cell's math stay f32.
//
// Lengths follow pack_padded_sequence: sample n only sees steps t < len[n]. Both drivers use
// one rule for both directions: at step t a sample is active iff t < len[n], otherwise its state
// is carried unchanged. Forward, the inactive steps come after the last real one (state frozen
// at step len-1); in reverse they come first (state still the zero initial state).
//
// A cell (LstmCell, GruCell) supplies the per-row math, templated on the float type and on
// whether to use the vectorizable activations of recurrent_math.h (fast kernel only):
//   kGates            G
//   kStateMult        state size in units of H (LSTM: h and c; GRU: h); h is the first H
//   kSaveMult         floats saved per row and step for backward, in units of H
//   kSplitGrad        whether the gradient of the hidden projection differs from the input one
//   forward_row(H, xp, hp, b_hh, state, save)   (both rows [[gnu::always_inline]]: see below)
//       xp = W_ih x + b_ih, hp = W_hh h (no bias) for one row; updates state in place.
//   backward_row(H, save, h_prev, dstate, dxg, dhg)
//       dstate: in, gradient w.r.t. the state after the step (dh already includes dy);
//       out, the gradient w.r.t. the state before the step *except* the W_hh h path.
//       dxg: gradient w.r.t. xp (G*H); dhg: w.r.t. hp + b_hh (only written when kSplitGrad).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/qgemm_dynamic.h"
#include "ops/op_util.h"
#include "ops/recurrent_math.h"

namespace minnow::ops::recurrent {

struct Dims {
  int64_t n, t, f, h, dirs, g;
  int64_t gh() const { return g * h; }
};

struct Attrs2 {
  int64_t hidden;
  int64_t dirs;
};

inline Attrs2 recurrent_attrs(const Node& n) {
  const int64_t h = n.attrs.get_int("hidden_size", 0);
  if (h <= 0) fail(n, "attribute hidden_size must be > 0, got " + std::to_string(h));
  const int64_t bi = n.attrs.get_int("bidirectional", 0);
  if (bi != 0 && bi != 1)
    fail(n, "attribute bidirectional must be 0 or 1, got " + std::to_string(bi));
  return {h, bi ? 2 : 1};
}

// Whether the node has int8 weights with per-row scales (inputs 6 and 7), see the top. One
// scale without the other is an error.
inline bool has_int8_gates(const Node& n, const InputInfos& in) {
  const bool ih = in.size() > 6 && in[6], hh = in.size() > 7 && in[7];
  if (ih != hh) fail(n, "int8 weights need both w_ih_scale (input 6) and w_hh_scale (input 7)");
  return ih;
}

// Validates attributes and shapes; fills y and h_last.
inline void infer_recurrent(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out,
                            int64_t gates) {
  const Attrs2 a = recurrent_attrs(n);
  const ValueInfo& x = input(n, in, 0);
  require_float(n, x);
  require_rank(n, x, 3);
  const int64_t t = x.shape[1], f = x.shape[2];
  if (t <= 0 || f <= 0) {
    fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) +
                ", expected [N, T, F] with concrete T, F > 0");
  }
  const int64_t rows = a.dirs * gates * a.hidden;
  const bool int8 = has_int8_gates(n, in);
  if (int8 && x.dtype != DType::kF32) {
    fail(n,
         "int8 weights need an f32 input, '" + x.name + "' is " + std::string(dtype_name(x.dtype)));
  }
  static const char* const kRoles[] = {"w_ih", "w_hh",       "b_ih",      "b_hh",
                                       "",     "w_ih_scale", "w_hh_scale"};
  const Shape want[] = {{rows, f}, {rows, a.hidden}, {rows}, {rows}, {}, {rows}, {rows}};
  for (size_t i = 1; i <= (int8 ? 7u : 4u); ++i) {
    if (i == 5) continue;  // lengths, below
    const ValueInfo& p = input(n, in, i);
    const DType dt = int8 && (i == 1 || i == 2) ? DType::kI8 : x.dtype;
    if (p.dtype != dt) {
      fail(n, std::string(kRoles[i - 1]) + " '" + p.name + "' has dtype " +
                  std::string(dtype_name(p.dtype)) + ", expected " + std::string(dtype_name(dt)) +
                  (dt == x.dtype ? " like the input" : " (the scales' weights)"));
    }
    if (p.shape != want[i - 1]) {
      fail(n, std::string(kRoles[i - 1]) + " '" + p.name + "' has shape " + shape_str(p.shape) +
                  ", expected " + shape_str(want[i - 1]) + " (dirs*" + std::to_string(gates) +
                  "*hidden_size rows)");
    }
  }
  if (in.size() > 5 && in[5]) {
    const ValueInfo& len = *in[5];
    if (len.dtype != DType::kI64 || len.shape.size() != 1) {
      fail(n, "lengths '" + len.name + "' has dtype " + std::string(dtype_name(len.dtype)) +
                  " shape " + shape_str(len.shape) + ", expected i64 [N]");
    }
    const int64_t ln = len.shape[0], xn = x.shape[0];
    if (ln != kDynamic && xn != kDynamic && ln != xn) {
      fail(n, "lengths '" + len.name + "' has " + std::to_string(ln) + " entries, expected " +
                  std::to_string(xn) + " (the batch of '" + x.name + "')");
    }
  }
  out[0].dtype = x.dtype;
  out[0].shape = {x.shape[0], t, a.dirs * a.hidden};
  if (out.size() > 1) {
    out[1].dtype = x.dtype;
    out[1].shape = {x.shape[0], a.dirs * a.hidden};
  }
}

inline Dims recurrent_dims(const Node& n, const InputInfos& in, int64_t gates) {
  const Attrs2 a = recurrent_attrs(n);
  const Shape& x = in[0]->shape;
  return {x[0], x[1], x[2], a.hidden, a.dirs, gates};
}

inline int64_t recurrent_macs(const Node& n, const InputInfos& in,
                              const std::vector<ValueInfo>& out, int64_t gates) {
  // y has N*T*dirs*H elements; each needs G rows of W_ih (F wide) and of W_hh (H wide).
  const int64_t f = in[0]->shape[2];
  const int64_t h = recurrent_attrs(n).hidden;
  return numel_per_sample(out[0].shape) * gates * (f + h);
}

// Per-sample lengths from the optional input, checked against T.
inline std::vector<int64_t> read_lengths(const Node& node, Tensors in, const Dims& d) {
  std::vector<int64_t> len(d.n, d.t);
  if (in.size() <= 5 || !in[5]) return len;
  const Tensor& l = *in[5];
  if (l.numel() != d.n) {
    fail(node,
         "lengths has " + std::to_string(l.numel()) + " entries, expected " + std::to_string(d.n));
  }
  const int64_t* p = l.data<int64_t>();
  for (int64_t i = 0; i < d.n; ++i) {
    if (p[i] < 1 || p[i] > d.t) {
      fail(node, "lengths[" + std::to_string(i) + "] = " + std::to_string(p[i]) +
                     ", expected 1 <= length <= T = " + std::to_string(d.t));
    }
    len[i] = p[i];
  }
  return len;
}

// Zeroes every wanted gradient of the float inputs (x and the four parameters).
inline void zero_grads(Tensors grad_in) {
  for (size_t i = 0; i < grad_in.size() && i < 5; ++i) {
    if (grad_in[i]) grad_in[i]->fill_zero();
  }
}

template <class T>
T* grad_ptr(Tensors g, size_t i) {
  return i < g.size() && g[i] ? g[i]->template data<T>() : nullptr;
}

// The int8 projections of each direction: xq[d] = W_ih x (+ b_ih), hq[d] = W_hh h.
struct Int8Projections {
  std::vector<kernels::DynamicInt8Gemm> x, h;

  Int8Projections() = default;
  Int8Projections(const Dims& d, bool fast) {
    for (int64_t i = 0; i < d.dirs; ++i) {
      x.emplace_back(d.gh(), d.f, fast);
      h.emplace_back(d.gh(), d.h, fast);
    }
  }
  // The weights of this run (packed again only when they changed).
  void prepare(Tensors in, const Dims& d) {
    for (int64_t i = 0; i < d.dirs; ++i) {
      x[i].prepare(in[1]->data<int8_t>() + i * d.gh() * d.f);
      h[i].prepare(in[2]->data<int8_t>() + i * d.gh() * d.h);
    }
  }
  void set_constant(const std::vector<bool>& constant) {
    for (auto& g : x) g.set_constant(constant.size() > 1 && constant[1]);
    for (auto& g : h) g.set_constant(constant.size() > 2 && constant[2]);
  }
};

[[noreturn]] inline void no_int8_gradient(const Node& node) {
  fail(node, "has int8 weights: it runs inference only and has no gradient");
}

// The oracle: each sample and direction runs over exactly its own len[n] steps (the
// pack_padded_sequence picture), with plain dot products. Independent of the masking scheme the
// fast kernel uses.
template <template <class, bool> class Cell, class T>
class RecurrentRef final : public Kernel {
  using C = Cell<T, false>;

 public:
  RecurrentRef(const Node& node, Dims d, bool int8)
      : node_(node), d_(d), int8_(int8), q_(int8 ? Int8Projections(d, false) : Int8Projections()) {}

  void set_constant_inputs(const std::vector<bool>& constant) override {
    q_.set_constant(constant);
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    len_ = read_lengths(node_, in, d_);
    const int64_t N = d_.n, TT = d_.t, F = d_.f, H = d_.h, D = d_.dirs, GH = d_.gh();
    const int64_t S = C::kStateMult * H, SV = C::kSaveMult * H;
    const T* x = in[0]->data<T>();
    T* y = out[0]->data<T>();
    T* hl = out.size() > 1 && out[1] ? out[1]->data<T>() : nullptr;
    std::fill(y, y + N * TT * D * H, T(0));
    save_.assign(D * N * TT * SV, T(0));
    hprev_.assign(D * N * TT * H, T(0));
    std::vector<T> state(S), xp(GH), hp(GH);
    if (int8_) q_.prepare(in, d_);
    for (int64_t d = 0; d < D; ++d) {
      const T* wi = int8_ ? nullptr : in[1]->data<T>() + d * GH * F;
      const T* wh = int8_ ? nullptr : in[2]->data<T>() + d * GH * H;
      const T* bi = in[3]->data<T>() + d * GH;
      const T* bh = in[4]->data<T>() + d * GH;
      for (int64_t n = 0; n < N; ++n) {
        std::fill(state.begin(), state.end(), T(0));
        const int64_t len = len_[n];
        for (int64_t s = 0; s < len; ++s) {
          const int64_t t = d == 0 ? s : len - 1 - s;
          const T* xt = x + (n * TT + t) * F;
          if (int8_) {
            if constexpr (std::is_same_v<T, float>) {  // int8 weights need an f32 input
              q_.x[d].run(xt, 1, in[6]->f32() + d * GH, bi, xp.data());
              q_.h[d].run(state.data(), 1, in[7]->f32() + d * GH, nullptr, hp.data());
            }
          } else {
            for (int64_t r = 0; r < GH; ++r) {
              T a = bi[r], b = T(0);
              for (int64_t k = 0; k < F; ++k) a += wi[r * F + k] * xt[k];
              for (int64_t k = 0; k < H; ++k) b += wh[r * H + k] * state[k];
              xp[r] = a;
              hp[r] = b;
            }
          }
          const int64_t at = idx(d, n, t);
          std::copy(state.begin(), state.begin() + H, hprev_.begin() + at * H);
          C::forward_row(H, xp.data(), hp.data(), bh, state.data(), save_.data() + at * SV);
          std::copy(state.begin(), state.begin() + H, y + (n * TT + t) * D * H + d * H);
        }
        if (hl) std::copy(state.begin(), state.begin() + H, hl + n * D * H + d * H);
      }
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (int8_) no_int8_gradient(node_);
    zero_grads(grad_in);
    const T* dy = grad_ptr<T>(grad_out, 0);
    const T* dhl = grad_ptr<T>(grad_out, 1);
    if (!dy && !dhl) return;
    const int64_t N = d_.n, TT = d_.t, F = d_.f, H = d_.h, D = d_.dirs, GH = d_.gh();
    const int64_t S = C::kStateMult * H, SV = C::kSaveMult * H;
    const T* x = in[0]->data<T>();
    T* dx = grad_ptr<T>(grad_in, 0);
    std::vector<T> dstate(S), dxg(GH), dhg(GH);
    for (int64_t d = 0; d < D; ++d) {
      const T* wi = in[1]->data<T>() + d * GH * F;
      const T* wh = in[2]->data<T>() + d * GH * H;
      T* dwi = grad_ptr<T>(grad_in, 1);
      T* dwh = grad_ptr<T>(grad_in, 2);
      T* dbi = grad_ptr<T>(grad_in, 3);
      T* dbh = grad_ptr<T>(grad_in, 4);
      if (dwi) dwi += d * GH * F;
      if (dwh) dwh += d * GH * H;
      if (dbi) dbi += d * GH;
      if (dbh) dbh += d * GH;
      for (int64_t n = 0; n < N; ++n) {
        std::fill(dstate.begin(), dstate.end(), T(0));
        if (dhl) std::copy(dhl + n * D * H + d * H, dhl + n * D * H + d * H + H, dstate.begin());
        const int64_t len = len_[n];
        for (int64_t s = len - 1; s >= 0; --s) {
          const int64_t t = d == 0 ? s : len - 1 - s;
          if (dy) {
            const T* g = dy + (n * TT + t) * D * H + d * H;
            for (int64_t k = 0; k < H; ++k) dstate[k] += g[k];
          }
          const int64_t at = idx(d, n, t);
          const T* hpv = hprev_.data() + at * H;
          C::backward_row(H, save_.data() + at * SV, hpv, dstate.data(), dxg.data(), dhg.data());
          const T* gh = C::kSplitGrad ? dhg.data() : dxg.data();
          const T* xt = x + (n * TT + t) * F;
          for (int64_t r = 0; r < GH; ++r) {
            if (dwi) {
              for (int64_t k = 0; k < F; ++k) dwi[r * F + k] += dxg[r] * xt[k];
            }
            if (dwh) {
              for (int64_t k = 0; k < H; ++k) dwh[r * H + k] += gh[r] * hpv[k];
            }
            if (dbi) dbi[r] += dxg[r];
            if (dbh) dbh[r] += gh[r];
            if (dx) {
              T* dxt = dx + (n * TT + t) * F;
              for (int64_t k = 0; k < F; ++k) dxt[k] += dxg[r] * wi[r * F + k];
            }
            for (int64_t k = 0; k < H; ++k) dstate[k] += gh[r] * wh[r * H + k];
          }
        }
      }
    }
  }

 private:
  int64_t idx(int64_t d, int64_t n, int64_t t) const { return (d * d_.n + n) * d_.t + t; }

  Node node_;
  Dims d_;
  bool int8_;
  Int8Projections q_;
  std::vector<int64_t> len_;
  std::vector<T> save_, hprev_;  // per (direction, sample, step)
};

// The fast kernel's row loops, built per ISA level: the build targets baseline x86-64, whose 4
// lanes left the gate math 60% of an int8 LSTM step (one 256-step LSTM at batch 1: f32 1,040 ->
// 790 us). The cells' rows are always_inline so that each clone compiles them for its level;
// lstm.cpp and gru.cpp, where these are instantiated, are built without FMA contraction, so
// every level computes the bits of the baseline build.
template <template <class, bool> class Cell>
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void fast_forward_row(
    int64_t H, const float* xp, const float* hp, const float* bh, float* state, float* save) {
  Cell<float, true>::forward_row(H, xp, hp, bh, state, save);
}
template <template <class, bool> class Cell>
[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void fast_backward_row(
    int64_t H, const float* save, const float* h_prev, float* dstate, float* dxg, float* dhg) {
  Cell<float, true>::backward_row(H, save, h_prev, dstate, dxg, dhg);
}

// f32, time-major. The input projection of every step and both directions is one GEMM
// (x as [T*N, F] times W_ih^T); each step adds one [N, H] x [H, G*H] GEMM for the hidden
// projection, and backward one [N, G*H] x [G*H, H] GEMM per step for dh. Weight and input
// gradients are three GEMMs per direction over all steps at once. Rows past a sample's length
// still go through the per-step GEMM (keeping it one product) and are masked afterwards.
template <template <class, bool> class Cell>
class RecurrentFast final : public Kernel {
  using C = Cell<float, true>;
  using Sgemm = kernels::Sgemm;

 public:
  RecurrentFast(const Node& node, Dims d, bool int8)
      : node_(node),
        d_(d),
        int8_(int8),
        q_(int8 ? Int8Projections(d, true) : Int8Projections()),
        xproj_(d.t * d.n, d.dirs * d.gh(), d.f, {.trans_b = true, .with_bias = true}),
        hproj_(d.n, d.gh(), d.h, {.trans_b = true}),
        dh_(d.n, d.h, d.gh(), {}),
        dwih_(d.gh(), d.f, d.t * d.n, {.trans_a = true}),
        dwhh_(d.gh(), d.h, d.t * d.n, {.trans_a = true}),
        dx_(d.t * d.n, d.f, d.gh(), {}),
        dx_acc_(d.t * d.n, d.f, d.gh(), {.accumulate = true}) {
    const int64_t TN = d.t * d.n, H = d.h, D = d.dirs;
    xt_.resize(TN * d.f);
    xp_.resize(TN * D * d.gh());
    hp_.resize(int8 ? d.n * H : D * TN * H);
    save_.resize((int8 ? d.n : D * TN) * C::kSaveMult * H);
    hproj_buf_.resize(d.n * d.gh());
    state_.resize(d.n * C::kStateMult * H);
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    len_ = read_lengths(node_, in, d_);
    const int64_t N = d_.n, TT = d_.t, F = d_.f, H = d_.h, D = d_.dirs, GH = d_.gh();
    const int64_t S = C::kStateMult * H, SV = C::kSaveMult * H, TN = TT * N;
    to_time_major(in[0]->f32(), xt_.data(), F);
    if (int8_) {
      // Per direction (each has its own weights), into the rows' d-th slice of xp_.
      q_.prepare(in, d_);
      for (int64_t d = 0; d < D; ++d) {
        q_.x[d].run(xt_.data(), TN, in[6]->f32() + d * GH, in[3]->f32() + d * GH,
                    xp_.data() + d * GH, D * GH);
      }
    } else {
      xproj_.run(xt_.data(), in[1]->f32(), xp_.data(), in[3]->f32());
    }
    float* y = out[0]->f32();
    float* hl = out.size() > 1 && out[1] ? out[1]->f32() : nullptr;
    const bool par = parallel();
    for (int64_t d = 0; d < D; ++d) {
      const float* wh = int8_ ? nullptr : in[2]->f32() + d * GH * H;
      const float* bh = in[4]->f32() + d * GH;
      // Int8 gates run inference only: the hidden states and the cells' values are not kept for
      // backward, one step's worth is reused (at batch 64 they were 60 MB of stores per run).
      float* hp_d = hp_.data() + (int8_ ? 0 : d * TN * H);
      float* save_d = save_.data() + (int8_ ? 0 : d * TN * SV);
      std::fill(state_.begin(), state_.end(), 0.0f);
      for (int64_t s = 0; s < TT; ++s) {
        const int64_t t = d == 0 ? s : TT - 1 - s;
        float* hprev = hp_d + (int8_ ? 0 : t * N * H);
        for (int64_t n = 0; n < N; ++n) {
          std::memcpy(hprev + n * H, state_.data() + n * S, H * sizeof(float));
        }
        if (int8_) {
          q_.h[d].run(hprev, N, in[7]->f32() + d * GH, nullptr, hproj_buf_.data());
        } else {
          hproj_.run(hprev, wh, hproj_buf_.data());
        }
#pragma omp parallel for if (par) schedule(static)
        for (int64_t n = 0; n < N; ++n) {
          float* yr = y + (n * TT + t) * D * H + d * H;
          if (t < len_[n]) {
            float* st = state_.data() + n * S;
            fast_forward_row<Cell>(H, xp_.data() + (t * N + n) * D * GH + d * GH,
                                   hproj_buf_.data() + n * GH, bh, st,
                                   save_d + ((int8_ ? 0 : t * N) + n) * SV);
            std::memcpy(yr, st, H * sizeof(float));
          } else {
            std::fill(yr, yr + H, 0.0f);
          }
        }
      }
      if (hl) {
        for (int64_t n = 0; n < N; ++n) {
          std::memcpy(hl + n * D * H + d * H, state_.data() + n * S, H * sizeof(float));
        }
      }
    }
  }

  void set_constant_inputs(const std::vector<bool>& constant) override {
    q_.set_constant(constant);
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (int8_) no_int8_gradient(node_);
    zero_grads(grad_in);
    const float* dy = grad_ptr<float>(grad_out, 0);
    const float* dhl = grad_ptr<float>(grad_out, 1);
    if (!dy && !dhl) return;
    const int64_t N = d_.n, TT = d_.t, F = d_.f, H = d_.h, D = d_.dirs, GH = d_.gh();
    const int64_t S = C::kStateMult * H, SV = C::kSaveMult * H, TN = TT * N;
    float* dx = grad_ptr<float>(grad_in, 0);
    float* dwi = grad_ptr<float>(grad_in, 1);
    float* dwh = grad_ptr<float>(grad_in, 2);
    float* dbi = grad_ptr<float>(grad_in, 3);
    float* dbh = grad_ptr<float>(grad_in, 4);
    dxg_.resize(TN * GH);
    if (C::kSplitGrad) dhg_.resize(TN * GH);
    if (dx) dxt_.resize(TN * F);
    dstate_.resize(N * S);
    dh_buf_.resize(N * H);
    const bool par = parallel();
    for (int64_t d = 0; d < D; ++d) {
      const float* wi = in[1]->f32() + d * GH * F;
      const float* wh = in[2]->f32() + d * GH * H;
      const float* hp_d = hp_.data() + d * TN * H;
      const float* save_d = save_.data() + d * TN * SV;
      float* gx = dxg_.data();
      float* gh = C::kSplitGrad ? dhg_.data() : dxg_.data();
      std::fill(dstate_.begin(), dstate_.end(), 0.0f);
      if (dhl) {
        for (int64_t n = 0; n < N; ++n) {
          std::memcpy(dstate_.data() + n * S, dhl + n * D * H + d * H, H * sizeof(float));
        }
      }
      for (int64_t s = TT - 1; s >= 0; --s) {
        const int64_t t = d == 0 ? s : TT - 1 - s;
#pragma omp parallel for if (par) schedule(static)
        for (int64_t n = 0; n < N; ++n) {
          const int64_t row = t * N + n;
          if (t < len_[n]) {
            float* ds = dstate_.data() + n * S;
            if (dy) {
              const float* g = dy + (n * TT + t) * D * H + d * H;
              for (int64_t k = 0; k < H; ++k) ds[k] += g[k];
            }
            fast_backward_row<Cell>(H, save_d + row * SV, hp_d + row * H, ds, gx + row * GH,
                                    gh + row * GH);
          } else {
            std::fill(gx + row * GH, gx + row * GH + GH, 0.0f);
            if (C::kSplitGrad) std::fill(gh + row * GH, gh + row * GH + GH, 0.0f);
          }
        }
        if (s == 0) break;  // the gradient w.r.t. the zero initial state is not needed
        dh_.run(gh + t * N * GH, wh, dh_buf_.data());
        for (int64_t n = 0; n < N; ++n) {
          if (t >= len_[n]) continue;  // carried state: its gradient passes through unchanged
          float* ds = dstate_.data() + n * S;
          const float* g = dh_buf_.data() + n * H;
          for (int64_t k = 0; k < H; ++k) ds[k] += g[k];
        }
      }
      if (dwi) dwih_.run(gx, xt_.data(), dwi + d * GH * F);
      if (dwh) dwhh_.run(gh, hp_d, dwh + d * GH * H);
      if (dbi) column_sums(gx, TN, GH, dbi + d * GH);
      if (dbh) column_sums(gh, TN, GH, dbh + d * GH);
      if (dx) (d == 0 ? dx_ : dx_acc_).run(gx, wi, dxt_.data());
    }
    if (dx) from_time_major(dxt_.data(), dx, F);
  }

 private:
  // Below this many gate values per step, the elementwise loops stay on one thread.
  static constexpr int64_t kParallelMin = int64_t{1} << 14;
  bool parallel() const { return d_.n > 1 && d_.n * d_.gh() >= kParallelMin; }

  // [N, T, W] <-> [T, N, W].
  void to_time_major(const float* src, float* dst, int64_t w) const {
    for (int64_t n = 0; n < d_.n; ++n) {
      for (int64_t t = 0; t < d_.t; ++t) {
        std::memcpy(dst + (t * d_.n + n) * w, src + (n * d_.t + t) * w, w * sizeof(float));
      }
    }
  }
  void from_time_major(const float* src, float* dst, int64_t w) const {
    for (int64_t n = 0; n < d_.n; ++n) {
      for (int64_t t = 0; t < d_.t; ++t) {
        std::memcpy(dst + (n * d_.t + t) * w, src + (t * d_.n + n) * w, w * sizeof(float));
      }
    }
  }

  // out[c] = sum over rows of m[r, c], accumulated in double in row order (deterministic).
  static void column_sums(const float* m, int64_t rows, int64_t cols, float* out) {
    std::vector<double> acc(cols, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = m + r * cols;
      for (int64_t c = 0; c < cols; ++c) acc[c] += p[c];
    }
    for (int64_t c = 0; c < cols; ++c) out[c] = static_cast<float>(acc[c]);
  }

  Node node_;
  Dims d_;
  bool int8_;
  Int8Projections q_;
  Sgemm xproj_, hproj_, dh_, dwih_, dwhh_, dx_, dx_acc_;
  std::vector<int64_t> len_;
  std::vector<float> xt_, xp_, hp_, save_, hproj_buf_, state_;  // kept from forward
  std::vector<float> dxg_, dhg_, dxt_, dstate_, dh_buf_;        // backward scratch
};

template <template <class, bool> class Cell>
std::unique_ptr<Kernel> make_reference(const Node& n, const InputInfos& in) {
  const Dims d = recurrent_dims(n, in, Cell<float, false>::kGates);
  return dispatch_float(input(n, in, 0).dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<RecurrentRef<Cell, T>>(n, d, has_int8_gates(n, in));
  });
}

template <template <class, bool> class Cell>
std::unique_ptr<Kernel> make_fast(const Node& n, const InputInfos& in) {
  return std::make_unique<RecurrentFast<Cell>>(n, recurrent_dims(n, in, Cell<float, false>::kGates),
                                               has_int8_gates(n, in));
}

}  // namespace minnow::ops::recurrent
