// MultiHeadAttention: forward and all gradients against PyTorch nn.MultiheadAttention (golden
// .npy files from tests/golden/gen_attention.py), masking (a padded sample's valid positions
// equal the unpadded run on the truncated sequence), fast vs reference over a table of shapes,
// finite-difference gradients, MACs, and bad input.
#include <gtest/gtest.h>

#include <string>

#include "dense_test_util.h"
#include "io/npy.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using dense::expect_values;
using dense::info;

Node mha_node(int64_t heads) {
  return dense::node(OpKind::kMultiHeadAttention, {{"num_heads", heads}});
}

Tensor lengths_tensor(const std::vector<int64_t>& v) {
  Tensor t(DType::kI64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

// x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias (+ lengths when given).
std::vector<Tensor> mha_inputs(int64_t n, int64_t t, int64_t d, Rng& rng,
                               const std::vector<int64_t>& lengths = {}) {
  std::vector<Tensor> in = {
      random_tensor({n, t, d}, rng), random_tensor({3 * d, d}, rng, -0.6f, 0.6f),
      random_tensor({3 * d}, rng, -0.2f, 0.2f), random_tensor({d, d}, rng, -0.6f, 0.6f),
      random_tensor({d}, rng, -0.2f, 0.2f)};
  if (!lengths.empty()) in.push_back(lengths_tensor(lengths));
  return in;
}

struct MhaCase {
  int64_t n, t, d, h;
  std::vector<int64_t> lengths;  // empty: no lengths input
};

const std::vector<MhaCase> kCases = {
    {1, 1, 4, 1, {}},         // batch 1, one position
    {1, 4, 6, 3, {}},         // batch 1, dh = 2
    {2, 5, 8, 2, {5, 3}},     // the golden case's shape
    {3, 7, 6, 2, {7, 1, 4}},  // odd T, a sample with a single valid key
    {2, 3, 5, 5, {2, 3}},     // dh = 1
    {1, 6, 9, 3, {4}},        // batch 1 with padding
};

std::string label(const MhaCase& m) {
  return "mha N=" + std::to_string(m.n) + " T=" + std::to_string(m.t) +
         " D=" + std::to_string(m.d) + " h=" + std::to_string(m.h) +
         (m.lengths.empty() ? "" : " with lengths");
}

TEST(MultiHeadAttention, FastMatchesReference) {
  Rng rng(71);
  std::vector<MhaCase> cases = kCases;
  cases.push_back({8, 32, 64, 4, {32, 1, 17, 32, 9, 30, 31, 2}});  // threaded core, Sgemm prims
  cases.push_back({4, 50, 48, 6, {}});
  for (const MhaCase& m : cases) {
    OpCase c;
    c.label = label(m);
    c.node = mha_node(m.h);
    c.inputs = mha_inputs(m.n, m.t, m.d, rng, m.lengths);
    expect_fast_matches_reference(c);
  }
}

TEST(MultiHeadAttention, GradientMatchesFiniteDifference) {
  Rng rng(72);
  for (const MhaCase& m : kCases) {
    OpCase c;
    c.label = label(m);
    c.node = mha_node(m.h);
    c.inputs = mha_inputs(m.n, m.t, m.d, rng, m.lengths);
    c.fd_tolerance = 1e-5;
    expect_gradient_matches_finite_difference(c, 40);
  }
}

// Keys past a sample's length are invisible: its first L outputs equal an unpadded run on the
// first L positions, whatever the padded positions hold.
TEST(MultiHeadAttention, MaskedKeysDoNotMatter) {
  Rng rng(73);
  const int64_t t = 6, d = 8, len = 4;
  std::vector<Tensor> padded = mha_inputs(1, t, d, rng, {len});
  std::vector<Tensor> cut = {Tensor(DType::kF32, {1, len, d})};
  for (int64_t i = 0; i < len * d; ++i) cut[0].f32()[i] = padded[0].f32()[i];
  for (int i = 1; i <= 4; ++i) cut.push_back(padded[i]);
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run a = dense::run(mha_node(2), padded, dense::opts().kernel(choice));
    for (int64_t i = len * d; i < t * d; ++i) padded[0].f32()[i] += 100.0f;  // change padding
    dense::Run b = dense::run(mha_node(2), padded, dense::opts().kernel(choice));
    dense::Run ref = dense::run(mha_node(2), cut, dense::opts().kernel(choice));
    std::vector<double> want = dense::values_of(ref.outputs[0]);
    std::vector<double> got_a = dense::values_of(a.outputs[0]);
    std::vector<double> got_b = dense::values_of(b.outputs[0]);
    for (int64_t i = 0; i < len * d; ++i) {
      EXPECT_NEAR(got_a[i], want[i], 1e-5) << "element " << i;
      EXPECT_NEAR(got_b[i], want[i], 1e-5) << "element " << i;
    }
  }
}

std::string golden(const std::string& name) {
  return std::string(MINNOW_SOURCE_DIR) + "/tests/golden/attention/" + name + ".npy";
}

Tensor golden_as(const std::string& name, DType dtype) {
  return to_dtype(io::read_npy(golden(name)), dtype);
}

// tests/golden/gen_attention.py: nn.MultiheadAttention(8, 2, batch_first=True), float64,
// x [2,5,8], sample 1 padded to length 3; gradients of sum(out * r).
TEST(MultiHeadAttention, MatchesPyTorchGolden) {
  struct Mode {
    KernelChoice choice;
    DType dtype;
    const char* name;
  };
  for (Mode mode : {Mode{KernelChoice::kReference, DType::kF64, "reference f64"},
                    Mode{KernelChoice::kReference, DType::kF32, "reference f32"},
                    Mode{KernelChoice::kFast, DType::kF32, "fast f32"}}) {
    SCOPED_TRACE(mode.name);
    std::vector<Tensor> in;
    for (const char* name :
         {"x", "in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias"}) {
      in.push_back(golden_as(name, mode.dtype));
    }
    Tensor lengths = io::read_npy(golden("lengths"));
    ASSERT_EQ(lengths.dtype(), DType::kI64);
    in.push_back(lengths);
    dense::Run r = dense::run(
        mha_node(2), in, dense::opts().kernel(mode.choice).grads({golden_as("r", mode.dtype)}));
    ASSERT_EQ(r.outputs[0].shape(), (Shape{2, 5, 8}));
    expect_values(r.outputs[0], dense::values_of(io::read_npy(golden("out"))), 1e-4, "out");
    const char* grads[] = {"grad_x", "grad_in_proj_weight", "grad_in_proj_bias",
                           "grad_out_proj_weight", "grad_out_proj_bias"};
    for (int i = 0; i < 5; ++i) {
      expect_values(r.grads[i], dense::values_of(io::read_npy(golden(grads[i]))), 1e-4, grads[i]);
    }
    EXPECT_FALSE(r.grads[5].defined()) << "lengths get no gradient";
  }
}

TEST(MultiHeadAttention, MissingOutputGradientGivesZeros) {
  Rng rng(74);
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r = dense::run(mha_node(2), mha_inputs(2, 3, 4, rng, {3, 2}),
                              dense::opts().kernel(choice).grads({Tensor()}));
    for (int i = 0; i < 5; ++i) {
      for (double v : dense::values_of(r.grads[i])) EXPECT_EQ(v, 0.0);
    }
  }
}

TEST(MultiHeadAttention, InferShapesAndMacs) {
  Node n = mha_node(4);
  std::vector<ValueInfo> in = {
      info({kDynamic, 10, 16}), info({48, 16}), info({48}),
      info({16, 16}),           info({16}),     info({kDynamic}, DType::kI64)};
  std::vector<ValueInfo> out = dense::infer(n, in);
  EXPECT_EQ(out[0].shape, (Shape{kDynamic, 10, 16}));
  in.pop_back();
  EXPECT_EQ(dense::infer(n, in)[0].shape, (Shape{kDynamic, 10, 16}));
  // Per sample: in-projection 10*48*16, scores 4 heads * 10*10*4, weighted values the same,
  // out-projection 10*16*16.
  InputInfos ptrs;
  for (const ValueInfo& v : in) ptrs.push_back(&v);
  EXPECT_EQ(op_def(OpKind::kMultiHeadAttention).macs(n, ptrs, out),
            10 * 48 * 16 + 2 * 4 * 10 * 10 * 4 + 10 * 16 * 16);
}

TEST(MultiHeadAttention, BadInputIsAnError) {
  auto good = [] {
    return std::vector<ValueInfo>{info({2, 5, 8}), info({24, 8}), info({24}), info({8, 8}),
                                  info({8})};
  };
  EXPECT_NO_THROW(dense::infer(mha_node(2), good()));
  EXPECT_THROW(dense::infer(mha_node(3), good()), Error);  // 8 % 3 != 0
  EXPECT_THROW(dense::infer(mha_node(0), good()), Error);
  EXPECT_THROW(dense::infer(dense::node(OpKind::kMultiHeadAttention), good()), Error);
  for (size_t i = 0; i < 5; ++i) {
    std::vector<ValueInfo> in = good();
    in[i].shape.back() += 1;
    EXPECT_THROW(dense::infer(mha_node(2), in), Error) << "input " << i;
    in = good();
    in[i].dtype = DType::kF64;
    EXPECT_THROW(dense::infer(mha_node(2), in), Error) << "input " << i << " dtype";
  }
  std::vector<ValueInfo> rank2 = good();
  rank2[0].shape = {5, 8};
  EXPECT_THROW(dense::infer(mha_node(2), rank2), Error);
  std::vector<ValueInfo> with_len = good();
  with_len.push_back(info({2}));  // f32 lengths
  EXPECT_THROW(dense::infer(mha_node(2), with_len), Error);
  with_len.back() = info({3}, DType::kI64);  // wrong batch
  EXPECT_THROW(dense::infer(mha_node(2), with_len), Error);
  with_len.back() = info({2, 1}, DType::kI64);
  EXPECT_THROW(dense::infer(mha_node(2), with_len), Error);
  // Lengths outside [1, T] at run time: no valid key, or more keys than positions.
  Rng rng(75);
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    for (int64_t bad : {int64_t{0}, int64_t{-3}, int64_t{6}}) {
      try {
        dense::run(mha_node(2), mha_inputs(2, 5, 8, rng, {5, bad}), dense::opts().kernel(choice));
        ADD_FAILURE() << "length " << bad << " was accepted";
      } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("node_under_test"), std::string::npos) << msg;
        EXPECT_NE(msg.find("lengths[1] = " + std::to_string(bad)), std::string::npos) << msg;
      }
    }
  }
}

}  // namespace
}  // namespace minnow::testing
