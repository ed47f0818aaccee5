// Embedding (reference kernel only; see src/ops/embedding.cpp): gathered rows by hand, padding_idx,
// the scatter-add gradient by hand and against independent row sums, finite differences, and bad
// input (shapes, attributes, out-of-range indices at run time).
#include <gtest/gtest.h>

#include "dense_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using dense::expect_values;
using dense::info;
using dense::tensor;

Node emb_node(int64_t padding_idx = -1) {
  return dense::node(OpKind::kEmbedding, {{"padding_idx", padding_idx}});
}

Tensor indices(Shape shape, const std::vector<int64_t>& v) {
  Tensor t(DType::kI64, std::move(shape));
  EXPECT_EQ(static_cast<size_t>(t.numel()), v.size());
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

Tensor random_indices(const Shape& shape, int64_t vocab, Rng& rng) {
  return random_labels(shape_numel(shape), vocab, rng).reshaped(shape);
}

struct EmbCase {
  Shape idx;
  int64_t vocab, dim, pad;
};

const std::vector<EmbCase> kCases = {
    {{1}, 1, 1, -1},        // batch 1, one-row table
    {{3, 5}, 7, 5, -1},     // odd sizes, repeated indices
    {{2, 3, 4}, 11, 3, 2},  // rank-3 indices, padding row
    {{1, 9}, 4, 17, 0},     // batch 1, many repeats
    {{6}, 13, 33, 12},      // padding row is the last row
    {{5, 2}, 100, 8, -1},   // most rows unused
};

TEST(Embedding, GathersRows) {
  // weight row r = [10r, 10r+1]
  Tensor w = tensor({3, 2}, {0, 1, 10, 11, 20, 21});
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r =
        dense::run(emb_node(), {indices({2, 2}, {2, 0, 1, 2}), w}, dense::opts().kernel(choice));
    EXPECT_EQ(r.outputs[0].shape(), (Shape{2, 2, 2}));
    expect_values(r.outputs[0], {20, 21, 0, 1, 10, 11, 20, 21}, 0, "y");
  }
}

TEST(Embedding, GradientIsScatterAddAndSkipsPaddingRow) {
  Tensor w = tensor({4, 2}, {0, 0, 0, 0, 0, 0, 0, 0});
  Tensor dy = tensor({5, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    // Row 1 is read three times, rows 0 and 3 (padding) once, row 2 never.
    dense::Run r = dense::run(emb_node(3), {indices({5}, {1, 3, 1, 0, 1}), w},
                              dense::opts().kernel(choice).grads({dy}));
    EXPECT_FALSE(r.grads[0].defined()) << "indices get no gradient";
    expect_values(r.grads[1], {7, 8, 1 + 5 + 9, 2 + 6 + 10, 0, 0, 0, 0}, 0, "dweight");
    // Without padding_idx row 3 gets its gradient.
    dense::Run q = dense::run(emb_node(), {indices({5}, {1, 3, 1, 0, 1}), w},
                              dense::opts().kernel(choice).grads({dy}));
    expect_values(q.grads[1], {7, 8, 15, 18, 0, 0, 3, 4}, 0, "dweight no padding");
  }
}

TEST(Embedding, PaddingRowIsStillReadForward) {
  // PyTorch returns the padding row's contents (zero only because it is initialized so).
  Tensor w = tensor({2, 1}, {5, 7});
  dense::Run r = dense::run(emb_node(0), {indices({2}, {0, 1}), w});
  expect_values(r.outputs[0], {5, 7}, 0, "y");
}

// A larger case against an independent sum: every row's gradient is the sum of the output
// gradients of the tokens that read it, in double; run twice to check the result repeats exactly.
TEST(Embedding, LargeScatterAddMatchesRowSums) {
  Rng rng(52);
  const Shape idx = {64, 50};
  const int64_t vocab = 300, dim = 33, pad = 7;
  Tensor ids = random_indices(idx, vocab, rng);
  Tensor w = random_tensor({vocab, dim}, rng);
  Tensor dy = random_tensor({64, 50, dim}, rng);
  dense::Run a = dense::run(emb_node(pad), {ids, w}, dense::opts().grads({dy}));
  dense::Run b =
      dense::run(emb_node(pad), {ids, w}, dense::opts().kernel(KernelChoice::kFast).grads({dy}));
  std::vector<double> want(vocab * dim, 0.0);
  const int64_t* id = ids.data<int64_t>();
  for (int64_t t = 0; t < ids.numel(); ++t) {
    if (id[t] == pad) continue;
    for (int64_t j = 0; j < dim; ++j) want[id[t] * dim + j] += dy.f32()[t * dim + j];
  }
  expect_values(a.grads[1], want, 1e-5, "dweight");
  EXPECT_EQ(dense::values_of(a.grads[1]), dense::values_of(b.grads[1]));
  // And the forward rows.
  for (int64_t t = 0; t < ids.numel(); t += 97) {
    for (int64_t j = 0; j < dim; ++j) {
      EXPECT_EQ(a.outputs[0].f32()[t * dim + j], w.f32()[id[t] * dim + j]);
    }
  }
}

TEST(Embedding, GradientMatchesFiniteDifference) {
  Rng rng(53);
  for (const EmbCase& e : kCases) {
    OpCase c;
    c.label = "embedding idx " + shape_str(e.idx) + " pad=" + std::to_string(e.pad);
    c.node = emb_node(e.pad);
    c.inputs = {random_indices(e.idx, e.vocab, rng), random_tensor({e.vocab, e.dim}, rng)};
    // The padding row changes the output but by design gets no gradient (PyTorch semantics,
    // checked by hand above), so finite differences run on indices that avoid it.
    int64_t* ids = c.inputs[0].data<int64_t>();
    for (int64_t i = 0; i < c.inputs[0].numel(); ++i) {
      if (ids[i] == e.pad) ids[i] = (e.pad + 1) % e.vocab;
    }
    expect_gradient_matches_finite_difference(c);
  }
}

TEST(Embedding, MissingOutputGradientGivesZeros) {
  Tensor w = tensor({3, 2}, {1, 2, 3, 4, 5, 6});
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    dense::Run r = dense::run(emb_node(), {indices({2}, {0, 2}), w},
                              dense::opts().kernel(choice).grads({Tensor()}));
    expect_values(r.grads[1], {0, 0, 0, 0, 0, 0}, 0, "dweight");
  }
}

TEST(Embedding, InferShapes) {
  Node n = emb_node();
  EXPECT_EQ(dense::infer(n, {info({kDynamic, 7}, DType::kI64), info({100, 16})})[0].shape,
            (Shape{kDynamic, 7, 16}));
  EXPECT_EQ(dense::infer(n, {info({kDynamic}, DType::kI64), info({5, 3})})[0].shape,
            (Shape{kDynamic, 3}));
  std::vector<ValueInfo> out =
      dense::infer(n, {info({2, 3, 4}, DType::kI64), info({5, 3}, DType::kF64)});
  EXPECT_EQ(out[0].shape, (Shape{2, 3, 4, 3}));
  EXPECT_EQ(out[0].dtype, DType::kF64);
}

TEST(Embedding, BadInputIsAnError) {
  Node n = emb_node();
  const ValueInfo ids = info({kDynamic, 4}, DType::kI64);
  EXPECT_THROW(dense::infer(n, {info({2, 4}), info({10, 3})}), Error);  // f32 indices
  EXPECT_THROW(dense::infer(n, {ids, info({30})}), Error);              // weight rank 1
  EXPECT_THROW(dense::infer(n, {ids, info({10, 3}, DType::kI64)}), Error);
  EXPECT_THROW(dense::infer(n, {ids, info({0, 3})}), Error);
  EXPECT_THROW(dense::infer(emb_node(10), {ids, info({10, 3})}), Error);  // padding_idx >= V
  EXPECT_THROW(dense::infer(emb_node(-2), {ids, info({10, 3})}), Error);
  Node bad_attr = emb_node();
  bad_attr.attrs.set("padding_idx", 1.5);
  EXPECT_THROW(dense::infer(bad_attr, {ids, info({10, 3})}), Error);
}

TEST(Embedding, OutOfRangeIndexNamesNodeAndIndex) {
  Tensor w = tensor({3, 2}, {1, 2, 3, 4, 5, 6});
  for (KernelChoice choice : {KernelChoice::kReference, KernelChoice::kFast}) {
    for (int64_t bad : {int64_t{3}, int64_t{-1}, int64_t{1} << 40}) {
      try {
        dense::run(emb_node(), {indices({2, 2}, {0, 1, bad, 2}), w}, dense::opts().kernel(choice));
        ADD_FAILURE() << "index " << bad << " was accepted";
      } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("node_under_test"), std::string::npos) << msg;
        EXPECT_NE(msg.find("index " + std::to_string(bad)), std::string::npos) << msg;
      }
    }
  }
}

}  // namespace
}  // namespace minnow::testing
