// Squeeze, Unsqueeze, Identity, Expand, DepthToSpace, SpaceToDepth and Cast: shapes and values
// of the ONNX node-test cases (transcribed from onnx/backend/test/case/node/*.py), values against
// coordinate oracles on odd shapes, f64 gradients against finite differences, integer dtypes,
// and bad attributes/shapes throwing Errors that name the node.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "dense_test_util.h"
#include "op_harness.h"
#include "shape_test_util.h"

namespace minnow::testing {
namespace {

const int64_t N = kDynamic;
using Ints = std::vector<int64_t>;

Node squeeze(Ints axes) { return make_node(OpKind::kSqueeze, {{"axes", axes}}); }
Node unsqueeze(Ints axes) { return make_node(OpKind::kUnsqueeze, {{"axes", axes}}); }
Node expand(Ints shape) { return make_node(OpKind::kExpand, {{"shape", shape}}); }
Node d2s(int64_t b, const std::string& mode = "DCR") {
  return make_node(OpKind::kDepthToSpace, {{"blocksize", b}, {"mode", mode}});
}
Node s2d(int64_t b) { return make_node(OpKind::kSpaceToDepth, {{"blocksize", b}}); }
Node cast(const std::string& to) { return make_node(OpKind::kCast, {{"to", to}}); }

void check_fd(const std::string& label, Node node, Shape shape, int max_elements = 40) {
  Rng rng(5);
  OpCase c;
  c.label = label;
  c.node = std::move(node);
  c.inputs = {random_tensor(std::move(shape), rng)};
  expect_gradient_matches_finite_difference(c, max_elements);
}

// ---- Squeeze / Unsqueeze / Identity

TEST(ShapeSqueeze, ShapesLikeOnnx) {
  EXPECT_EQ(infer_shape(squeeze({0}), {{1, 3, 4, 5}}), (Shape{3, 4, 5}));  // test_squeeze
  EXPECT_EQ(infer_shape(squeeze({-2}), {{1, 3, 1, 5}}), (Shape{1, 3, 5}));
  EXPECT_EQ(infer_shape(squeeze({0, 2}), {{1, 3, 1, 5}}), (Shape{3, 5}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kSqueeze), {{1, 3, 1, 5}}), (Shape{3, 5}));
  EXPECT_EQ(infer_shape(make_node(OpKind::kSqueeze), {{1, 1}}), (Shape{}));
  // Without axes the symbolic batch stays (it is not known to be 1).
  EXPECT_EQ(infer_shape(make_node(OpKind::kSqueeze), {{N, 8, 1, 1}}), (Shape{N, 8}));
  EXPECT_EQ(infer_shape(squeeze({2, 3}), {{N, 8, 1, 1}}), (Shape{N, 8}));
}

TEST(ShapeSqueeze, CopiesValuesAndGradient) {
  Tensor x = make_tensor({1, 3, 1, 2}, iota_values(6, 1));
  KernelRun r = run_kernel(squeeze({0, 2}), {x}, {make_tensor({3, 2}, iota_values(6, 10))});
  EXPECT_EQ(r.outputs[0].shape(), (Shape{3, 2}));
  expect_values(r.outputs[0], iota_values(6, 1), 0, "y");
  EXPECT_EQ(r.grads[0].shape(), (Shape{1, 3, 1, 2}));
  expect_values(r.grads[0], iota_values(6, 10), 0, "dx");
  check_fd("squeeze", squeeze({0, 2}), {1, 3, 1, 2});
}

TEST(ShapeSqueeze, BadAxesThrow) {
  expect_error([] { infer_shape(squeeze({1}), {{1, 3, 1, 5}}); }, "expected 1");
  expect_error([] { infer_shape(squeeze({4}), {{1, 3, 1, 5}}); }, "out of range");
  expect_error([] { infer_shape(squeeze({-5}), {{1, 3, 1, 5}}); }, "out of range");
  expect_error([] { infer_shape(squeeze({0, -4}), {{1, 3, 1, 5}}); }, "repeats");
  expect_error([] { infer_shape(squeeze({0}), {{N, 3}}); }, "symbolic batch");
}

TEST(ShapeUnsqueeze, ShapesLikeOnnx) {
  const Shape x = {3, 4, 5};
  EXPECT_EQ(infer_shape(unsqueeze({0}), {x}), (Shape{1, 3, 4, 5}));  // test_unsqueeze_axis_0
  EXPECT_EQ(infer_shape(unsqueeze({1}), {x}), (Shape{3, 1, 4, 5}));
  EXPECT_EQ(infer_shape(unsqueeze({3}), {x}), (Shape{3, 4, 5, 1}));
  EXPECT_EQ(infer_shape(unsqueeze({1, 4}), {x}), (Shape{3, 1, 4, 5, 1}));        // two axes
  EXPECT_EQ(infer_shape(unsqueeze({2, 4, 5}), {x}), (Shape{3, 4, 1, 5, 1, 1}));  // three axes
  EXPECT_EQ(infer_shape(unsqueeze({5, 4, 2}), {x}), (Shape{3, 4, 1, 5, 1, 1}));  // unsorted
  EXPECT_EQ(infer_shape(unsqueeze({-2}), {{1, 3, 1, 5}}), (Shape{1, 3, 1, 1, 5}));
  EXPECT_EQ(infer_shape(unsqueeze({0}), {{}}), (Shape{1}));
  EXPECT_EQ(infer_shape(unsqueeze({-1}), {{N, 7}}), (Shape{N, 7, 1}));
}

TEST(ShapeUnsqueeze, CopiesValuesAndGradient) {
  Tensor x = make_tensor({2, 3}, iota_values(6, -2));
  KernelRun r = run_kernel(unsqueeze({0, 3}), {x});
  EXPECT_EQ(r.outputs[0].shape(), (Shape{1, 2, 3, 1}));
  expect_values(r.outputs[0], iota_values(6, -2), 0, "y");
  check_fd("unsqueeze", unsqueeze({1}), {2, 3});
}

TEST(ShapeUnsqueeze, BadAxesThrow) {
  expect_error([] { infer_shape(make_node(OpKind::kUnsqueeze), {{3}}); }, "axes is required");
  expect_error([] { infer_shape(unsqueeze({2}), {{3}}); }, "out of range");
  expect_error([] { infer_shape(unsqueeze({1, 1}), {{3}}); }, "repeats");
  expect_error([] { infer_shape(unsqueeze({0, -3}), {{3}}); }, "repeats");
}

TEST(ShapeIdentity, PassesEveryDtype) {
  for (DType dt : {DType::kF32, DType::kF64, DType::kI64, DType::kI32, DType::kU8}) {
    Tensor x = typed_tensor({2, 3}, {1, 2, 3, 4, 5, 250}, dt);
    dense::Run r = dense::run(make_node(OpKind::kIdentity), {x});
    EXPECT_EQ(r.outputs[0].dtype(), dt);
    EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{1, 2, 3, 4, 5, 250}));
  }
  check_fd("identity", make_node(OpKind::kIdentity), {3, 5});
}

// ---- Expand

// Output coordinate -> input coordinate under numpy broadcasting.
CoordMap broadcast_map(const Shape& in, const Shape& out) {
  return [in, out](const std::vector<int64_t>& o, std::vector<int64_t>& i) {
    const size_t lead = out.size() - in.size();
    for (size_t d = 0; d < in.size(); ++d) i[d] = in[d] == 1 ? 0 : o[d + lead];
    return true;
  };
}

TEST(ShapeExpand, OnnxCases) {
  // test_expand_dim_changed: [3,1] (values 1..3) to [2,1,6] -> [2,3,6].
  Tensor x = make_tensor({3, 1}, {1, 2, 3});
  KernelRun r = run_kernel(expand({2, 1, 6}), {x});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{2, 3, 6}));
  std::vector<double> want;
  for (int k = 0; k < 2; ++k) {
    for (double v : {1.0, 2.0, 3.0}) want.insert(want.end(), 6, v);
  }
  expect_values(r.outputs[0], want, 0, "dim_changed");
  // test_expand_dim_unchanged: [3,1] to [3,4].
  r = run_kernel(expand({3, 4}), {x});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{3, 4}));
  expect_values(r.outputs[0], {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 0, "dim_unchanged");
  // A target of 1 keeps the input's size (broadcasting goes both ways in ONNX).
  EXPECT_EQ(infer_shape(expand({1, 1}), {{3, 4}}), (Shape{3, 4}));
  EXPECT_EQ(infer_shape(expand({5, 1}), {{N, 1, 4}}), (Shape{N, 5, 4}));
  EXPECT_EQ(infer_shape(expand({3, 0}), {{3, 1}}), (Shape{3, 0}));
}

TEST(ShapeExpand, MatchesOracleAndSumsGradient) {
  Rng rng(11);
  const std::vector<std::pair<Shape, Ints>> cases = {
      {{3, 1}, {3, 5}},
      {{1, 4}, {3, 1, 4}},
      {{2, 1, 3}, {2, 5, 3}},
      {{1}, {7}},
      {{}, {2, 3}},
      {{5, 1, 1}, {1, 5, 3, 7}},
      {{1, 3, 1}, {4, 3, 9}},
      {{2, 3}, {2, 3}},
      {{1, 1, 64}, {2, 600, 64}},  // parallel
  };
  for (const auto& [in, target] : cases) {
    const std::string label = "expand " + shape_str(in) + " to " + shape_str(target);
    Tensor x = random_tensor(in, rng);
    KernelRun r = run_kernel(expand(target), {x});
    const Shape out = r.outputs[0].shape();
    expect_values(r.outputs[0], naive_gather(x, out, broadcast_map(in, out)), 0, label);
    if (shape_numel(out) < 1000) check_fd(label, expand(target), in);
  }
  // By hand: every input element of [3,1] feeds 4 outputs, so dy = 1 gives dx = 4.
  KernelRun r = run_kernel(expand({3, 4}), {make_tensor({3, 1}, {1, 2, 3})},
                           {make_tensor({3, 4}, std::vector<double>(12, 1.0))});
  expect_values(r.grads[0], {4, 4, 4}, 0, "dx");
}

TEST(ShapeExpand, BadShapesThrow) {
  expect_error([] { infer_shape(expand({3, 4}), {{3, 2}}); }, "cannot expand");
  expect_error([] { infer_shape(expand({-1, 4}), {{3, 1}}); }, "negative");
  expect_error([] { infer_shape(make_node(OpKind::kExpand), {{3, 1}}); }, "shape is required");
}

// ---- DepthToSpace / SpaceToDepth

// The (1, 8, 2, 3) input of ONNX's depthtospace examples: channel c holds 9c .. 9c+5.
Tensor onnx_d2s_input() {
  std::vector<double> v;
  for (int c = 0; c < 8; ++c) {
    for (int k = 0; k < 6; ++k) v.push_back(9 * c + k);
  }
  return make_tensor({1, 8, 2, 3}, v);
}

TEST(ShapeDepthToSpace, OnnxExamples) {
  KernelRun r = run_kernel(d2s(2, "DCR"), {onnx_d2s_input()});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{1, 2, 4, 6}));
  expect_values(r.outputs[0], {0,  18, 1,  19, 2,  20, 36, 54, 37, 55, 38, 56, 3,  21, 4,  22,
                               5,  23, 39, 57, 40, 58, 41, 59, 9,  27, 10, 28, 11, 29, 45, 63,
                               46, 64, 47, 65, 12, 30, 13, 31, 14, 32, 48, 66, 49, 67, 50, 68},
                0, "test_depthtospace_example (DCR)");
  r = run_kernel(d2s(2, "CRD"), {onnx_d2s_input()});
  expect_values(r.outputs[0], {0,  9,  1,  10, 2,  11, 18, 27, 19, 28, 20, 29, 3,  12, 4,  13,
                               5,  14, 21, 30, 22, 31, 23, 32, 36, 45, 37, 46, 38, 47, 54, 63,
                               55, 64, 56, 65, 39, 48, 40, 49, 41, 50, 57, 66, 58, 67, 59, 68},
                0, "test_depthtospace_crd_mode_example");
  // Default mode is DCR.
  KernelRun def =
      run_kernel(make_node(OpKind::kDepthToSpace, {{"blocksize", int64_t{2}}}), {onnx_d2s_input()});
  expect_values(def.outputs[0], values_of(run_kernel(d2s(2), {onnx_d2s_input()}).outputs[0]), 0,
                "default mode");
}

TEST(ShapeSpaceToDepth, OnnxExample) {
  Tensor x = make_tensor({1, 1, 4, 6}, {0, 6, 1, 7,  2, 8,  12, 18, 13, 19, 14, 20,
                                        3, 9, 4, 10, 5, 11, 15, 21, 16, 22, 17, 23});
  KernelRun r = run_kernel(s2d(2), {x});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{1, 4, 2, 3}));
  expect_values(r.outputs[0], iota_values(24), 0, "test_spacetodepth_example");
}

// The ONNX definitions as reshape + transpose, read as coordinate maps.
CoordMap d2s_map(int64_t b, int64_t c_out, bool crd) {
  return [=](const std::vector<int64_t>& o, std::vector<int64_t>& i) {
    const int64_t bi = o[2] % b, bj = o[3] % b;
    i[0] = o[0];
    i[1] = crd ? (o[1] * b + bi) * b + bj : (bi * b + bj) * c_out + o[1];
    i[2] = o[2] / b;
    i[3] = o[3] / b;
    return true;
  };
}
CoordMap s2d_map(int64_t b, int64_t c_in) {
  return [=](const std::vector<int64_t>& o, std::vector<int64_t>& i) {
    const int64_t blk = o[1] / c_in;
    i[0] = o[0];
    i[1] = o[1] % c_in;
    i[2] = o[2] * b + blk / b;
    i[3] = o[3] * b + blk % b;
    return true;
  };
}

TEST(ShapeDepthToSpace, MatchesOracleAndFiniteDifference) {
  Rng rng(12);
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{1, 4, 3, 5}, 2}, {{2, 18, 2, 1}, 3},   {{3, 8, 1, 1}, 2},
      {{1, 5, 3, 3}, 1}, {{2, 64, 32, 33}, 2},  // over the parallel threshold
  };
  for (const auto& [s, b] : cases) {
    for (bool crd : {false, true}) {
      const std::string label = "d2s " + shape_str(s) + " b" + std::to_string(b);
      Tensor x = random_tensor(s, rng);
      KernelRun r = run_kernel(d2s(b, crd ? "CRD" : "DCR"), {x});
      const Shape out = r.outputs[0].shape();
      expect_values(r.outputs[0], naive_gather(x, out, d2s_map(b, out[1], crd)), 0, label);
      if (shape_numel(s) < 1000) check_fd(label, d2s(b, crd ? "CRD" : "DCR"), s);
    }
  }
}

TEST(ShapeSpaceToDepth, MatchesOracleAndInvertsDepthToSpace) {
  Rng rng(13);
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{1, 1, 4, 6}, 2}, {{2, 3, 6, 3}, 3},    {{1, 5, 2, 2}, 2},
      {{3, 2, 5, 5}, 1}, {{2, 16, 64, 66}, 2},
  };
  for (const auto& [s, b] : cases) {
    const std::string label = "s2d " + shape_str(s) + " b" + std::to_string(b);
    Tensor x = random_tensor(s, rng);
    KernelRun r = run_kernel(s2d(b), {x});
    const Shape out = r.outputs[0].shape();
    expect_values(r.outputs[0], naive_gather(x, out, s2d_map(b, s[1])), 0, label);
    // SpaceToDepth is the inverse of DepthToSpace in DCR mode.
    KernelRun back = run_kernel(d2s(b, "DCR"), {r.outputs[0]});
    expect_values(back.outputs[0], values_of(x), 0, label + " round trip");
    if (shape_numel(s) < 1000) check_fd(label, s2d(b), s);
  }
}

TEST(ShapeDepthToSpace, SymbolicBatchAndBadInputThrow) {
  EXPECT_EQ(infer_shape(d2s(2), {{N, 12, 3, 4}}), (Shape{N, 3, 6, 8}));
  EXPECT_EQ(infer_shape(s2d(2), {{N, 3, 6, 4}}), (Shape{N, 12, 3, 2}));
  expect_error([] { infer_shape(d2s(2), {{1, 6, 3, 4}}); }, "multiple of blocksize^2");
  expect_error([] { infer_shape(d2s(2, "RDC"), {{1, 8, 3, 4}}); }, "mode");
  expect_error([] { infer_shape(d2s(0), {{1, 8, 3, 4}}); }, "blocksize");
  expect_error([] { infer_shape(d2s(2), {{8, 3, 4}}); }, "rank 4");
  expect_error([] { infer_shape(s2d(2), {{1, 2, 3, 4}}); }, "not a multiple of blocksize");
  expect_error(
      [] {
        infer_shape(make_node(OpKind::kSpaceToDepth), {{1, 2, 4, 4}});
      },
      "blocksize is required");
}

// ---- Cast

TEST(Cast, FloatToIntegerTruncatesTowardZero) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = make_tensor({8}, {-2.7, -0.5, 0.5, 2.9, 127.9, -128.9, 1e20, nan});
  dense::Run r = dense::run(cast("i64"), {x});
  EXPECT_EQ(r.outputs[0].dtype(), DType::kI64);
  const double big = static_cast<double>(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(typed_values(r.outputs[0]),
            (std::vector<double>{-2, 0, 0, 2, 127, -128, big, 0}));  // 1e20 saturates
  r = dense::run(cast("i8"), {x});
  EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{-2, 0, 0, 2, 127, -128, 127, 0}));
  r = dense::run(cast("u8"), {make_tensor({4}, {-3.5, 255.9, 300, 17.2})});
  EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{0, 255, 255, 17}));
  r = dense::run(cast("i32"), {make_tensor({3}, {-2147483648.0, 3e9, -5.99}, DType::kF64)});
  EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{-2147483648.0, 2147483647.0, -5}));
}

TEST(Cast, IntegerAndFloatConversions) {
  // Integer -> integer wraps like numpy's astype.
  dense::Run r = dense::run(cast("i8"), {typed_tensor({3}, {300, -129, 5}, DType::kI64)});
  EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{44, 127, 5}));
  r = dense::run(cast("f32"), {typed_tensor({3}, {-7, 0, 16777217}, DType::kI64)});
  EXPECT_EQ(r.outputs[0].dtype(), DType::kF32);
  EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{-7, 0, 16777216}));
  r = dense::run(cast("f64"), {make_tensor({2}, {0.1f, -3})});
  EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{static_cast<double>(0.1f), -3}));
  r = dense::run(cast("i64"), {typed_tensor({2}, {200, 7}, DType::kU8)});
  EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{200, 7}));
  // Same dtype is a copy; large tensors take the parallel path.
  Rng rng(3);
  Tensor big = random_tensor({3, 70000}, rng, -50, 50);
  r = dense::run(cast("i32"), {big});
  std::vector<double> want = values_of(big);
  for (double& v : want) v = std::trunc(v);
  EXPECT_EQ(typed_values(r.outputs[0]), want);
}

TEST(Cast, GradientPassesFloatToFloatOnly) {
  OpCase c;
  Rng rng(4);
  c.label = "cast f64";
  c.node = cast("f64");
  c.inputs = {random_tensor({3, 4}, rng)};
  expect_gradient_matches_finite_difference(c);
  // Float -> integer: zero (truncation is piecewise constant).
  dense::Run r = dense::run(cast("i64"), {make_tensor({2}, {1.5, -2.5})},
                            dense::opts().grads({typed_tensor({2}, {3, 4}, DType::kI64)}));
  expect_values(r.grads[0], {0, 0}, 0, "dx");
  r = dense::run(cast("f64"), {make_tensor({2}, {1.5, -2.5})},
                 dense::opts().grads({typed_tensor({2}, {3, -4}, DType::kF64)}));
  EXPECT_EQ(r.grads[0].dtype(), DType::kF32);
  expect_values(r.grads[0], {3, -4}, 0, "dx");
}

TEST(Cast, BadTargetThrows) {
  expect_error([] { infer_shape(cast("float16"), {{2}}); }, "not a dtype");
  expect_error([] { infer_shape(make_node(OpKind::kCast), {{2}}); }, "to is required");
  EXPECT_EQ(infer_outputs(cast("u8"), {{N, 3}}).at(0).dtype, DType::kU8);
}

}  // namespace
}  // namespace minnow::testing
