// Reductions (reduce.cpp): values against a naive oracle that groups elements index by index
// and applies the std:: formula of the ONNX docs; finite-difference gradients in f64 for every
// op over a table of shapes and axes (keepdims 0/1, negative axes, all axes); hand-computed
// gradients at ties and zeros; inferred shapes with a symbolic batch; bad attributes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "elementwise_test_util.h"
#include "op_harness.h"

namespace minnow::testing {
namespace {

using Group = std::vector<double>;

struct ReduceOp {
  OpKind op;
  std::function<double(const Group&)> f;
  float lo, hi;  // input domain
};

double sum(const Group& g) {
  double s = 0;
  for (double v : g) s += v;
  return s;
}

std::vector<ReduceOp> reduce_ops() {
  return {
      {OpKind::kReduceMean, [](const Group& g) { return sum(g) / g.size(); }, -1, 1},
      {OpKind::kReduceSum, sum, -1, 1},
      {OpKind::kReduceMax, [](const Group& g) { return *std::max_element(g.begin(), g.end()); }, -1,
       1},
      {OpKind::kReduceMin, [](const Group& g) { return *std::min_element(g.begin(), g.end()); }, -1,
       1},
      {OpKind::kReduceProd,
       [](const Group& g) {
         double p = 1;
         for (double v : g) p *= v;
         return p;
       },
       -1.5, 1.5},
      {OpKind::kReduceL1,
       [](const Group& g) {
         double s = 0;
         for (double v : g) s += std::fabs(v);
         return s;
       },
       -1, 1},
      {OpKind::kReduceL2,
       [](const Group& g) {
         double s = 0;
         for (double v : g) s += v * v;
         return std::sqrt(s);
       },
       -1, 1},
      {OpKind::kReduceSumSquare,
       [](const Group& g) {
         double s = 0;
         for (double v : g) s += v * v;
         return s;
       },
       -1, 1},
      {OpKind::kReduceLogSum, [](const Group& g) { return std::log(sum(g)); }, 0.1f, 2},
      {OpKind::kReduceLogSumExp,
       [](const Group& g) {
         double s = 0;
         for (double v : g) s += std::exp(v);
         return std::log(s);
       },
       -3, 3},
  };
}

struct AxesCase {
  Shape shape;
  std::vector<int64_t> axes;  // empty: attribute absent (all axes)
  int64_t keepdims;
};

const std::vector<AxesCase> kAxes = {
    {{3, 4, 5}, {1}, 1},
    {{3, 4, 5}, {1}, 0},
    {{3, 4, 5}, {-1}, 1},
    {{3, 4, 5}, {0, 2}, 0},
    {{3, 4, 5}, {2, 0}, 1},
    {{3, 4, 5}, {}, 1},
    {{3, 4, 5}, {}, 0},
    {{1, 3, 5, 5}, {2, 3}, 1},    // spatial mean (global pooling)
    {{2, 1, 3}, {1}, 0},          // a size-1 reduced dim
    {{2, 3, 1, 4}, {-4, -2}, 1},  // negative, separated
    {{7}, {0}, 0},                // to a scalar
    {{1}, {}, 1},                 // batch 1, single element
    {{2, 3}, {0, 1}, 1},          // explicit all axes
};

Node reduce_node(OpKind op, const AxesCase& a) {
  Node n = make_node(op, {{"keepdims", a.keepdims}});
  if (!a.axes.empty()) n.attrs.set("axes", a.axes);
  return n;
}

// Groups of input values keyed by their output's flat index (naive: index by index).
std::map<int64_t, Group> naive_groups(const Tensor& x, const AxesCase& a) {
  const Shape& s = x.shape();
  const int64_t r = static_cast<int64_t>(s.size());
  std::vector<bool> red(s.size(), a.axes.empty());
  for (int64_t ax : a.axes) red[ax < 0 ? ax + r : ax] = true;
  const std::vector<double> v = values_of(x);
  std::map<int64_t, Group> groups;
  std::vector<int64_t> idx(s.size(), 0);
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t o = 0;
    for (size_t d = 0; d < s.size(); ++d) {
      if (!red[d]) o = o * s[d] + idx[d];
    }
    groups[o].push_back(v[i]);
    for (size_t d = s.size(); d-- > 0;) {
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
  return groups;
}

std::string label_of(OpKind op, const AxesCase& a) {
  std::string axes;
  for (int64_t x : a.axes) axes += std::to_string(x) + ",";
  return std::string(op_def(op).name) + " " + shape_str(a.shape) + " axes=[" + axes +
         "] keepdims=" + std::to_string(a.keepdims);
}

TEST(Reduce, ValuesMatchNaiveFormula) {
  Rng rng(41);
  for (const ReduceOp& ro : reduce_ops()) {
    for (const AxesCase& a : kAxes) {
      const std::string label = label_of(ro.op, a);
      Tensor x = random_tensor(a.shape, rng, ro.lo, ro.hi);
      std::map<int64_t, Group> groups = naive_groups(x, a);
      std::vector<double> want;
      for (const auto& [o, g] : groups) want.push_back(ro.f(g));
      KernelRun r64 = run_kernel(reduce_node(ro.op, a), {to_dtype(x, DType::kF64)});
      expect_values(r64.outputs[0], want, 1e-12, label + " f64");
      KernelRun r32 = run_kernel(reduce_node(ro.op, a), {x});
      expect_values(r32.outputs[0], want, 1e-5, label + " f32");
    }
  }
}

TEST(Reduce, GradientMatchesFiniteDifference) {
  Rng rng(42);
  for (const ReduceOp& ro : reduce_ops()) {
    for (const AxesCase& a : kAxes) {
      OpCase c;
      c.label = label_of(ro.op, a);
      c.node = reduce_node(ro.op, a);
      c.inputs = {random_tensor(a.shape, rng, ro.lo, ro.hi)};
      expect_gradient_matches_finite_difference(c, 30);
    }
  }
}

TEST(Reduce, LargeTensorMatchesNaive) {
  Rng rng(43);
  // Large enough for the parallel loop over output elements.
  const AxesCase a{{8, 16, 30, 30}, {0, 2}, 0};
  Tensor x = random_tensor(a.shape, rng);
  std::vector<double> mean;
  for (const auto& [o, g] : naive_groups(x, a)) mean.push_back(sum(g) / g.size());
  KernelRun r = run_kernel(reduce_node(OpKind::kReduceMean, a), {x});
  EXPECT_EQ(r.outputs[0].shape(), (Shape{16, 30}));
  expect_values(r.outputs[0], mean, 1e-6, "large mean");
}

TEST(Reduce, HandComputedGradients) {
  Tensor x = make_tensor({2, 3}, {1, 3, 3, 0, 2, 0});
  Tensor dy = make_tensor({2}, {1, 10});
  const Node max_node =
      make_node(OpKind::kReduceMax, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}});
  KernelRun mx = run_kernel(max_node, {x}, {dy});
  expect_values(mx.outputs[0], {3, 2}, 0, "max");
  expect_values(mx.grads[0], {0, 1, 0, 0, 10, 0}, 0, "max grad to the first of ties");
  const Node min_node =
      make_node(OpKind::kReduceMin, {{"axes", std::vector<int64_t>{-1}}, {"keepdims", int64_t{0}}});
  expect_values(run_kernel(min_node, {x}, {dy}).grads[0], {1, 0, 0, 10, 0, 0}, 0, "min grad");
  // Prod: no zero -> y / x; one zero -> only that element; two zeros -> none.
  Tensor p = make_tensor({3, 3}, {2, 3, 4, 2, 0, 5, 0, 7, 0});
  Tensor pdy = make_tensor({3, 1}, {1, 1, 1});
  KernelRun prod =
      run_kernel(make_node(OpKind::kReduceProd, {{"axes", std::vector<int64_t>{1}}}), {p}, {pdy});
  expect_values(prod.outputs[0], {24, 0, 0}, 0, "prod");
  expect_values(prod.grads[0], {12, 8, 6, 0, 10, 0, 0, 0, 0}, 0, "prod grad");
  // L2 of a zero group passes no gradient; LogSumExp does not overflow.
  Tensor z = make_tensor({2}, {0, 0});
  Tensor one = make_tensor({1}, {1});
  KernelRun l2 = run_kernel(make_node(OpKind::kReduceL2), {z}, {one});
  expect_values(l2.outputs[0], {0}, 0, "l2 of zeros");
  expect_values(l2.grads[0], {0, 0}, 0, "l2 grad at zero");
  Tensor big = make_tensor({2}, {1000, 1000});
  expect_values(run_kernel(make_node(OpKind::kReduceLogSumExp), {big}).outputs[0],
                {1000 + std::log(2.0)}, 1e-3, "logsumexp large");
  // An absent output gradient is a zero input gradient.
  expect_values(run_kernel(make_node(OpKind::kReduceSum), {x}, {Tensor()}).grads[0],
                {0, 0, 0, 0, 0, 0}, 0, "absent output gradient");
}

TEST(Reduce, EmptyGroupsGiveTheIdentity) {
  Tensor x(DType::kF32, {2, 0});
  const Node base = make_node(OpKind::kReduceSum, {{"axes", std::vector<int64_t>{1}}});
  auto run_op = [&](OpKind op) {
    Node n = base;
    n.op = op;
    return values_of(run_kernel(n, {x}).outputs[0]);
  };
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(run_op(OpKind::kReduceSum), (std::vector<double>{0, 0}));
  EXPECT_EQ(run_op(OpKind::kReduceProd), (std::vector<double>{1, 1}));
  EXPECT_EQ(run_op(OpKind::kReduceMax), (std::vector<double>{-inf, -inf}));
  EXPECT_EQ(run_op(OpKind::kReduceMin), (std::vector<double>{inf, inf}));
  EXPECT_EQ(run_op(OpKind::kReduceLogSumExp), (std::vector<double>{-inf, -inf}));
}

TEST(Reduce, InferShapes) {
  const int64_t N = kDynamic;
  auto node = [](std::vector<int64_t> axes, int64_t keep) {
    Node n = make_node(OpKind::kReduceMean, {{"keepdims", keep}});
    if (!axes.empty()) n.attrs.set("axes", axes);
    return n;
  };
  EXPECT_EQ(infer_shape(node({2, 3}, 1), {{N, 8, 5, 5}}), (Shape{N, 8, 1, 1}));
  EXPECT_EQ(infer_shape(node({-1, -2}, 0), {{N, 8, 5, 5}}), (Shape{N, 8}));
  EXPECT_EQ(infer_shape(node({0}, 0), {{N, 8}}), (Shape{8}));
  EXPECT_EQ(infer_shape(node({}, 1), {{N, 8}}), (Shape{1, 1}));
  EXPECT_EQ(infer_shape(node({}, 0), {{N, 8}}), (Shape{}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kReduceSum), {{3, 4}}), (Shape{1, 1}));
  EXPECT_EQ(infer_shape(node({}, 0), {{}}), (Shape{}));
}

TEST(Reduce, BadAttributesAreAnError) {
  auto node = [](std::vector<int64_t> axes) {
    return make_node(OpKind::kReduceSum, {{"axes", axes}});
  };
  EXPECT_THROW(infer_shape(node({1, 1}), {{3, 4}}), Error);
  EXPECT_THROW(infer_shape(node({1, -1}), {{3, 4}}), Error);  // the same axis twice
  EXPECT_THROW(infer_shape(node({2}), {{3, 4}}), Error);
  EXPECT_THROW(infer_shape(node({-3}), {{3, 4}}), Error);
  EXPECT_THROW(infer_shape(node({0}), {{}}), Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kReduceMax, {{"keepdims", int64_t{2}}}), {{3}}),
               Error);
  EXPECT_THROW(infer_shape(make_node(OpKind::kReduceMax, {{"axes", 1.0}}), {{3}}), Error);
  EXPECT_THROW(infer_outputs(make_node(OpKind::kReduceMean), {{3}}, 1, DType::kI64), Error);
  try {
    infer_shape(node({0, 0}), {{3, 4}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("twice"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ReduceSum"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow::testing
