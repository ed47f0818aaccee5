// Low-rank factorization: the SVD it rests on, the rewrite (same outputs for a weight of low
// rank, Linear and strided/padded 1x1 Conv2d with bias and fused activation), rank choice by
// rank or energy, and what it refuses.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "passes/factorize.h"
#include "passes/svd.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

std::vector<double> random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> a(static_cast<size_t>(rows * cols));
  for (double& x : a) x = rng.uniform(-1.0f, 1.0f);
  return a;
}

// rows x cols of rank `rank` with singular values 2^-i.
std::vector<double> low_rank(int64_t rows, int64_t cols, int64_t rank, uint64_t seed) {
  std::vector<double> l = random_matrix(rows, rank, seed), r = random_matrix(rank, cols, seed + 1);
  std::vector<double> a(static_cast<size_t>(rows * cols), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t k = 0; k < rank; ++k) {
      for (int64_t j = 0; j < cols; ++j) a[i * cols + j] += l[i * rank + k] * r[k * cols + j];
    }
  }
  return a;
}

TEST(Svd, ReconstructsAndIsOrthonormal) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1}, {1, 7},   {7, 1},  {3, 8},
                                                           {8, 3}, {13, 13}, {40, 25}};
  for (auto [m, n] : shapes) {
    std::vector<double> a = random_matrix(m, n, static_cast<uint64_t>(m * 100 + n));
    Svd d = svd(a, m, n);
    ASSERT_EQ(d.k, std::min(m, n));
    for (int64_t k = 0; k + 1 < d.k; ++k) EXPECT_GE(d.s[k], d.s[k + 1]);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double x = 0;
        for (int64_t k = 0; k < d.k; ++k) x += d.u[i * d.k + k] * d.s[k] * d.vt[k * n + j];
        ASSERT_NEAR(x, a[i * n + j], 1e-10) << m << "x" << n << " at " << i << "," << j;
      }
    }
    for (int64_t p = 0; p < d.k; ++p) {
      for (int64_t q = 0; q < d.k; ++q) {
        double uu = 0, vv = 0;
        for (int64_t i = 0; i < m; ++i) uu += d.u[i * d.k + p] * d.u[i * d.k + q];
        for (int64_t j = 0; j < n; ++j) vv += d.vt[p * n + j] * d.vt[q * n + j];
        EXPECT_NEAR(uu, p == q, 1e-10);
        EXPECT_NEAR(vv, p == q, 1e-10);
      }
    }
  }
}

TEST(Svd, FindsTheRankOfALowRankMatrix) {
  Svd d = svd(low_rank(30, 20, 3, 5), 30, 20);
  EXPECT_GT(d.s[2], 1e-3);
  for (int64_t k = 3; k < d.k; ++k) EXPECT_LT(d.s[k], 1e-10) << k;
  EXPECT_THROW(svd({1.0, NAN}, 1, 2), Error);
  EXPECT_THROW(svd({1.0, 2.0}, 2, 2), Error);
}

Tensor to_tensor(const std::vector<double>& v, Shape shape) {
  Tensor t(DType::kF32, shape);
  for (size_t i = 0; i < v.size(); ++i) t.f32()[i] = static_cast<float>(v[i]);
  return t;
}

Tensor random_input(Shape shape, uint64_t seed) {
  Tensor t(DType::kF32, shape);
  std::vector<double> v = random_matrix(1, t.numel(), seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(v[i]);
  return t;
}

Tensor run(const Graph& g, const Tensor& x) {
  InferenceSession s(g, KernelChoice::kReference, /*optimize=*/false);
  return s.run({{g.inputs[0].name, x}})[0].clone();
}

void expect_close(const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < want.numel(); ++i) {
    ASSERT_NEAR(got.f32()[i], want.f32()[i], tol * (1 + std::fabs(want.f32()[i]))) << i;
  }
}

// x [N, 30] -> fc1 (30 -> 40, weight of rank 4, relu fused) -> fc2 (40 -> 5).
Graph mlp() {
  GraphBuilder b("mlp", 1);
  std::string x = b.input("x", {kDynamic, 30});
  std::string h = b.linear(x, 40, true, "fc1");
  std::string y = b.linear(h, 5, true, "fc2");
  b.output(y);
  Graph g = b.build();
  g.initializers.at("fc1.weight").value = to_tensor(low_rank(40, 30, 4, 7), {40, 30});
  g.find_node("fc1")->attrs.set("activation", std::string("relu"));
  return g;
}

TEST(Factorize, LinearOfLowRankKeepsItsOutputs) {
  Graph g = mlp();
  Graph f = g;
  FactorizeOptions o;
  o.layers = {"fc1"};
  o.rank = 4;
  FactorizeResult r = factorize(f, o);
  ASSERT_EQ(r.factorized.size(), 1u);
  EXPECT_EQ(r.factorized[0].rank, 4);
  EXPECT_NEAR(r.factorized[0].energy, 1.0, 1e-9);
  EXPECT_EQ(r.factorized[0].params_after, 4 * (30 + 40));
  f.validate();
  ASSERT_NE(f.find_node("fc1.v"), nullptr);
  ASSERT_NE(f.find_node("fc1.u"), nullptr);
  EXPECT_EQ(f.find_node("fc1"), nullptr);
  EXPECT_EQ(f.initializers.count("fc1.weight"), 0u);  // the old weight is gone
  EXPECT_EQ(f.initializers.at("fc1.v.weight").value.shape(), (Shape{4, 30}));
  EXPECT_EQ(f.initializers.at("fc1.u.weight").value.shape(), (Shape{40, 4}));
  EXPECT_TRUE(f.initializers.at("fc1.u.weight").trainable);
  // The activation moved to the second layer; the first has none.
  EXPECT_EQ(f.find_node("fc1.u")->attrs.get_string("activation", ""), "relu");
  EXPECT_FALSE(f.find_node("fc1.v")->attrs.has("activation"));
  EXPECT_LT(f.num_params(), g.num_params());
  Tensor x = random_input({3, 30}, 2);
  expect_close(run(f, x), run(g, x), 1e-4);
}

TEST(Factorize, TruncationApproximatesAndEnergyChoosesTheRank) {
  Graph g = mlp();
  // Rank 4 plus noise: full rank, but 90% of the energy lies in a few directions.
  std::vector<double> w = low_rank(40, 30, 4, 3), noise = random_matrix(40, 30, 8);
  for (size_t i = 0; i < w.size(); ++i) w[i] += 0.05 * noise[i];
  Svd d = svd(w, 40, 30);
  g.initializers.at("fc1.weight").value = to_tensor(w, {40, 30});
  double total = 0;
  for (double s : d.s) total += s * s;
  double cum = 0;
  int64_t want = 0;
  while (cum < 0.9 * total) cum += d.s[want] * d.s[want], ++want;
  Graph f = g;
  FactorizeOptions o;
  o.layers = {"fc*"};
  o.energy = 0.9;
  FactorizeResult r = factorize(f, o);
  ASSERT_GE(r.factorized.size(), 1u);
  EXPECT_EQ(r.factorized[0].node, "fc1");
  EXPECT_EQ(r.factorized[0].rank, want);
  EXPECT_GE(r.factorized[0].energy, 0.9);
  EXPECT_LT(want, 5);
  f.validate();
  f.infer_shapes();
}

TEST(Factorize, StridedPaddedOneByOneConv) {
  GraphBuilder b("cnn", 2);
  std::string x = b.input("x", {kDynamic, 12, 7, 7});
  ConvOptions co;
  co.stride = 2;
  co.pad = 1;
  std::string y = b.conv2d(x, 16, 1, co, "pw");
  b.output(y);
  Graph g = b.build();
  g.initializers.at("pw.weight").value = to_tensor(low_rank(16, 12, 3, 11), {16, 12, 1, 1});
  g.find_node("pw")->attrs.set("activation", std::string("relu6"));
  Graph f = g;
  FactorizeOptions o;
  o.rank = 3;
  FactorizeResult r = factorize(f, o);
  ASSERT_EQ(r.factorized.size(), 1u);
  EXPECT_EQ(f.initializers.at("pw.v.weight").value.shape(), (Shape{3, 12, 1, 1}));
  EXPECT_EQ(f.initializers.at("pw.u.weight").value.shape(), (Shape{16, 3, 1, 1}));
  Tensor in = random_input({2, 12, 7, 7}, 4);
  expect_close(run(f, in), run(g, in), 1e-4);
}

TEST(Factorize, SkipsAndRefuses) {
  Graph g = mlp();
  FactorizeOptions o;
  o.rank = 30;  // 30 * 70 > 1200: no saving for fc1; fc2 neither
  Graph f = g;
  FactorizeResult r = factorize(f, o);
  EXPECT_TRUE(r.factorized.empty());
  EXPECT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(f.nodes.size(), g.nodes.size());

  o.layers = {"fc9"};
  o.rank = 2;
  try {
    factorize(f, o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fc9' matches no"), std::string::npos) << e.what();
  }
  EXPECT_EQ(f.nodes.size(), g.nodes.size());  // untouched
  o.layers = {};
  o.energy = 0.5;  // both
  EXPECT_THROW(factorize(f, o), Error);
  o.rank = 0;
  o.energy = 1.5;
  EXPECT_THROW(factorize(f, o), Error);
  o.energy = 0;  // neither
  EXPECT_THROW(factorize(f, o), Error);
}

}  // namespace
}  // namespace minnow
