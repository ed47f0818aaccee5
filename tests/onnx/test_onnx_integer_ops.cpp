// ONNX ConvInteger, MatMulInteger, QLinearMatMul and QLinearConv (u8 weights) through the
// importer and the inference session, against plain C++ integer references.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "minnow/error.h"
#include "onnx/import_context.h"
#include "onnx/onnx_import.h"
#include "onnx/onnx_tensor.h"
#include "runtime/inference_session.h"

namespace minnow::onnx {
namespace {

using ::onnx::TensorProto;

// A one-node ONNX model whose inputs are all graph inputs (as in ONNX's node tests).
struct OneNodeModel {
  ::onnx::ModelProto m;
  ::onnx::NodeProto* node;
  std::map<std::string, Tensor> feeds;

  explicit OneNodeModel(const std::string& op) {
    m.set_ir_version(8);
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(13);
    m.mutable_graph()->set_name("test");
    node = m.mutable_graph()->add_node();
    node->set_op_type(op);
    node->set_name("the_" + op);
    node->add_output("y");
    m.mutable_graph()->add_output()->set_name("y");
  }
  // Appends node input `name` (empty: an absent optional input); non-empty ones become graph
  // inputs fed with `t`.
  void input(const std::string& name, const Tensor& t) {
    node->add_input(name);
    if (name.empty()) return;
    auto* v = m.mutable_graph()->add_input();
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(dtype_to_onnx(t.dtype()));
    auto* s = tt->mutable_shape();
    for (int64_t d : t.shape()) s->add_dim()->set_dim_value(d);
    feeds.emplace(name, t);
  }
  void ints_attr(const std::string& name, std::vector<int64_t> v) {
    auto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  // Runs with the fast kernel choice, optimized, and checks that the reference kernels without
  // the session's rewrites give the same bytes.
  Tensor run() const {
    const std::string b = m.SerializeAsString();
    const Graph g = import_onnx_bytes(b.data(), b.size(), "model.onnx");
    InferenceSession fast(g);
    InferenceSession ref(g, KernelChoice::kReference, /*optimize=*/false);
    Tensor y = fast.run(feeds)[0].clone();
    const Tensor& r = ref.run(feeds)[0];
    EXPECT_EQ(r.dtype(), y.dtype());
    EXPECT_EQ(r.shape(), y.shape());
    EXPECT_EQ(std::memcmp(r.raw(), y.raw(), std::min(r.nbytes(), y.nbytes())), 0);
    return y;
  }
};

template <class T>
Tensor random_tensor(DType dt, Shape shape, int lo, int hi, std::mt19937& rng) {
  Tensor t(dt, std::move(shape));
  std::uniform_int_distribution<int> d(lo, hi);
  T* p = static_cast<T*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(d(rng));
  return t;
}
Tensor random_u8(Shape s, std::mt19937& rng) {
  return random_tensor<uint8_t>(DType::kU8, std::move(s), 0, 255, rng);
}
Tensor random_i8(Shape s, std::mt19937& rng) {
  return random_tensor<int8_t>(DType::kI8, std::move(s), -128, 127, rng);
}
Tensor f32_tensor(Shape s, std::vector<float> v) {
  Tensor t(DType::kF32, std::move(s));
  std::copy(v.begin(), v.end(), t.f32());
  return t;
}

// Element i of an integer tensor of any dtype.
int64_t at(const Tensor& t, int64_t i) { return static_cast<int64_t>(element_as_double(t, i)); }

// ONNX's requantization: multiplier in f32, product in f64, round half to even, saturate.
int64_t requantize(int64_t acc, float s1, float s2, float s3, int64_t zp, bool is_u8) {
  const float m = s1 * s2 / s3;
  const double r = std::nearbyint(static_cast<double>(acc) * static_cast<double>(m) + zp);
  return static_cast<int64_t>(std::clamp(r, is_u8 ? 0.0 : -128.0, is_u8 ? 255.0 : 127.0));
}

// Integer A[M,K] @ B[K,N] with per-row and per-column zero points.
std::vector<int64_t> matmul_ref(const Tensor& a, const Tensor& b, const std::vector<int64_t>& azp,
                                const std::vector<int64_t>& bzp) {
  const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
  std::vector<int64_t> y(m * n, 0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      int64_t s = 0;
      for (int64_t p = 0; p < k; ++p) {
        s += (at(a, i * k + p) - azp[azp.size() == 1 ? 0 : i]) *
             (at(b, p * n + j) - bzp[bzp.size() == 1 ? 0 : j]);
      }
      y[i * n + j] = s;
    }
  }
  return y;
}

TEST(OnnxIntegerOps, ConvIntegerPerChannelZeroPointWithPaddingAndStride) {
  std::mt19937 rng(1);
  const int64_t n = 2, c = 3, h = 5, w = 6, m = 4, kh = 3, kw = 2, sh = 2, sw = 1;
  const int64_t pt = 1, pl = 0, pb = 2, pr = 1;
  Tensor x = random_u8({n, c, h, w}, rng), wt = random_u8({m, c, kh, kw}, rng);
  Tensor xzp = random_u8({}, rng), wzp = random_u8({m}, rng);
  OneNodeModel mdl("ConvInteger");
  mdl.input("x", x);
  mdl.input("w", wt);
  mdl.input("x_zero_point", xzp);
  mdl.input("w_zero_point", wzp);
  mdl.ints_attr("pads", {pt, pl, pb, pr});
  mdl.ints_attr("strides", {sh, sw});
  const Tensor y = mdl.run();
  const int64_t oh = (h + pt + pb - kh) / sh + 1, ow = (w + pl + pr - kw) / sw + 1;
  ASSERT_EQ(y.dtype(), DType::kI32);
  ASSERT_EQ(y.shape(), (Shape{n, m, oh, ow}));
  const int64_t xz = at(xzp, 0);
  int64_t checked = 0;
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t o = 0; o < m; ++o) {
      for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
          int64_t s = 0;
          for (int64_t ci = 0; ci < c; ++ci) {
            for (int64_t u = 0; u < kh; ++u) {
              for (int64_t v = 0; v < kw; ++v) {
                const int64_t yy = i * sh - pt + u, xx = j * sw - pl + v;
                // ONNX pads the zero-point-subtracted input with zeros.
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                s += (at(x, ((b * c + ci) * h + yy) * w + xx) - xz) *
                     (at(wt, ((o * c + ci) * kh + u) * kw + v) - at(wzp, o));
              }
            }
          }
          ASSERT_EQ(at(y, ((b * m + o) * oh + i) * ow + j), s) << b << "," << o << "," << i;
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, y.numel());
}

// MatMulInteger(A, B, a_zero_point, b_zero_point) imported and run by minnow.
Tensor run_matmul_integer(const Tensor& a, const Tensor& b, const Tensor& azp, const Tensor& bzp) {
  OneNodeModel mdl("MatMulInteger");
  mdl.input("A", a);
  mdl.input("B", b);
  mdl.input("a_zero_point", azp);
  mdl.input("b_zero_point", bzp);
  return mdl.run();
}

TEST(OnnxIntegerOps, MatMulIntegerPerRowAndPerColumnZeroPoints) {
  std::mt19937 rng(2);
  const int64_t m = 3, k = 7, n = 5;
  Tensor a = random_u8({m, k}, rng), b = random_i8({k, n}, rng);
  Tensor azp = random_u8({m}, rng), bzp = random_i8({n}, rng);
  const Tensor y = run_matmul_integer(a, b, azp, bzp);
  ASSERT_EQ(y.dtype(), DType::kI32);
  ASSERT_EQ(y.shape(), (Shape{m, n}));
  std::vector<int64_t> az, bz;
  for (int64_t i = 0; i < m; ++i) az.push_back(at(azp, i));
  for (int64_t j = 0; j < n; ++j) bz.push_back(at(bzp, j));
  const std::vector<int64_t> want = matmul_ref(a, b, az, bz);
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(at(y, i), want[i]) << "element " << i;
}

TEST(OnnxIntegerOps, MatMulIntegerIsExactForALongReduction) {
  // K = 2000 products of up to 255 * 255: sums near 1.3e8, beyond f32's exact integers (2^24).
  std::mt19937 rng(3);
  const int64_t m = 2, k = 2000, n = 3;
  Tensor a = random_u8({m, k}, rng), b = random_u8({k, n}, rng);
  Tensor azp(DType::kU8, {}), bzp(DType::kU8, {});
  static_cast<uint8_t*>(azp.raw())[0] = 0;
  static_cast<uint8_t*>(bzp.raw())[0] = 255;  // b - 255 is in [-255, 0]
  const Tensor y = run_matmul_integer(a, b, azp, bzp);
  const std::vector<int64_t> want = matmul_ref(a, b, {0}, {255});
  int64_t largest = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    EXPECT_EQ(at(y, i), want[i]) << "element " << i;
    largest = std::max(largest, std::abs(want[i]));
  }
  EXPECT_GT(largest, int64_t{1} << 24);
}

// QLinearMatMul of dtype T (u8 or i8) with per-tensor parameters, against the reference.
void check_qlinear_matmul(bool is_u8, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t m = 5, n = 6;
  const int mid = is_u8 ? 128 : 0;
  auto rand = [&](const Shape& s) { return is_u8 ? random_u8(s, rng) : random_i8(s, rng); };
  // Zero points near the middle of the range keep the accumulators centred on 0.
  auto zero_point = [&](int spread) {
    const DType t = is_u8 ? DType::kU8 : DType::kI8;
    return is_u8 ? random_tensor<uint8_t>(t, {}, mid - spread, mid + spread, rng)
                 : random_tensor<int8_t>(t, {}, mid - spread, mid + spread, rng);
  };
  Tensor a = rand({m, k}), b = rand({k, n});
  Tensor azp = zero_point(10), bzp = zero_point(10), yzp = zero_point(5);
  const std::vector<int64_t> acc = matmul_ref(a, b, {at(azp, 0)}, {at(bzp, 0)});
  int64_t spread = 1;
  for (int64_t v : acc) spread = std::max(spread, std::abs(v));
  const float as = 0.0123f, bs = 0.0471f;
  // The largest accumulator maps to +-140 around y_zero_point: most outputs land inside the
  // range (where rounding shows), the extremes saturate.
  const float ys = as * bs * static_cast<float>(spread) / 140.0f;
  OneNodeModel mdl("QLinearMatMul");
  mdl.input("a", a);
  mdl.input("a_scale", f32_tensor({}, {as}));
  mdl.input("a_zero_point", azp);
  mdl.input("b", b);
  mdl.input("b_scale", f32_tensor({1}, {bs}));
  mdl.input("b_zero_point", bzp);
  mdl.input("y_scale", f32_tensor({}, {ys}));
  mdl.input("y_zero_point", yzp);
  const Tensor y = mdl.run();
  ASSERT_EQ(y.dtype(), is_u8 ? DType::kU8 : DType::kI8);
  ASSERT_EQ(y.shape(), (Shape{m, n}));
  int64_t inside = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int64_t want = requantize(acc[i], as, bs, ys, at(yzp, 0), is_u8);
    EXPECT_EQ(at(y, i), want) << "element " << i;
    inside += want > mid - 128 && want < mid + 127;
  }
  EXPECT_GT(inside, y.numel() / 2);
}

TEST(OnnxIntegerOps, QLinearMatMulU8) { check_qlinear_matmul(true, 9, 4); }
TEST(OnnxIntegerOps, QLinearMatMulI8) { check_qlinear_matmul(false, 9, 5); }
TEST(OnnxIntegerOps, QLinearMatMulLongReduction) { check_qlinear_matmul(true, 2000, 6); }

TEST(OnnxIntegerOps, QLinearConvWithU8WeightsAndBias) {
  std::mt19937 rng(7);
  const int64_t c = 2, h = 4, w = 5, m = 3;
  Tensor x = random_u8({1, c, h, w}, rng), wt = random_u8({m, c, 3, 3}, rng);
  Tensor xzp = random_u8({}, rng), wzp = random_u8({m}, rng), yzp = random_u8({}, rng);
  Tensor bias = random_tensor<int32_t>(DType::kI32, {m}, -5000, 5000, rng);
  const std::vector<float> ws{0.011f, 0.023f, 0.0071f};
  const float xs = 0.05f, ys = 3.5f;
  OneNodeModel mdl("QLinearConv");
  mdl.input("x", x);
  mdl.input("x_scale", f32_tensor({}, {xs}));
  mdl.input("x_zero_point", xzp);
  mdl.input("w", wt);
  mdl.input("w_scale", f32_tensor({m}, ws));
  mdl.input("w_zero_point", wzp);
  mdl.input("y_scale", f32_tensor({}, {ys}));
  mdl.input("y_zero_point", yzp);
  mdl.input("B", bias);
  mdl.ints_attr("pads", {1, 1, 1, 1});
  const Tensor y = mdl.run();
  ASSERT_EQ(y.dtype(), DType::kU8);
  ASSERT_EQ(y.shape(), (Shape{1, m, h, w}));
  for (int64_t o = 0; o < m; ++o) {
    for (int64_t i = 0; i < h; ++i) {
      for (int64_t j = 0; j < w; ++j) {
        int64_t s = at(bias, o);
        for (int64_t ci = 0; ci < c; ++ci) {
          for (int64_t u = 0; u < 3; ++u) {
            for (int64_t v = 0; v < 3; ++v) {
              const int64_t yy = i - 1 + u, xx = j - 1 + v;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              s += (at(x, (ci * h + yy) * w + xx) - at(xzp, 0)) *
                   (at(wt, ((o * c + ci) * 3 + u) * 3 + v) - at(wzp, o));
            }
          }
        }
        EXPECT_EQ(at(y, (o * h + i) * w + j), requantize(s, xs, ws[o], ys, at(yzp, 0), true))
            << o << "," << i << "," << j;
      }
    }
  }
}

TEST(OnnxIntegerOps, ThreeDimensionalConvIntegerIsUnsupported) {
  std::mt19937 rng(8);
  OneNodeModel mdl("ConvInteger");
  mdl.input("x", random_u8({1, 1, 3, 3, 3}, rng));
  mdl.input("w", random_u8({1, 1, 2, 2, 2}, rng));
  try {
    mdl.run();
    FAIL() << "a 3-D ConvInteger imported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only 2-D ConvInteger"), std::string::npos) << e.what();
  }
}

TEST(OnnxIntegerOps, PerRowZeroPointOfTheWrongLengthIsAnError) {
  std::mt19937 rng(9);
  OneNodeModel mdl("MatMulInteger");
  mdl.input("A", random_u8({3, 4}, rng));
  mdl.input("B", random_u8({4, 2}, rng));
  mdl.input("a_zero_point", random_u8({2}, rng));
  try {
    mdl.run();
    FAIL() << "a 2-element a_zero_point for 3 rows imported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a_zero_point"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minnow::onnx
