// Dynamically quantized int8 matrix products: the gates of LSTM and GRU layers with int8 weights
// (PyTorch's dynamic quantization of nn.LSTM, ONNX Runtime's DynamicQuantizeLSTM).
//
//   y[m, r] = bias[r] + float(acc[m, r]) * (sx[m] * sw[r]),
//   acc[m, r] = sum_k (q[m, k] - zp[m]) * w[r, k]            (int32, exact)
//
// The weights w [R, K] are int8, symmetric, one scale sw[r] per output row, quantized once by
// `minnow quantize`. Each input row x[m] is quantized when it arrives, with its own range
// (quantize_row): activations of a recurrent layer have no calibrated range worth the name (the
// hidden state lives in (-1, 1) but the input projection sees whatever comes in), and one range
// per row keeps a sample's result independent of the other samples in the batch, which an
// inference session may split into pieces. The fast path (AVX-512 VNNI, checked at run time)
// computes the same int32 sums and the same float steps as the reference loops: equal bit for
// bit.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/conv_buffer.h"
#include "kernels/weights_watch.h"

namespace minnow::kernels {

struct RowQuant {
  float scale = 1;
  int32_t zp = 0;
};

// The u8 codes of one row of k floats over the range [min(0, min x), max(0, max x)] in 255
// steps: q = saturate(round_half_even(x / scale) + zp), zp = round_half_even(-lo / scale). A row
// of zeros gets scale 1 and zero point 0. NaN reads as 0.
RowQuant quantize_row(const float* x, int64_t k, uint8_t* q);

class DynamicInt8Gemm {
 public:
  // R output rows of K inputs. fast: the VNNI path where the CPU has it.
  DynamicInt8Gemm(int64_t rows, int64_t k, bool fast);

  // The weights' bytes may change between runs unless set_constant(true) (kernels/weights_watch.h).
  void set_constant(bool constant) { weights_.set_constant(constant); }
  // The weights w [R, K] int8 for the runs that follow (packed again only if they changed).
  void prepare(const int8_t* w);

  // x [m, K] -> y [m, R] (rows ldy apart; 0: R) with the prepared weights. sw [R], bias [R] or
  // nullptr.
  void run(const float* x, int64_t m, const float* sw, const float* bias, float* y,
           int64_t ldy = 0);

 private:
  void run_reference(int64_t m, const float* sw, const float* bias, float* y, int64_t ldy);
  void run_vnni(int64_t m, const float* sw, const float* bias, float* y, int64_t ldy);

  int64_t rows_, k_, quads_, rows_pad_;
  bool fast_;
  WeightsWatch weights_;
  const int8_t* w_ = nullptr;     // the prepared weights (the reference loops read them)
  std::vector<int32_t> wsum_;     // sum_k w[r, k]: the zero point's share is zp * wsum
  AlignedBuffer<int8_t> packed_;  // [quads][rows_pad][4]: weights k = 4j .. 4j + 3 of row r
  std::vector<uint8_t> q_;        // the current input's codes [m][quads * 4], zero-padded
  std::vector<RowQuant> row_;     // their ranges
};

}  // namespace minnow::kernels
