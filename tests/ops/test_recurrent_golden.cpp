// LSTM and GRU against PyTorch 1.13 nn.LSTM / nn.GRU (batch_first, pack_padded_sequence for
// lengths): outputs and the gradients of L = sum(y * R1) + sum(h_last * R2) for every input.
// The files come from tests/golden/gen_recurrent.py (float64); both kernels are checked, the
// reference in f64 and f32, the fast kernel in f32.
#include <gtest/gtest.h>

#include <string>

#include "dense_test_util.h"
#include "io/npy.h"
#include "op_harness.h"
#include "recurrent_test_util.h"

namespace minnow::testing {
namespace {

struct GoldenCase {
  const char* dir;
  OpKind op;
  bool bidirectional;
  bool lengths;
};

const GoldenCase kCases[] = {
    {"lstm_uni_len", OpKind::kLstm, false, true}, {"lstm_bi_len", OpKind::kLstm, true, true},
    {"lstm_bi_full", OpKind::kLstm, true, false}, {"gru_uni_len", OpKind::kGru, false, true},
    {"gru_bi_len", OpKind::kGru, true, true},     {"gru_bi_full", OpKind::kGru, true, false},
};

Tensor load(const GoldenCase& c, const std::string& name) {
  return io::read_npy(std::string(MINNOW_SOURCE_DIR) + "/tests/golden/recurrent/" + c.dir + "/" +
                      name + ".npy");
}

void expect_near(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  std::vector<double> g = dense::values_of(got), w = dense::values_of(want);
  int bad = 0;
  for (size_t i = 0; i < w.size() && bad < 5; ++i) {
    if (!(std::abs(g[i] - w[i]) <= tol)) {
      ++bad;
      ADD_FAILURE() << what << " element " << i << ": " << g[i] << " vs PyTorch " << w[i];
    }
  }
}

TEST(RecurrentGolden, MatchesPyTorch) {
  const char* const kNames[] = {"x", "w_ih", "w_hh", "b_ih", "b_hh"};
  struct Mode {
    const char* label;
    KernelChoice choice;
    DType dtype;
  };
  const Mode kModes[] = {{"reference f64", KernelChoice::kReference, DType::kF64},
                         {"reference f32", KernelChoice::kReference, DType::kF32},
                         {"fast f32", KernelChoice::kFast, DType::kF32}};
  for (const GoldenCase& c : kCases) {
    const Tensor x = load(c, "x");
    const int64_t dirs = c.bidirectional ? 2 : 1;
    const int64_t hidden = load(c, "h_last").shape()[1] / dirs;
    Node n =
        dense::node(c.op, {{"hidden_size", hidden}, {"bidirectional", int64_t{c.bidirectional}}});
    for (const Mode& m : kModes) {
      SCOPED_TRACE(std::string(c.dir) + " " + m.label);
      std::vector<Tensor> in;
      for (const char* name : kNames) in.push_back(to_dtype(load(c, name), m.dtype));
      if (c.lengths) in.push_back(load(c, "lengths"));
      rnn::Run r = rnn::run(n, in, m.choice,
                            {to_dtype(load(c, "r1"), m.dtype), to_dtype(load(c, "r2"), m.dtype)});
      expect_near(r.outputs[0], load(c, "y"), 1e-4, "y");
      expect_near(r.outputs[1], load(c, "h_last"), 1e-4, "h_last");
      for (size_t i = 0; i < 5; ++i) {
        expect_near(r.grads[i], load(c, std::string("d") + kNames[i]), 1e-4,
                    std::string("d") + kNames[i]);
      }
    }
  }
}

}  // namespace
}  // namespace minnow::testing
