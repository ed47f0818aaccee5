// GRU over a whole sequence (PyTorch nn.GRU, batch_first, one layer, optional reverse direction
// and pack_padded_sequence lengths). Gate order r, z, n:
//   r = s(W_ir x + b_ir + W_hr h + b_hr),  z = s(W_iz x + b_iz + W_hz h + b_hz),
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h.
// Because r multiplies the hidden part of n, the gradient of the hidden projection differs from
// the input one in the n block (kSplitGrad). Drivers are shared with LSTM (recurrent_util.h).
#include "ops/op_defs.h"
#include "ops/recurrent_util.h"

namespace minnow::ops {

namespace {

template <class T, bool kFast>
struct GruCell {
  using A = recurrent::Act<T, kFast>;

  static constexpr int64_t kGates = 3;
  static constexpr int64_t kStateMult = 1;  // h
  static constexpr int64_t kSaveMult = 4;   // r, z, n, W_hn h + b_hn
  static constexpr bool kSplitGrad = true;

  [[gnu::always_inline]] static void forward_row(int64_t H, const T* xp, const T* hp, const T* bh,
                                                 T* h, T* save) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T r = A::sigmoid(xp[j] + hp[j] + bh[j]);
      const T z = A::sigmoid(xp[H + j] + hp[H + j] + bh[H + j]);
      const T hn = hp[2 * H + j] + bh[2 * H + j];
      const T n = A::tanh(xp[2 * H + j] + r * hn);
      save[j] = r;
      save[H + j] = z;
      save[2 * H + j] = n;
      save[3 * H + j] = hn;
      h[j] = (T(1) - z) * n + z * h[j];
    }
  }

  // dstate = dh after the step -> the direct part z * dh of dh_prev.
  [[gnu::always_inline]] static void backward_row(int64_t H, const T* save, const T* h_prev, T* dh,
                                                  T* dxg, T* dhg) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T r = save[j], z = save[H + j], n = save[2 * H + j], hn = save[3 * H + j];
      const T g = dh[j];
      const T dan = g * (T(1) - z) * (T(1) - n * n);
      const T dar = dan * hn * r * (T(1) - r);
      const T daz = g * (h_prev[j] - n) * z * (T(1) - z);
      dxg[j] = dhg[j] = dar;
      dxg[H + j] = dhg[H + j] = daz;
      dxg[2 * H + j] = dan;
      dhg[2 * H + j] = dan * r;
      dh[j] = g * z;
    }
  }
};

void infer_gru(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  recurrent::infer_recurrent(n, in, out, 3);
}

std::unique_ptr<Kernel> make_gru_ref(const Node& n, const InputInfos& in,
                                     const std::vector<ValueInfo>&) {
  return recurrent::make_reference<GruCell>(n, in);
}

std::unique_ptr<Kernel> make_gru_fast(const Node& n, const InputInfos& in,
                                      const std::vector<ValueInfo>&) {
  return recurrent::make_fast<GruCell>(n, in);
}

int64_t gru_macs(const Node& n, const InputInfos& in, const std::vector<ValueInfo>& out) {
  return recurrent::recurrent_macs(n, in, out, 3);
}

}  // namespace

const OpDef kGruDef = {OpKind::kGru, "GRU",         5,    8,       2, infer_gru,
                       make_gru_ref, make_gru_fast, true, gru_macs};

}  // namespace minnow::ops
