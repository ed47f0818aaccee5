// LSTM over a whole sequence (PyTorch nn.LSTM, batch_first, one layer, optional reverse
// direction and pack_padded_sequence lengths). Gate order i, f, g, o:
//   c' = f * c + i * g,  h' = o * tanh(c').
// The drivers (reference, fast, BPTT) are shared with GRU in recurrent_util.h.
#include "ops/op_defs.h"
#include "ops/recurrent_util.h"

namespace minnow::ops {

namespace {

template <class T, bool kFast>
struct LstmCell {
  using A = recurrent::Act<T, kFast>;

  static constexpr int64_t kGates = 4;
  static constexpr int64_t kStateMult = 2;  // h, c
  static constexpr int64_t kSaveMult = 6;   // i, f, g, o, c_prev, c
  static constexpr bool kSplitGrad = false;

  [[gnu::always_inline]] static void forward_row(int64_t H, const T* xp, const T* hp, const T* bh,
                                                 T* state, T* save) {
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
  [[gnu::always_inline]] static void backward_row(int64_t H, const T* save, const T*, T* dstate,
                                                  T* dxg, T*) {
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

const OpDef kLstmDef = {OpKind::kLstm, "LSTM",         5,    8,        2, infer_lstm,
                        make_lstm_ref, make_lstm_fast, true, lstm_macs};

}  // namespace minnow::ops
