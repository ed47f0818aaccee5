// LSTM over a whole sequence (PyTorch nn.LSTM, batch_first, one layer, optional reverse
// direction and pack_padded_sequence lengths). Gate order i, f, g, o:
//   c' = f * c + i * g,  h' = o * tanh(c').
// The drivers (reference, fast, BPTT) are shared with GRU in recurrent_util.h.
#include <type_traits>

#include "ops/op_defs.h"
#include "ops/recurrent_util.h"

namespace minnow::ops {

// The fast f32 cell's rows, vectorized per ISA level (the build targets baseline x86-64, whose
// 4 lanes left the gate math 60% of an int8 LSTM step). Built without FMA contraction (see
// CMakeLists.txt), so every level computes the same bits.
void lstm_forward_row_fast(int64_t H, const float* xp, const float* hp, const float* bh,
                           float* state, float* save);
void lstm_backward_row_fast(int64_t H, const float* save, const float* h_prev, float* dstate,
                            float* dxg, float* dhg);

namespace {

template <class T, bool kFast>
struct LstmCell {
  using A = recurrent::Act<T, kFast>;

  static constexpr int64_t kGates = 4;
  static constexpr int64_t kStateMult = 2;  // h, c
  static constexpr int64_t kSaveMult = 6;   // i, f, g, o, c_prev, c
  static constexpr bool kSplitGrad = false;

  static void forward_row(int64_t H, const T* xp, const T* hp, const T* bh, T* state, T* save) {
    if constexpr (kFast && std::is_same_v<T, float>) {
      lstm_forward_row_fast(H, xp, hp, bh, state, save);
    } else {
      forward_row_impl(H, xp, hp, bh, state, save);
    }
  }
  [[gnu::always_inline]] static void forward_row_impl(int64_t H, const T* xp, const T* hp,
                                                      const T* bh, T* state, T* save) {
    T* h = state;
    T* c = state + H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T i = A::sigmoid(xp[j] + hp[j] + bh[j]);
      const T f = A::sigmoid(xp[H + j] + hp[H + j] + bh[H + j]);
      const T g = A::tanh(xp[2 * H + j] + hp[2 * H + j] + bh[2 * H + j]);
      const T o = A::sigmoid(xp[3 * H + j] + hp[3 * H + j] + bh[3 * H + j]);
      const T cp = c[j];
      const T cn = f * cp + i * g;
      save[j] = i;
      save[H + j] = f;
      save[2 * H + j] = g;
      save[3 * H + j] = o;
      save[4 * H + j] = cp;
      save[5 * H + j] = cn;
      c[j] = cn;
      h[j] = o * A::tanh(cn);
    }
  }

  // dstate = [dh, dc] after the step -> [0, dc_prev] (dh_prev comes only through W_hh).
  static void backward_row(int64_t H, const T* save, const T* h_prev, T* dstate, T* dxg, T* dhg) {
    if constexpr (kFast && std::is_same_v<T, float>) {
      lstm_backward_row_fast(H, save, h_prev, dstate, dxg, dhg);
    } else {
      backward_row_impl(H, save, h_prev, dstate, dxg, dhg);
    }
  }
  [[gnu::always_inline]] static void backward_row_impl(int64_t H, const T* save, const T* h_prev,
                                                       T* dstate, T* dxg, T* dhg) {
    T* dh = dstate;
    T* dc = dstate + H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T i = save[j], f = save[H + j], g = save[2 * H + j], o = save[3 * H + j];
      const T cp = save[4 * H + j], tc = A::tanh(save[5 * H + j]);
      const T dct = dc[j] + dh[j] * o * (T(1) - tc * tc);
      dxg[j] = dct * g * i * (T(1) - i);
      dxg[H + j] = dct * cp * f * (T(1) - f);
      dxg[2 * H + j] = dct * i * (T(1) - g * g);
      dxg[3 * H + j] = dh[j] * tc * o * (T(1) - o);
      dh[j] = T(0);
      dc[j] = dct * f;
    }
  }
};

void infer_lstm(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  recurrent::infer_recurrent(n, in, out, 4);
}

std::unique_ptr<Kernel> make_lstm_ref(const Node& n, const InputInfos& in,
                                      const std::vector<ValueInfo>&) {
  return recurrent::make_reference<LstmCell>(n, in);
}

std::unique_ptr<Kernel> make_lstm_fast(const Node& n, const InputInfos& in,
                                       const std::vector<ValueInfo>&) {
  return recurrent::make_fast<LstmCell>(n, in);
}

int64_t lstm_macs(const Node& n, const InputInfos& in, const std::vector<ValueInfo>& out) {
  return recurrent::recurrent_macs(n, in, out, 4);
}

}  // namespace

[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void lstm_forward_row_fast(
    int64_t H, const float* xp, const float* hp, const float* bh, float* state, float* save) {
  LstmCell<float, true>::forward_row_impl(H, xp, hp, bh, state, save);
}

[[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]] void lstm_backward_row_fast(
    int64_t H, const float* save, const float* h_prev, float* dstate, float* dxg, float* dhg) {
  LstmCell<float, true>::backward_row_impl(H, save, h_prev, dstate, dxg, dhg);
}

const OpDef kLstmDef = {OpKind::kLstm, "LSTM",         5,    8,        2, infer_lstm,
                        make_lstm_ref, make_lstm_fast, true, lstm_macs};

}  // namespace minnow::ops
