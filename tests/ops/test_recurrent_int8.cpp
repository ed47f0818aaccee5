// LSTM and GRU with int8 weights (inputs 6 and 7: one scale per weight row): the dynamically
// quantized products (kernels/qgemm_dynamic.h) fast against reference bit for bit and against
// exact integer sums, quantize_row's codes, the whole op fast against reference and close to the
// f32 op on the dequantized weights, no gradient, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "dense_test_util.h"
#include "kernels/qgemm_dynamic.h"
#include "minnow/error.h"
#include "op_harness.h"
#include "recurrent_test_util.h"

namespace minnow::testing {
namespace {

using kernels::DynamicInt8Gemm;
using kernels::quantize_row;
using kernels::RowQuant;

// w [R, K] f32 -> int8 codes (symmetric, one scale per row) and the scales.
struct RowCodes {
  Tensor q, scale;
};
RowCodes quantize_rows(const Tensor& w) {
  const int64_t rows = w.dim(0), k = w.dim(1);
  RowCodes c{Tensor(DType::kI8, {rows, k}), Tensor(DType::kF32, {rows})};
  for (int64_t r = 0; r < rows; ++r) {
    float m = 0;
    for (int64_t i = 0; i < k; ++i) m = std::max(m, std::fabs(w.f32()[r * k + i]));
    const float s = m > 0 ? m / 127 : 1;
    c.scale.f32()[r] = s;
    for (int64_t i = 0; i < k; ++i) {
      c.q.data<int8_t>()[r * k + i] =
          static_cast<int8_t>(std::clamp(std::nearbyint(w.f32()[r * k + i] / s), -127.0f, 127.0f));
    }
  }
  return c;
}
Tensor dequantized(const RowCodes& c) {
  const int64_t rows = c.q.dim(0), k = c.q.dim(1);
  Tensor w(DType::kF32, {rows, k});
  for (int64_t i = 0; i < rows * k; ++i) w.f32()[i] = c.q.data<int8_t>()[i] * c.scale.f32()[i / k];
  return w;
}

bool same_bits(float a, float b) {
  return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

TEST(QuantizeRow, CodesCoverTheRowAndZeroIsExact) {
  Rng rng(3);
  std::vector<std::vector<float>> rows = {
      {0.5f, -1.25f, 3.0f, 0.0f, 2.2f},
      {1.0f, 2.0f, 3.0f},     // all positive: the range starts at 0
      {-4.0f, -0.5f, -1.0f},  // all negative: the range ends at 0
      {0.0f, 0.0f},
      {1.0f, std::numeric_limits<float>::quiet_NaN(), -1.0f,
       std::numeric_limits<float>::infinity()},
  };
  std::vector<float> wide(301);
  for (float& v : wide) v = rng.uniform(-7.0f, 3.0f);
  rows.push_back(wide);
  for (const std::vector<float>& x : rows) {
    std::vector<uint8_t> q(x.size());
    const RowQuant rq = quantize_row(x.data(), static_cast<int64_t>(x.size()), q.data());
    float lo = 0, hi = 0;
    for (float v : x) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    if (hi == lo) {
      EXPECT_EQ(rq.scale, 1.0f);
      EXPECT_EQ(rq.zp, 0);
    } else {
      EXPECT_EQ(rq.scale, (hi - lo) / 255.0f);
    }
    ASSERT_GE(rq.zp, 0);
    ASSERT_LE(rq.zp, 255);
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::isnan(x[i]) || x[i] == 0.0f) {
        EXPECT_EQ(q[i], rq.zp) << "NaN and 0 are the zero point";
      } else if (std::isinf(x[i])) {
        EXPECT_EQ(q[i], 255) << "+inf saturates";
      } else {
        EXPECT_LE(std::fabs((q[i] - rq.zp) * rq.scale - x[i]), rq.scale * 0.5001f) << x[i];
      }
    }
  }
}

TEST(DynamicInt8Gemm, FastEqualsReferenceAndTheExactSums) {
  struct Shape3 {
    int64_t rows, k, m;
  };
  Rng rng(5);
  for (const Shape3 s : std::vector<Shape3>{{1, 1, 1},
                                            {16, 4, 4},
                                            {17, 5, 3},
                                            {64, 64, 9},
                                            {100, 33, 7},
                                            {512, 128, 5},
                                            {384, 64, 13},
                                            {80, 20, 2}}) {
    SCOPED_TRACE(std::to_string(s.rows) + " rows, k " + std::to_string(s.k) + ", m " +
                 std::to_string(s.m));
    std::vector<int8_t> w(static_cast<size_t>(s.rows * s.k));
    for (int8_t& v : w) v = static_cast<int8_t>(static_cast<int>(rng.below(255)) - 127);
    std::vector<float> sw(static_cast<size_t>(s.rows)), bias(sw.size()), x(s.m * s.k);
    for (float& v : sw) v = rng.uniform(1e-3f, 1e-2f);
    for (float& v : bias) v = rng.uniform(-1.0f, 1.0f);
    for (float& v : x) v = rng.uniform(-2.0f, 3.0f);
    std::fill(x.begin(), x.begin() + s.k, 0.0f);  // a row of zeros
    for (bool with_bias : {true, false}) {
      const float* b = with_bias ? bias.data() : nullptr;
      std::vector<float> ref(s.m * s.rows), fast(ref.size());
      DynamicInt8Gemm r(s.rows, s.k, false), f(s.rows, s.k, true);
      r.prepare(w.data());
      f.prepare(w.data());
      r.run(x.data(), s.m, sw.data(), b, ref.data());
      f.run(x.data(), s.m, sw.data(), b, fast.data());
      std::vector<uint8_t> q(s.k);
      for (int64_t i = 0; i < s.m; ++i) {
        const RowQuant rq = quantize_row(x.data() + i * s.k, s.k, q.data());
        for (int64_t o = 0; o < s.rows; ++o) {
          int64_t acc = 0;
          for (int64_t k = 0; k < s.k; ++k) acc += (q[k] - rq.zp) * int64_t{w[o * s.k + k]};
          const float want = static_cast<float>(acc) * (rq.scale * sw[o]) + (b ? b[o] : 0.0f);
          const size_t at = static_cast<size_t>(i * s.rows + o);
          ASSERT_TRUE(same_bits(ref[at], want)) << "reference row " << i << " out " << o;
          ASSERT_TRUE(same_bits(fast[at], want)) << "fast row " << i << " out " << o;
        }
      }
    }
  }
}

// Weights rewritten in place between runs are packed again (no constant promise).
TEST(DynamicInt8Gemm, FollowsWeightsChangedInPlace) {
  std::vector<int8_t> w(20 * 8, 1);
  std::vector<float> sw(20, 1.0f), x(8, 1.0f), y(20);
  DynamicInt8Gemm g(20, 8, true);
  g.prepare(w.data());
  g.run(x.data(), 1, sw.data(), nullptr, y.data());
  const float before = y[3];
  w[3 * 8] = 9;
  g.prepare(w.data());
  g.run(x.data(), 1, sw.data(), nullptr, y.data());
  EXPECT_GT(y[3], before);
}

struct Int8Case {
  int64_t n, t, f, h;
  bool bidirectional;
  std::vector<int64_t> lengths;
};

const std::vector<Int8Case> kCases = {
    {1, 1, 1, 1, false, {}},
    {1, 5, 3, 4, false, {}},
    {2, 1, 7, 3, true, {}},
    {3, 6, 5, 4, false, {6, 4, 1}},
    {5, 7, 3, 5, true, {2, 7, 1, 5, 3}},
    {17, 4, 9, 11, false, {}},
    {4, 12, 64, 128, false, {}},
    {9, 6, 16, 24, true, {6, 1, 5, 6, 2, 3, 6, 4, 1}},
};

int64_t gates(OpKind op) { return op == OpKind::kLstm ? 4 : 3; }

// The float inputs of a case, and the same with int8 weights: inputs 1 and 2 as codes, 6 and 7
// their scales (input 5, the lengths, absent when the case has none).
struct Inputs {
  std::vector<Tensor> f32, int8;
};
Inputs inputs_of(OpKind op, const Int8Case& c, Rng& rng) {
  const int64_t rows = (c.bidirectional ? 2 : 1) * gates(op) * c.h;
  Inputs in;
  // PyTorch's initialization, U(-1/sqrt(H), 1/sqrt(H)) (larger weights make a random network
  // chaotic, where any rounding grows without bound).
  const float a = 1.0f / std::sqrt(static_cast<float>(c.h));
  in.f32 = {random_tensor({c.n, c.t, c.f}, rng), random_tensor({rows, c.f}, rng, -a, a),
            random_tensor({rows, c.h}, rng, -a, a), random_tensor({rows}, rng, -a, a),
            random_tensor({rows}, rng, -a, a)};
  const RowCodes ih = quantize_rows(in.f32[1]), hh = quantize_rows(in.f32[2]);
  in.f32[1] = dequantized(ih);  // the float op runs on what the int8 op's weights stand for
  in.f32[2] = dequantized(hh);
  if (!c.lengths.empty()) in.f32.push_back(dense::labels(c.lengths));
  in.int8 = in.f32;
  in.int8[1] = ih.q;
  in.int8[2] = hh.q;
  in.int8.resize(8);
  in.int8[6] = ih.scale;
  in.int8[7] = hh.scale;
  return in;
}

Node node_of(OpKind op, const Int8Case& c) {
  return dense::node(op, {{"hidden_size", c.h}, {"bidirectional", int64_t{c.bidirectional}}});
}

double max_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    m = std::max(m, static_cast<double>(std::fabs(a.f32()[i] - b.f32()[i])));
  }
  return m;
}

class RecurrentInt8 : public ::testing::TestWithParam<OpKind> {};

// The kernels share the int8 products bit for bit; they differ only in the cell's activations
// (libm in the reference, recurrent_math.h's in the fast kernel), by float rounding.
TEST_P(RecurrentInt8, FastMatchesReference) {
  Rng rng(61);
  for (const Int8Case& c : kCases) {
    const Inputs in = inputs_of(GetParam(), c, rng);
    const Node n = node_of(GetParam(), c);
    const rnn::Run ref = rnn::run(n, in.int8, KernelChoice::kReference);
    const rnn::Run fast = rnn::run(n, in.int8, KernelChoice::kFast);
    for (int o = 0; o < 2; ++o) {
      EXPECT_LT(max_diff(fast.outputs[o], ref.outputs[o]), 1e-5)
          << "N=" << c.n << " T=" << c.t << " F=" << c.f << " H=" << c.h << " output " << o;
    }
  }
}

// Quantizing each input row and hidden state to 8 bits moves the outputs a little from the f32
// op on the same (dequantized) weights: by at most 0.002 here (h is in (-1, 1)).
TEST_P(RecurrentInt8, CloseToTheFloatOp) {
  Rng rng(62);
  for (const Int8Case& c : kCases) {
    const Inputs in = inputs_of(GetParam(), c, rng);
    const Node n = node_of(GetParam(), c);
    const rnn::Run f32 = rnn::run(n, in.f32, KernelChoice::kReference);
    const rnn::Run int8 = rnn::run(n, in.int8, KernelChoice::kFast);
    const double d = max_diff(int8.outputs[0], f32.outputs[0]);
    EXPECT_LT(d, 0.01) << "N=" << c.n << " T=" << c.t << " F=" << c.f << " H=" << c.h;
    EXPECT_GT(d, 0.0) << "the products were not quantized";
  }
}

TEST_P(RecurrentInt8, HasNoGradient) {
  Rng rng(63);
  const Int8Case c{2, 3, 4, 5, false, {}};
  const Inputs in = inputs_of(GetParam(), c, rng);
  Tensor dy = random_tensor({c.n, c.t, c.h}, rng);
  for (KernelChoice k : {KernelChoice::kReference, KernelChoice::kFast}) {
    try {
      rnn::run(node_of(GetParam(), c), in.int8, k, {dy, Tensor()});
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("int8 weights"), std::string::npos) << e.what();
    }
  }
}

TEST_P(RecurrentInt8, BadInputsFailClearly) {
  Rng rng(64);
  const Int8Case c{2, 3, 4, 5, false, {}};
  const Node n = node_of(GetParam(), c);
  auto expect_error = [&](std::vector<Tensor> in, const std::string& what) {
    try {
      rnn::run(n, in, KernelChoice::kFast);
      ADD_FAILURE() << "expected an error: " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  const Inputs in = inputs_of(GetParam(), c, rng);
  std::vector<Tensor> one_scale = in.int8;
  one_scale.resize(7);
  expect_error(one_scale, "w_hh_scale");
  std::vector<Tensor> float_weights = in.int8;
  float_weights[1] = in.f32[1];
  expect_error(float_weights, "expected i8");
  std::vector<Tensor> short_scale = in.int8;
  short_scale[7] = Tensor(DType::kF32, {3});
  expect_error(short_scale, "w_hh_scale");
  std::vector<Tensor> f64_input = in.int8;
  f64_input[0] = to_dtype(in.int8[0], DType::kF64);
  expect_error(f64_input, "f32 input");
}

INSTANTIATE_TEST_SUITE_P(Ops, RecurrentInt8, ::testing::Values(OpKind::kLstm, OpKind::kGru),
                         [](const auto& info) { return std::string(op_def(info.param).name); });

}  // namespace
}  // namespace minnow::testing
