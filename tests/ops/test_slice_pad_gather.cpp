// Slice, Pad and Gather: the ONNX node-test cases (shapes and index sets transcribed from
// onnx/backend/test/case/node/{slice,pad,gather}.py; numpy.pad literals for reflect/edge),
// values against coordinate oracles, integer dtypes, f64 gradients against finite differences
// (scatter into zeros, accumulation for edge/reflect and repeated indices), symbolic batch and
// bad attributes throwing Errors that name the node.
#include <gtest/gtest.h>

#include <limits>

#include "dense_test_util.h"
#include "op_harness.h"
#include "shape_test_util.h"

namespace minnow::testing {
namespace {

const int64_t N = kDynamic;
const int64_t kMax = std::numeric_limits<int64_t>::max();
const int64_t kMin = std::numeric_limits<int64_t>::min();
using Ints = std::vector<int64_t>;

Node slice(Ints starts, Ints ends, Ints axes = {}, Ints steps = {}) {
  Node n = make_node(OpKind::kSlice, {{"starts", starts}, {"ends", ends}});
  if (!axes.empty()) n.attrs.set("axes", axes);
  if (!steps.empty()) n.attrs.set("steps", steps);
  return n;
}
Node pad(Ints pads, const std::string& mode = "constant", double value = 0) {
  return make_node(OpKind::kPad, {{"pads", pads}, {"mode", mode}, {"value", value}});
}
Node gather(int64_t axis) { return make_node(OpKind::kGather, {{"axis", axis}}); }

Ints range(int64_t lo, int64_t hi, int64_t step = 1) {
  Ints v;
  for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) v.push_back(i);
  return v;
}

// ---- Slice

// Expected: for each input axis, the list of input indices the output visits (written out
// independently of the clamping code, as Python's slicing would give them).
struct SliceCase {
  std::string label;
  Node node;
  std::vector<Ints> visit;
};

CoordMap visit_map(const std::vector<Ints>& visit) {
  return [visit](const std::vector<int64_t>& o, std::vector<int64_t>& i) {
    for (size_t d = 0; d < visit.size(); ++d) i[d] = visit[d][o[d]];
    return true;
  };
}

std::vector<SliceCase> onnx_slice_cases() {
  const Ints all0 = range(0, 20), all1 = range(0, 10), all2 = range(0, 5);
  return {
      {"test_slice", slice({0, 0}, {3, 10}, {0, 1}, {1, 1}), {range(0, 3), all1, all2}},
      {"test_slice_neg", slice({0}, {-1}, {1}, {1}), {all0, range(0, 9), all2}},
      {"test_slice_start_out_of_bounds", slice({1000}, {1000}, {1}, {1}), {all0, {}, all2}},
      {"test_slice_end_out_of_bounds", slice({1}, {1000}, {1}, {1}), {all0, range(1, 10), all2}},
      {"test_slice_default_axes", slice({0, 0, 3}, {20, 10, 4}), {all0, all1, {3}}},
      {"test_slice_default_steps", slice({0, 0, 3}, {20, 10, 4}, {0, 1, 2}), {all0, all1, {3}}},
      {"test_slice_neg_steps",
       slice({20, 10, 4}, {0, 0, 1}, {0, 1, 2}, {-1, -3, -2}),
       {range(19, 0, -1), {9, 6, 3}, {4, 2}}},
      {"test_slice_negative_axes", slice({0, 0, 3}, {20, 10, 4}, {0, -2, -1}), {all0, all1, {3}}},
      // x[::-1, -3:, 4:0:-3]: INT64_MIN / INT64_MAX as "to the end".
      {"reverse with INT64_MIN",
       slice({-1, -3, 4}, {kMin, kMax, 0}, {0, 1, 2}, {-1, 1, -3}),
       {range(19, -1, -1), {7, 8, 9}, {4, 1}}},
      {"large step", slice({2}, {kMax}, {2}, {kMax}), {all0, all1, {2}}},
      {"large negative step", slice({-1}, {kMin}, {0}, {kMin}), {{19}, all1, all2}},
      {"negative start before the beginning", slice({-100}, {3}, {1}), {all0, range(0, 3), all2}},
      {"empty by negative step", slice({2}, {5}, {2}, {-1}), {all0, all1, {}}},
  };
}

TEST(Slice, OnnxCasesMatchPythonSlicing) {
  Rng rng(21);
  Tensor x = random_tensor({20, 10, 5}, rng);
  for (const SliceCase& c : onnx_slice_cases()) {
    KernelRun r = run_kernel(c.node, {x});
    Shape want_shape;
    for (const Ints& v : c.visit) want_shape.push_back(static_cast<int64_t>(v.size()));
    ASSERT_EQ(r.outputs[0].shape(), want_shape) << c.label;
    expect_values(r.outputs[0], naive_gather(x, want_shape, visit_map(c.visit)), 0, c.label);
  }
}

TEST(Slice, IntegerDtypesAndParallelPath) {
  for (DType dt : {DType::kI64, DType::kF64, DType::kI32, DType::kU8}) {
    Tensor x = typed_tensor({3, 4}, iota_values(12), dt);
    dense::Run r = dense::run(slice({2, -1}, {kMin, 0}, {0, 1}, {-2, -2}), {x});
    EXPECT_EQ(r.outputs[0].dtype(), dt);
    EXPECT_EQ(r.outputs[0].shape(), (Shape{2, 2}));
    EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{11, 9, 3, 1}));
  }
  Rng rng(22);
  Tensor big = random_tensor({4, 160, 250}, rng);
  Node n = slice({1, 3}, {150, kMax}, {1, 2}, {1, 2});
  KernelRun r = run_kernel(n, {big}, {random_tensor({4, 149, 124}, rng)});
  expect_values(
      r.outputs[0],
      naive_gather(big, {4, 149, 124}, visit_map({range(0, 4), range(1, 150), range(3, 250, 2)})),
      0, "big slice");
  EXPECT_EQ(r.grads[0].shape(), big.shape());
}

TEST(Slice, GradientScattersIntoZeros) {
  // x[3:0:-2] of [0..4]: outputs read x[3], x[1]; dy = [5, 7] -> dx = [0, 7, 0, 5, 0].
  KernelRun r = run_kernel(slice({3}, {0}, {0}, {-2}), {make_tensor({5}, iota_values(5))},
                           {make_tensor({2}, {5, 7})});
  expect_values(r.outputs[0], {3, 1}, 0, "y");
  expect_values(r.grads[0], {0, 7, 0, 5, 0}, 0, "dx");
  Rng rng(23);
  for (const Node& n : {slice({1, -1}, {4, kMin}, {0, 2}, {2, -2}), slice({0}, {-1}, {-1}),
                        slice({5}, {0}, {1}, {-1})}) {
    OpCase c;
    c.label = "slice fd";
    c.node = n;
    c.inputs = {random_tensor({5, 3, 6}, rng)};
    expect_gradient_matches_finite_difference(c, 50);
  }
}

TEST(Slice, SymbolicBatchAndBadAttributesThrow) {
  EXPECT_EQ(infer_shape(slice({1}, {3}, {1}), {{N, 5}}), (Shape{N, 2}));
  EXPECT_EQ(infer_shape(slice({0}, {kMax}, {0}), {{N, 5}}), (Shape{N, 5}));
  expect_error([] { infer_shape(slice({0}, {2}, {0}), {{N, 5}}); }, "symbolic batch");
  expect_error([] { infer_shape(slice({0}, {2}, {0}, {0}), {{4, 5}}); }, "zero step");
  expect_error([] { infer_shape(slice({0, 1}, {2}), {{4, 5}}); }, "same length");
  expect_error([] { infer_shape(slice({0}, {2}, {2}), {{4, 5}}); }, "out of range");
  expect_error([] { infer_shape(slice({0, 0}, {2, 2}, {1, -1}), {{4, 5}}); }, "repeats");
  expect_error(
      [] {
        infer_shape(make_node(OpKind::kSlice, {{"starts", Ints{0}}}), {{4}});
      },
      "required");
  expect_error([] { infer_shape(slice({0}, {1}), {{}}); }, "scalar");
}

// ---- Pad

TEST(Pad, OnnxSpecExamples) {
  // The ONNX operator documentation's 3x2 example, pads [0, 2, 0, 0].
  Tensor x = make_tensor({3, 2}, {1.0, 1.2, 2.3, 3.4, 4.5, 5.7});
  KernelRun r = run_kernel(pad({0, 2, 0, 0}), {x});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{3, 4}));
  expect_values(r.outputs[0], {0, 0, 1.0, 1.2, 0, 0, 2.3, 3.4, 0, 0, 4.5, 5.7}, 1e-6, "constant");
  r = run_kernel(pad({0, 2, 0, 0}, "reflect"), {x});
  expect_values(r.outputs[0], {1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7}, 1e-6,
                "reflect");
  r = run_kernel(pad({0, 2, 0, 0}, "edge"), {x});
  expect_values(r.outputs[0], {1.0, 1.0, 1.0, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7}, 1e-6,
                "edge");
}

TEST(Pad, ReflectAndEdgeMatchNumpy) {
  // numpy.pad(arange(1, 13).reshape(3, 4), ((2, 1), (3, 5)), 'reflect'): pads wider than the
  // input fold again.
  Tensor x = make_tensor({3, 4}, iota_values(12, 1));
  KernelRun r = run_kernel(pad({2, 3, 1, 5}, "reflect"), {x});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{6, 12}));
  expect_values(r.outputs[0],
                {12, 11, 10, 9, 10, 11, 12, 11, 10, 9, 10, 11, 8, 7, 6, 5, 6, 7, 8, 7, 6, 5, 6, 7,
                 4,  3,  2,  1, 2,  3,  4,  3,  2,  1, 2,  3,  8, 7, 6, 5, 6, 7, 8, 7, 6, 5, 6, 7,
                 12, 11, 10, 9, 10, 11, 12, 11, 10, 9, 10, 11, 8, 7, 6, 5, 6, 7, 8, 7, 6, 5, 6, 7},
                0, "reflect 2D");
  // numpy.pad(..., ((1, 2), (2, 1)), 'edge')
  r = run_kernel(pad({1, 2, 2, 1}, "edge"), {x});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{6, 7}));
  expect_values(r.outputs[0],
                {1, 1, 1, 2,  3,  4,  4,  1, 1, 1, 2,  3,  4,  4,  5, 5, 5, 6,  7,  8,  8,
                 9, 9, 9, 10, 11, 12, 12, 9, 9, 9, 10, 11, 12, 12, 9, 9, 9, 10, 11, 12, 12},
                0, "edge 2D");
  // numpy.pad([1, 2, 3], (5, 4), 'reflect') and numpy.pad([7], (2, 1), 'reflect').
  r = run_kernel(pad({5, 4}, "reflect"), {make_tensor({3}, {1, 2, 3})});
  expect_values(r.outputs[0], {2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3}, 0, "reflect 1D wide");
  r = run_kernel(pad({2, 1}, "reflect"), {make_tensor({1}, {7})});
  expect_values(r.outputs[0], {7, 7, 7, 7}, 0, "reflect of one element");
}

TEST(Pad, ConstantOnnxCaseNegativePadsAndDtypes) {
  // test_constant_pad: [1,3,4,5], pads [0,0,1,3,0,0,2,4], value 1.2 -> [1,3,7,12].
  Rng rng(24);
  Tensor x = random_tensor({1, 3, 4, 5}, rng);
  KernelRun r = run_kernel(pad({0, 0, 1, 3, 0, 0, 2, 4}, "constant", 1.2), {x});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{1, 3, 7, 12}));
  const CoordMap inside = [](const std::vector<int64_t>& o, std::vector<int64_t>& i) {
    i = {o[0], o[1], o[2] - 1, o[3] - 3};
    return i[2] >= 0 && i[2] < 4 && i[3] >= 0 && i[3] < 5;
  };
  expect_values(r.outputs[0], naive_gather(x, {1, 3, 7, 12}, inside, 1.2f), 0, "test_constant_pad");
  // Negative pads crop: [1..5] with pads [-1, -2] -> [2, 3]; mixed [-2, 2] -> [3, 4, 5, 9, 9].
  r = run_kernel(pad({-1, -2}), {make_tensor({5}, iota_values(5, 1))});
  expect_values(r.outputs[0], {2, 3}, 0, "crop");
  r = run_kernel(pad({-2, 2}, "constant", 9), {make_tensor({5}, iota_values(5, 1))});
  expect_values(r.outputs[0], {3, 4, 5, 9, 9}, 0, "crop and pad");
  r = run_kernel(pad({-2, 2}, "edge"), {make_tensor({5}, iota_values(5, 1))});
  expect_values(r.outputs[0], {3, 4, 5, 5, 5}, 0, "crop and edge");
  // An empty dimension padded with the constant.
  r = run_kernel(pad({1, 0, 1, 0}, "constant", 4), {make_tensor({0, 3}, {})});
  ASSERT_EQ(r.outputs[0].shape(), (Shape{2, 3}));
  expect_values(r.outputs[0], {4, 4, 4, 4, 4, 4}, 0, "pad of empty");
  // Integer data with a constant value (ONNX's edge/reflect tests use int32 data).
  for (DType dt : {DType::kI64, DType::kI32, DType::kU8}) {
    dense::Run d =
        dense::run(pad({1, 0, 0, 2}, "constant", 7), {typed_tensor({2, 2}, {1, 2, 3, 4}, dt)});
    EXPECT_EQ(d.outputs[0].dtype(), dt);
    EXPECT_EQ(typed_values(d.outputs[0]),
              (std::vector<double>{7, 7, 7, 7, 1, 2, 7, 7, 3, 4, 7, 7}));
    d = dense::run(pad({0, 1, 0, 1}, "reflect"), {typed_tensor({2, 2}, {1, 2, 3, 4}, dt)});
    EXPECT_EQ(typed_values(d.outputs[0]), (std::vector<double>{2, 1, 2, 1, 4, 3, 4, 3}));
  }
}

TEST(Pad, GradientForEveryModeAndParallelPath) {
  // Edge by hand: [a, b] padded (2, 1) reads a a a b b; dy = 1..5 -> da = 1+2+3, db = 4+5.
  KernelRun r = run_kernel(pad({2, 1}, "edge"), {make_tensor({2}, {4, 6})},
                           {make_tensor({5}, {1, 2, 3, 4, 5})});
  expect_values(r.grads[0], {6, 9}, 0, "edge dx");
  Rng rng(25);
  for (const std::string mode : {"constant", "reflect", "edge"}) {
    for (const Ints& pads :
         {Ints{1, 2, 0, 3, 1, 2}, Ints{0, -1, 2, 0, 2, -1}, Ints{0, 4, 1, 0, 3, 2}}) {
      OpCase c;
      c.label = "pad " + mode;
      c.node = pad(pads, mode, 0.5);
      c.inputs = {random_tensor({2, 3, 4}, rng)};
      expect_gradient_matches_finite_difference(c, 50);
    }
  }
  // A padded activation big enough for the parallel forward; values against the oracle.
  Tensor big = random_tensor({2, 16, 60, 70}, rng);
  r = run_kernel(pad({0, 0, 1, 2, 0, 0, 1, 2}, "reflect"), {big});
  const CoordMap reflect = [](const std::vector<int64_t>& o, std::vector<int64_t>& i) {
    auto fold = [](int64_t v, int64_t n) { return v < 0 ? -v : v >= n ? 2 * (n - 1) - v : v; };
    i = {o[0], o[1], fold(o[2] - 1, 60), fold(o[3] - 2, 70)};
    return true;
  };
  expect_values(r.outputs[0], naive_gather(big, {2, 16, 62, 74}, reflect), 0, "big reflect");
}

TEST(Pad, SymbolicBatchAndBadAttributesThrow) {
  EXPECT_EQ(infer_shape(pad({0, 0, 1, 2, 0, 0, 3, 4}), {{N, 3, 5, 5}}), (Shape{N, 3, 9, 11}));
  expect_error([] { infer_shape(pad({1, 0, 0, 0}), {{N, 3}}); }, "symbolic batch");
  expect_error([] { infer_shape(pad({1, 0, 0}), {{2, 3}}); }, "expected 2 * rank = 4");
  expect_error([] { infer_shape(pad({0, 0, 0, 0}, "wrap"), {{2, 3}}); }, "mode");
  expect_error([] { infer_shape(pad({0, -2, 0, -2}), {{2, 3}}); }, "negative size");
  expect_error([] { infer_shape(pad({1, 0}, "edge"), {{0}}); }, "empty dimension");
  expect_error([] { infer_shape(make_node(OpKind::kPad), {{2, 3}}); }, "pads is required");
}

// ---- Gather

Tensor indices(Shape s, const std::vector<double>& v, DType dt = DType::kI64) {
  return typed_tensor(std::move(s), v, dt);
}

// np.take(data, idx, axis) by coordinates.
CoordMap take_map(const Tensor& idx, int axis, int64_t dim) {
  const std::vector<double> iv = typed_values(idx);
  const Shape is = idx.shape();
  return [=](const std::vector<int64_t>& o, std::vector<int64_t>& i) {
    int64_t flat = 0;
    for (size_t k = 0; k < is.size(); ++k) flat = flat * is[k] + o[axis + k];
    int64_t j = static_cast<int64_t>(iv[flat]);
    if (j < 0) j += dim;
    size_t d = 0;
    for (int a = 0; a < axis; ++a) i[d++] = o[a];
    i[d++] = j;
    for (size_t a = axis + is.size(); a < o.size(); ++a) i[d++] = o[a];
    return true;
  };
}

TEST(Gather, OnnxCasesMatchNumpyTake) {
  Rng rng(26);
  struct Case {
    std::string label;
    Shape data;
    Tensor idx;
    int64_t axis;
    Shape out;
  };
  const std::vector<Case> cases = {
      {"test_gather_0", {5, 4, 3, 2}, indices({3}, {0, 1, 3}), 0, {3, 4, 3, 2}},
      {"test_gather_1", {5, 4, 3, 2}, indices({3}, {0, 1, 3}), 1, {5, 3, 3, 2}},
      {"test_gather_2d_indices", {3, 3}, indices({1, 2}, {0, 2}), 1, {3, 1, 2}},
      {"scalar index", {4, 5}, indices({}, {-1}), 0, {5}},
      {"last axis, i32, repeats",
       {2, 3, 7},
       indices({2, 2}, {6, -7, 0, 6}, DType::kI32),
       -1,
       {2, 3, 2, 2}},
      {"empty indices", {4, 3}, indices({0}, {}), 0, {0, 3}},
      {"empty data rows", {4, 0}, indices({2}, {1, 3}), 0, {2, 0}},
      {"parallel", {3, 50, 1000}, indices({40}, iota_values(40, -20)), 1, {3, 40, 1000}},
  };
  for (const Case& c : cases) {
    Tensor data = random_tensor(c.data, rng);
    dense::Run r = dense::run(gather(c.axis), {data, c.idx});
    ASSERT_EQ(r.outputs[0].shape(), c.out) << c.label;
    const int axis = static_cast<int>(c.axis < 0 ? c.axis + c.data.size() : c.axis);
    expect_values(r.outputs[0], naive_gather(data, c.out, take_map(c.idx, axis, c.data[axis])), 0,
                  c.label);
  }
  // test_gather_negative_indices: arange(10)[[0, -9, -10]] = [0, 1, 0].
  dense::Run r =
      dense::run(gather(0), {make_tensor({10}, iota_values(10)), indices({3}, {0, -9, -10})});
  expect_values(r.outputs[0], {0, 1, 0}, 0, "test_gather_negative_indices");
  // Integer data (token ids, shapes).
  r = dense::run(gather(0),
                 {typed_tensor({4}, {10, 20, 30, 40}, DType::kI64), indices({2}, {3, 1})});
  EXPECT_EQ(r.outputs[0].dtype(), DType::kI64);
  EXPECT_EQ(typed_values(r.outputs[0]), (std::vector<double>{40, 20}));
}

TEST(Gather, GradientScatterAdds) {
  // Repeated index: data [4], indices [1, 1, 3], dy [1, 2, 3] -> dx [0, 3, 0, 3].
  dense::Run r = dense::run(gather(0), {make_tensor({4}, {5, 6, 7, 8}), indices({3}, {1, 1, 3})},
                            dense::opts().grads({make_tensor({3}, {1, 2, 3})}));
  expect_values(r.outputs[0], {6, 6, 8}, 0, "y");
  expect_values(r.grads[0], {0, 3, 0, 3}, 0, "dx");
  Rng rng(27);
  for (int64_t axis : {0, 1, -1}) {
    OpCase c;
    c.label = "gather axis " + std::to_string(axis);
    c.node = gather(axis);
    c.inputs = {random_tensor({3, 4, 5}, rng), indices({2, 3}, {0, 2, -1, 2, 2, 1})};
    c.check_grad = {true, false};
    expect_gradient_matches_finite_difference(c, 60);
  }
}

TEST(Gather, OutOfRangeIndexIsARunTimeError) {
  for (double bad : {4.0, -5.0, 1e9}) {
    expect_error(
        [&] {
          dense::run(gather(0), {make_tensor({4, 2}, iota_values(8)), indices({2}, {0, bad})});
        },
        "out of range");
  }
  expect_error(
      [] {
        dense::run(gather(1),
                   {make_tensor({2, 3}, iota_values(6)), indices({1}, {3}, DType::kI32)});
      },
      "index 3");
}

TEST(Gather, InferAndBadInputsThrow) {
  const ValueInfo data{"d", DType::kF32, {N, 7, 3}};
  const ValueInfo idx{"i", DType::kI64, {N, 4}};
  EXPECT_EQ(infer_one(gather(1), {data, idx}).shape, (Shape{N, N, 4, 3}));
  EXPECT_EQ(infer_one(gather(1), {data, ValueInfo{"i", DType::kI32, {}}}).shape, (Shape{N, 3}));
  expect_error([&] { infer_one(gather(3), {data, idx}); }, "out of range");
  expect_error([&] { infer_one(gather(0), {data, idx}); }, "symbolic batch");
  expect_error(
      [&] {
        infer_one(gather(1), {data, ValueInfo{"i", DType::kF32, {2}}});
      },
      "expected i64 or i32");
  expect_error([&] { infer_one(gather(0), {ValueInfo{"d", DType::kF32, {}}, idx}); }, "scalar");
}

}  // namespace
}  // namespace minnow::testing
