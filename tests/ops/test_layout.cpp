// Concat, Split, Reshape, Flatten, Transpose: values against naive index oracles, gradients by
// finite differences, integer dtypes, symbolic-batch inference and bad attributes.
#include <gtest/gtest.h>

#include "elementwise_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

const int64_t N = kDynamic;

Node concat(int64_t axis) { return make_node(OpKind::kConcat, {{"axis", axis}}); }
Node split(int64_t axis, std::vector<int64_t> sizes = {}) {
  Node n = make_node(OpKind::kSplit, {{"axis", axis}});
  if (!sizes.empty()) n.attrs.set("split", sizes);
  return n;
}
Node reshape(std::vector<int64_t> shape) { return make_node(OpKind::kReshape, {{"shape", shape}}); }
Node flatten(int64_t axis) { return make_node(OpKind::kFlatten, {{"axis", axis}}); }
Node transpose(std::vector<int64_t> perm) {
  return make_node(OpKind::kTranspose, {{"perm", perm}});
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
  return st;
}

// ---- Concat / Split

struct ConcatCase {
  std::vector<Shape> shapes;
  int64_t axis;
};

const std::vector<ConcatCase> kConcatCases = {
    {{{2, 3}, {2, 5}}, 1},
    {{{2, 3}, {4, 3}}, 0},
    {{{1, 3, 4, 4}, {1, 2, 4, 4}, {1, 1, 4, 4}}, 1},
    {{{2, 3, 4, 1}, {2, 3, 4, 5}}, -1},
    {{{3, 2, 5}, {3, 1, 5}}, -2},
    {{{7}}, 0},
};

// Element of the concatenation at flat output index, read from the inputs by coordinates.
std::vector<double> naive_concat(const std::vector<Tensor>& xs, int axis, const Shape& out) {
  std::vector<double> y;
  std::vector<std::vector<double>> vals;
  for (const Tensor& x : xs) vals.push_back(values_of(x));
  std::vector<int64_t> idx(out.size(), 0);
  for (int64_t i = 0; i < shape_numel(out); ++i) {
    int64_t a = idx[axis];
    size_t k = 0;
    while (a >= xs[k].shape()[axis]) a -= xs[k++].shape()[axis];
    std::vector<int64_t> st = strides_of(xs[k].shape());
    int64_t off = 0;
    for (size_t d = 0; d < out.size(); ++d)
      off += (static_cast<int>(d) == axis ? a : idx[d]) * st[d];
    y.push_back(vals[k][off]);
    for (size_t d = out.size(); d-- > 0;) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
  return y;
}

TEST(Concat, MatchesNaiveAndFiniteDifference) {
  Rng rng(31);
  for (const ConcatCase& cc : kConcatCases) {
    OpCase c;
    c.label = "concat axis " + std::to_string(cc.axis);
    c.node = concat(cc.axis);
    for (const Shape& s : cc.shapes) c.inputs.push_back(random_tensor(s, rng));
    const Shape out = infer_shape(c.node, cc.shapes);
    const int axis = static_cast<int>(cc.axis < 0 ? cc.axis + out.size() : cc.axis);
    expect_values(run_reference(c)[0], naive_concat(c.inputs, axis, out), 0, c.label);
    expect_gradient_matches_finite_difference(c, 30);
  }
}

TEST(Split, RoundTripsThroughConcatAndMatchesFiniteDifference) {
  struct SplitCase {
    Shape shape;
    int64_t axis;
    std::vector<int64_t> sizes;
    int outputs;
  };
  const std::vector<SplitCase> cases = {
      {{2, 7}, 1, {3, 4}, 2},    {{5, 4}, 0, {}, 5},    {{2, 6, 3, 3}, -3, {1, 2, 3}, 3},
      {{3, 4, 5}, 2, {0, 5}, 2}, {{1, 8, 3}, 1, {}, 4}, {{9}, -1, {2, 2, 5}, 3},
  };
  Rng rng(32);
  for (const SplitCase& sc : cases) {
    OpCase c;
    c.label = "split " + shape_str(sc.shape) + " axis " + std::to_string(sc.axis);
    c.node = split(sc.axis, sc.sizes);
    c.num_outputs = sc.outputs;
    c.inputs = {random_tensor(sc.shape, rng)};
    std::vector<Tensor> parts = run_reference(c);
    ASSERT_EQ(parts.size(), static_cast<size_t>(sc.outputs));
    if (!sc.sizes.empty()) {
      const int axis = static_cast<int>(sc.axis < 0 ? sc.axis + sc.shape.size() : sc.axis);
      for (size_t i = 0; i < parts.size(); ++i) EXPECT_EQ(parts[i].dim(axis), sc.sizes[i]);
    }
    KernelRun back = run_kernel(concat(sc.axis), parts);
    expect_values(back.outputs[0], values_of(c.inputs[0]), 0, c.label + " round trip");
    expect_gradient_matches_finite_difference(c, 30);
  }
}

TEST(Split, AbsentOutputGradientsAreZero) {
  Tensor x = make_tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  KernelRun r = run_kernel(split(1, {1, 2}), {x}, {make_tensor({2, 1}, {7, 8}), Tensor()}, 2);
  expect_values(r.outputs[1], {2, 3, 5, 6}, 0, "second part");
  expect_values(r.grads[0], {7, 0, 0, 8, 0, 0}, 0, "grad");
}

TEST(Concat, WorksOnIntegerTensors) {
  Tensor a(DType::kI64, {2}), b(DType::kI64, {1});
  a.data<int64_t>()[0] = 5;
  a.data<int64_t>()[1] = -7;
  b.data<int64_t>()[0] = int64_t{1} << 40;
  Node n = concat(0);
  std::vector<ValueInfo> out = infer_outputs(n, {{2}, {1}}, 1, DType::kI64);
  ValueInfo ia{"x0", DType::kI64, {2}}, ib{"x1", DType::kI64, {1}};
  auto k = make_kernel(n, {&ia, &ib}, out, KernelChoice::kFast);
  Tensor y(DType::kI64, out[0].shape);
  Tensor* ins[] = {&a, &b};
  Tensor* outs[] = {&y};
  RunContext ctx;
  k->forward(ins, outs, ctx);
  EXPECT_EQ(y.data<int64_t>()[0], 5);
  EXPECT_EQ(y.data<int64_t>()[1], -7);
  EXPECT_EQ(y.data<int64_t>()[2], int64_t{1} << 40);
}

TEST(Concat, LargeTensorsUseParallelCopy) {
  Rng rng(33);
  std::vector<Tensor> xs = {random_tensor({64, 6, 28, 28}, rng),
                            random_tensor({64, 10, 28, 28}, rng)};
  KernelRun r = run_kernel(concat(1), xs, {random_tensor({64, 16, 28, 28}, rng)});
  expect_values(r.outputs[0], naive_concat(xs, 1, {64, 16, 28, 28}), 0, "concat");
  KernelRun s = run_kernel(split(1, {6, 10}), {r.outputs[0]}, {xs[0], xs[1]}, 2);
  expect_values(s.outputs[1], values_of(xs[1]), 0, "split");
  expect_values(s.grads[0], values_of(r.outputs[0]), 0, "split grad");
}

TEST(ConcatSplit, InferWithSymbolicBatch) {
  EXPECT_EQ(infer_shape(concat(1), {{N, 3, 4}, {N, 5, 4}}), (Shape{N, 8, 4}));
  EXPECT_EQ(infer_shape(concat(-1), {{N, 3}, {N, 2}, {N, 1}}), (Shape{N, 6}));
  EXPECT_EQ(infer_shape(concat(0), {{N, 3}}), (Shape{N, 3}));
  std::vector<ValueInfo> parts = infer_outputs(split(1), {{N, 6, 2}}, 3);
  for (const ValueInfo& p : parts) EXPECT_EQ(p.shape, (Shape{N, 2, 2}));
}

TEST(ConcatSplit, BadInputIsAnError) {
  EXPECT_THROW(infer_shape(concat(2), {{2, 3}, {2, 3}}), Error);
  EXPECT_THROW(infer_shape(concat(-3), {{2, 3}, {2, 3}}), Error);
  EXPECT_THROW(infer_shape(concat(1), {{2, 3}, {3, 3}}), Error);      // non-axis dim differs
  EXPECT_THROW(infer_shape(concat(1), {{2, 3}, {2, 3, 1}}), Error);   // rank differs
  EXPECT_THROW(infer_shape(concat(0), {{N, 3}, {N, 3}}), Error);      // 2N
  EXPECT_THROW(infer_shape(concat(0), {{}}), Error);                  // scalar
  EXPECT_THROW(infer_outputs(split(1, {2, 2}), {{2, 5}}, 2), Error);  // sizes do not sum
  EXPECT_THROW(infer_outputs(split(1, {2, 3}), {{2, 5}}, 3), Error);  // count != outputs
  EXPECT_THROW(infer_outputs(split(1, {-1, 6}), {{2, 5}}, 2), Error);
  EXPECT_THROW(infer_outputs(split(1), {{2, 5}}, 2), Error);  // 5 into 2 equal parts
  EXPECT_THROW(infer_outputs(split(0), {{N, 4}}, 2), Error);  // symbolic batch
  EXPECT_THROW(infer_outputs(split(2), {{2, 4}}, 2), Error);  // axis
}

// ---- Reshape / Flatten

TEST(Reshape, CopiesAndInfersShapes) {
  Rng rng(34);
  struct Case {
    std::vector<int64_t> target;
    Shape want;
  };
  const std::vector<Case> cases = {
      {{4, -1}, {4, 6}}, {{0, -1}, {2, 12}},           {{2, 12}, {2, 12}},
      {{-1}, {24}},      {{1, 2, 3, 4}, {1, 2, 3, 4}}, {{0, 0, 2, 2}, {2, 3, 2, 2}},
  };
  for (const Case& rc : cases) {
    OpCase c;
    c.label = "reshape to " + shape_str(rc.want);
    c.node = reshape(rc.target);
    c.inputs = {random_tensor({2, 3, 4}, rng)};
    std::vector<Tensor> y = run_reference(c);
    EXPECT_EQ(y[0].shape(), rc.want) << c.label;
    expect_values(y[0], values_of(c.inputs[0]), 0, c.label);
    expect_gradient_matches_finite_difference(c, 24);
  }
}

TEST(Reshape, InferWithSymbolicBatch) {
  EXPECT_EQ(infer_shape(reshape({0, -1}), {{N, 3, 4, 4}}), (Shape{N, 48}));
  EXPECT_EQ(infer_shape(reshape({-1, 48}), {{N, 3, 4, 4}}), (Shape{N, 48}));
  EXPECT_EQ(infer_shape(reshape({0, 3, 4, 4}), {{N, 48}}), (Shape{N, 3, 4, 4}));
  EXPECT_EQ(infer_shape(reshape({0, 6, -1}), {{N, 3, 4, 4}}), (Shape{N, 6, 8}));
  EXPECT_EQ(infer_shape(reshape({48, -1}), {{N, 48}}), (Shape{48, N}));
}

TEST(Reshape, BadInputIsAnError) {
  EXPECT_THROW(infer_shape(reshape({7}), {{2, 3}}), Error);                 // element count
  EXPECT_THROW(infer_shape(reshape({-1, -1}), {{2, 3}}), Error);            // two -1
  EXPECT_THROW(infer_shape(reshape({4, -1}), {{2, 3}}), Error);             // 6 / 4
  EXPECT_THROW(infer_shape(reshape({-2, 3}), {{2, 3}}), Error);             // negative
  EXPECT_THROW(infer_shape(reshape({0, 0, 0}), {{2, 3}}), Error);           // 0 past the input rank
  EXPECT_THROW(infer_shape(make_node(OpKind::kReshape), {{2, 3}}), Error);  // no shape
  EXPECT_THROW(infer_shape(reshape({-1, 24}), {{N, 3, 4, 4}}), Error);      // would be 2N
  EXPECT_THROW(infer_shape(reshape({2, -1}), {{N, 3}}), Error);
  EXPECT_THROW(infer_shape(reshape({2, 24}), {{N, 48}}), Error);  // batch disappears
  try {
    infer_shape(reshape({5, 5}), {{2, 3, 4}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2,3,4]"), std::string::npos) << e.what();
  }
}

TEST(Flatten, CopiesAndInfersShapes) {
  Rng rng(35);
  const std::vector<std::pair<int64_t, Shape>> cases = {
      {1, {2, 60}}, {0, {1, 120}}, {4, {120, 1}}, {-2, {6, 20}}, {2, {6, 20}}};
  for (const auto& [axis, want] : cases) {
    OpCase c;
    c.label = "flatten axis " + std::to_string(axis);
    c.node = flatten(axis);
    c.inputs = {random_tensor({2, 3, 4, 5}, rng)};
    std::vector<Tensor> y = run_reference(c);
    EXPECT_EQ(y[0].shape(), want) << c.label;
    expect_values(y[0], values_of(c.inputs[0]), 0, c.label);
    expect_gradient_matches_finite_difference(c, 20);
  }
  EXPECT_EQ(infer_shape(make_node(OpKind::kFlatten), {{N, 3, 4, 4}}), (Shape{N, 48}));
  EXPECT_EQ(infer_shape(flatten(0), {{N, 1}}), (Shape{1, N}));
  EXPECT_EQ(infer_shape(flatten(1), {{N}}), (Shape{N, 1}));
  EXPECT_THROW(infer_shape(flatten(2), {{N, 3, 4, 4}}), Error);  // N*3 rows
  EXPECT_THROW(infer_shape(flatten(0), {{N, 3}}), Error);
  EXPECT_THROW(infer_shape(flatten(5), {{2, 3, 4, 5}}), Error);
  EXPECT_THROW(infer_shape(flatten(-5), {{2, 3, 4, 5}}), Error);
}

// ---- Transpose

std::vector<double> naive_transpose(const Tensor& x, const std::vector<int64_t>& perm) {
  const Shape& s = x.shape();
  Shape out(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) out[d] = s[perm[d]];
  std::vector<int64_t> st = strides_of(s), idx(out.size(), 0);
  std::vector<double> xv = values_of(x), y;
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < out.size(); ++d) off += idx[d] * st[perm[d]];
    y.push_back(xv[off]);
    for (size_t d = out.size(); d-- > 0;) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
  return y;
}

TEST(Transpose, MatchesNaiveAndFiniteDifference) {
  struct Case {
    Shape shape;
    std::vector<int64_t> perm;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4, 5}, {0, 2, 3, 1}},
      {{2, 3, 4, 5}, {0, 3, 1, 2}},
      {{2, 3, 4, 5}, {3, 2, 1, 0}},
      {{2, 3, 4, 5}, {1, 0, 2, 3}},
      {{2, 3, 4, 5}, {0, 1, 2, 3}},
      {{1, 3, 1, 5}, {2, 3, 0, 1}},
      {{3, 7}, {1, 0}},
      {{4, 1, 3}, {2, 0, 1}},
      {{5}, {0}},
  };
  Rng rng(36);
  for (const Case& tc : cases) {
    OpCase c;
    c.label = "transpose " + shape_str(tc.shape);
    c.node = transpose(tc.perm);
    c.inputs = {random_tensor(tc.shape, rng)};
    expect_values(run_reference(c)[0], naive_transpose(c.inputs[0], tc.perm), 0, c.label);
    expect_gradient_matches_finite_difference(c, 30);
  }
  // Default perm reverses the dimensions.
  Tensor x = random_tensor({2, 3, 4}, rng);
  KernelRun r = run_kernel(make_node(OpKind::kTranspose), {x});
  EXPECT_EQ(r.outputs[0].shape(), (Shape{4, 3, 2}));
  expect_values(r.outputs[0], naive_transpose(x, {2, 1, 0}), 0, "default perm");
}

TEST(Transpose, LargeTensorAndItsGradient) {
  Rng rng(37);
  Tensor x = random_tensor({64, 6, 28, 28}, rng);
  Tensor dy = random_tensor({64, 28, 28, 6}, rng);
  KernelRun r = run_kernel(transpose({0, 2, 3, 1}), {x}, {dy});
  expect_values(r.outputs[0], naive_transpose(x, {0, 2, 3, 1}), 0, "nchw to nhwc");
  expect_values(r.grads[0], naive_transpose(dy, {0, 3, 1, 2}), 0, "gradient");
}

TEST(Transpose, InferAndBadPerm) {
  EXPECT_EQ(infer_shape(transpose({0, 2, 3, 1}), {{N, 3, 4, 5}}), (Shape{N, 4, 5, 3}));
  EXPECT_EQ(infer_shape(transpose({1, 0}), {{N, 7}}), (Shape{7, N}));
  EXPECT_THROW(infer_shape(transpose({0, 0, 1, 2}), {{2, 3, 4, 5}}), Error);
  EXPECT_THROW(infer_shape(transpose({0, 1, 2}), {{2, 3, 4, 5}}), Error);
  EXPECT_THROW(infer_shape(transpose({0, 1, 2, 4}), {{2, 3, 4, 5}}), Error);
  EXPECT_THROW(infer_shape(transpose({-1, 0, 1, 2}), {{2, 3, 4, 5}}), Error);
}

}  // namespace
}  // namespace minnow::testing
