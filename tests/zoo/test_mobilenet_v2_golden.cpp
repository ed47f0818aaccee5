// The zoo's mobilenet_v2 against PyTorch (tests/golden/gen_mobilenet_v2.py): same weights, same
// input; eval-mode output, train-mode output and the gradient of sum(out * R) w.r.t. every
// parameter must agree within 1e-4 (absolute + relative).
//
// The gradient of sum(out * R) comes from TrainingSession's MSE loss with a crafted target:
// L = mean((out - t)^2) over the N*C = 20 logits has dL/dout = (out - t) / 10, so the target
// t = out - 10 R gives dL/dout = R exactly (up to float rounding of t), hence dL/dw = d sum(out*R)
// / dw. `out` is the train-mode output, which a first train_step yields (it does not depend on
// the target, and no optimizer step runs between the two steps).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/npy.h"
#include "minnow/zoo.h"
#include "runtime/inference_session.h"
#include "train/training_session.h"

namespace minnow {
namespace {

const std::string kDir = std::string(MINNOW_SOURCE_DIR) + "/tests/golden/mobilenet_v2/";

struct ManifestRow {
  std::string name;
  bool trainable;
  Shape shape;
};

std::vector<ManifestRow> read_manifest() {
  std::ifstream f(kDir + "manifest.txt");
  EXPECT_TRUE(f) << "cannot open " << kDir << "manifest.txt";
  std::vector<ManifestRow> rows;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    ManifestRow r;
    int trainable = 0;
    std::string dims;
    ls >> r.name >> trainable >> dims;
    r.trainable = trainable != 0;
    std::istringstream ds(dims);
    for (std::string d; std::getline(ds, d, 'x');) r.shape.push_back(std::stoll(d));
    rows.push_back(r);
  }
  return rows;
}

// Returns the largest error as a fraction of its tolerance.
double expect_close(const float* got, const float* want, int64_t n, const std::string& what) {
  int bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double err = std::abs(double(got[i]) - double(want[i]));
    const double tol = 1e-4 * (1.0 + std::abs(double(want[i])));
    worst = std::max(worst, err / tol);
    if (!(err <= tol) && bad++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: minnow " << got[i] << " vs PyTorch " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << n << " values differ";
  return worst;
}

TEST(MobileNetV2Golden, ForwardAndGradientsMatchPyTorch) {
  zoo::ZooOptions o;
  o.input_shape = {1, 28, 28};
  Graph g = zoo::build("mobilenet_v2", o);

  // Load every initializer; the manifest must name exactly the graph's initializers.
  const std::vector<ManifestRow> manifest = read_manifest();
  ASSERT_EQ(manifest.size(), g.initializers.size());
  const Tensor weights = io::read_npy(kDir + "weights.npy");
  int64_t off = 0;
  for (const ManifestRow& r : manifest) {
    auto it = g.initializers.find(r.name);
    ASSERT_NE(it, g.initializers.end()) << "PyTorch has '" << r.name << "', minnow does not";
    Tensor& t = it->second.value;
    ASSERT_EQ(t.shape(), r.shape) << r.name;
    ASSERT_EQ(it->second.trainable, r.trainable) << r.name;
    ASSERT_LE(off + t.numel(), weights.numel());
    std::copy(weights.f32() + off, weights.f32() + off + t.numel(), t.f32());
    off += t.numel();
  }
  ASSERT_EQ(off, weights.numel());

  const Tensor x = io::read_npy(kDir + "input.npy");
  const Tensor r = io::read_npy(kDir + "r.npy");
  const Tensor out_eval = io::read_npy(kDir + "out_eval.npy");
  const Tensor out_train = io::read_npy(kDir + "out_train.npy");
  const Tensor grads = io::read_npy(kDir + "grads.npy");
  ASSERT_EQ(x.shape(), (Shape{2, 1, 28, 28}));
  ASSERT_EQ(r.shape(), (Shape{2, 10}));

  // Eval mode (running statistics). The session copies the graph before training touches it.
  {
    InferenceSession s(g);
    const Tensor& y = s.run({{"input", x}})[0];
    ASSERT_EQ(y.shape(), out_eval.shape());
    const double w = expect_close(y.f32(), out_eval.f32(), y.numel(), "eval output");
    std::printf("eval output: worst error %.3g of tolerance\n", w);
  }

  // Train mode: batch statistics; then the gradient of sum(out * R).
  SessionOptions so;
  so.loss = LossKind::kMse;
  TrainingSession session(g, so);
  Rng rng(0);
  Tensor target(DType::kF32, {2, 10});
  session.train_step(x, target, rng);
  const Tensor out = session.logits().clone();
  ASSERT_EQ(out.shape(), out_train.shape());
  std::printf("train output: worst error %.3g of tolerance\n",
              expect_close(out.f32(), out_train.f32(), out.numel(), "train output"));
  const double half_count = out.numel() / 2.0;  // dL/dout = 2 (out - t) / numel
  for (int64_t i = 0; i < out.numel(); ++i) {
    target.f32()[i] = static_cast<float>(out.f32()[i] - half_count * r.f32()[i]);
  }
  session.train_step(x, target, rng);
  expect_close(session.logits().f32(), out.f32(), out.numel(), "train output, second step");

  off = 0;
  int checked = 0;
  double worst = 0;
  for (const ManifestRow& row : manifest) {
    if (!row.trainable) continue;
    const ParamRef* p = nullptr;
    for (const ParamRef& q : session.params()) {
      if (q.name == row.name) p = &q;
    }
    ASSERT_NE(p, nullptr) << row.name << " is not a session parameter";
    ASSERT_LE(off + p->grad.numel(), grads.numel());
    worst = std::max(
        worst, expect_close(p->grad.f32(), grads.f32() + off, p->grad.numel(), "grad " + row.name));
    off += p->grad.numel();
    ++checked;
  }
  std::printf("gradients: worst error %.3g of tolerance\n", worst);
  EXPECT_EQ(off, grads.numel());
  EXPECT_EQ(off, 70250);
  EXPECT_EQ(checked, static_cast<int>(session.params().size()));
}

}  // namespace
}  // namespace minnow
