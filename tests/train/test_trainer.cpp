#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "compress/synthetic_data.h"
#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "train/trainer.h"
#include "train/training_session.h"

namespace minnow {
namespace {

// Three classes of 8x8 images (a bright row, column or diagonal plus noise): learnable, but not
// by a constant.
data::Dataset synthetic(int64_t n, uint64_t seed) { return testing::lines_dataset(n, seed); }

Graph small_model(double dropout = 0.0) {
  zoo::ZooOptions o;
  o.input_shape = {1, 8, 8};
  o.classes = 3;
  o.hidden = {32};
  o.dropout = dropout;
  o.seed = 3;
  return zoo::build("mlp", o);
}

data::Normalization unit_norm() { return {{0.0f}, {1.0f}}; }

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
           std::to_string(reinterpret_cast<uintptr_t>(&name))))
      .string();
}

bool same_weights(const Graph& a, const Graph& b) {
  for (const auto& [name, init] : a.initializers) {
    const Tensor& t = b.initializers.at(name).value;
    if (t.nbytes() != init.value.nbytes() ||
        std::memcmp(t.raw(), init.value.raw(), t.nbytes()) != 0) {
      return false;
    }
  }
  return true;
}

TEST(Trainer, LearnsASyntheticTask) {
  data::Dataset train = synthetic(600, 1), test = synthetic(300, 2);
  Graph g = small_model();
  TrainConfig c;
  c.epochs = 4;
  c.batch = 32;
  c.lr = 3e-3;
  TrainResult r = train_model(g, train, unit_norm(), c);
  EXPECT_EQ(r.epochs_run, 4);
  EXPECT_EQ(r.steps, 4 * ((600 + 31) / 32));
  EvalResult e = evaluate_model(g, test, unit_norm());
  EXPECT_GT(e.accuracy, 0.9) << "test loss " << e.loss;
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
}

TEST(Trainer, SameSeedGivesBitIdenticalWeights) {
  data::Dataset train = synthetic(300, 1);
  TrainConfig c;
  c.epochs = 2;
  c.batch = 16;
  c.augment.shift = 1;
  Graph a = small_model(0.2), b = small_model(0.2);
  train_model(a, train, unit_norm(), c);
  train_model(b, train, unit_norm(), c);
  EXPECT_TRUE(same_weights(a, b));
  Graph d = small_model(0.2);
  c.seed = 5;
  train_model(d, train, unit_norm(), c);
  EXPECT_FALSE(same_weights(a, d));
}

TEST(Trainer, ResumeFromCheckpointReachesTheSameWeights) {
  data::Dataset train = synthetic(300, 1);
  TrainConfig c;
  c.epochs = 3;
  c.batch = 16;
  c.augment.shift = 1;
  c.val_split = 0.1;
  c.optimizer.kind = "sgd";
  c.optimizer.momentum = 0.9;
  c.lr = 0.05;
  c.schedule.kind = "cosine";
  Graph full = small_model(0.2);
  train_model(full, train, unit_norm(), c);

  std::string ckpt = temp_path("minnow_resume") + ".ckpt";
  Graph part = small_model(0.2);
  TrainConfig first = c;
  first.checkpoint_path = ckpt;
  first.stop_after_epoch = 1;  // as if killed after the first epoch's checkpoint
  TrainResult r1 = train_model(part, train, unit_norm(), first);
  EXPECT_EQ(r1.epochs_run, 1);
  EXPECT_FALSE(same_weights(full, part));

  Graph resumed = small_model(0.2);  // replaced by the checkpoint's graph
  TrainConfig second = c;
  second.resume_path = ckpt;
  TrainResult r2 = train_model(resumed, train, unit_norm(), second);
  EXPECT_EQ(r2.epochs_run, 3);
  EXPECT_EQ(r2.history.size(), 3u);
  EXPECT_TRUE(same_weights(full, resumed));

  TrainConfig changed = second;
  changed.batch = 8;
  Graph other = small_model(0.2);
  EXPECT_THROW(train_model(other, train, unit_norm(), changed), Error);
  std::filesystem::remove(ckpt);
}

TEST(Trainer, NonFiniteLossNamesStepAndNode) {
  data::Dataset train = synthetic(200, 1);
  Graph g = small_model();
  TrainConfig c;
  c.optimizer.kind = "sgd";
  c.lr = 1e30;
  c.batch = 16;
  try {
    train_model(g, train, unit_norm(), c);
    FAIL() << "expected divergence";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("diverged"), std::string::npos) << msg;
    EXPECT_NE(msg.find("epoch 1 step"), std::string::npos) << msg;
    EXPECT_NE(msg.find("first non-finite output: node"), std::string::npos) << msg;
  }
}

TEST(Trainer, EarlyStoppingStopsWhenValidationStalls) {
  data::Dataset train = synthetic(200, 1);
  Graph g = small_model();
  TrainConfig c;
  c.epochs = 10;
  c.lr = 1e-12;  // nothing changes: validation accuracy never improves after epoch 1
  c.val_split = 0.2;
  c.patience = 2;
  TrainResult r = train_model(g, train, unit_norm(), c);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.epochs_run, 3);
}

TEST(Trainer, BadConfigurationIsAnError) {
  data::Dataset train = synthetic(50, 1);
  Graph g = small_model();
  TrainConfig c;
  c.epochs = -1;
  EXPECT_THROW(train_model(g, train, unit_norm(), c), Error);
  c.epochs = 1;
  c.batch = 0;
  EXPECT_THROW(train_model(g, train, unit_norm(), c), Error);
  c.batch = 8;
  c.optimizer.kind = "nope";
  EXPECT_THROW(train_model(g, train, unit_norm(), c), Error);
}

// Parameter gradients of a graph with fan-out (a value read by two nodes) against central
// differences of the session's own loss, in f32 with a loose tolerance.
TEST(TrainingSession, FanOutGradientsMatchFiniteDifferences) {
  GraphBuilder b("fanout", 11);
  std::string x = b.input("input", {kDynamic, 6});
  std::string h = b.linear(x, 5, true, "fc1");
  std::string r = b.relu(h);
  std::string s = b.op(OpKind::kAdd, {r, h}, {}, "skip");
  std::string y = b.linear(s, 3, true, "fc2");
  b.output(y);
  Graph g = b.build();
  Rng rng(4);
  Tensor xs(DType::kF32, {4, 6});
  for (int64_t i = 0; i < xs.numel(); ++i) xs.f32()[i] = rng.uniform(-1, 1);
  Tensor ys(DType::kI64, {4});
  for (int i = 0; i < 4; ++i) ys.data<int64_t>()[i] = i % 3;
  TrainingSession session(g, SessionOptions{});
  Rng step_rng(0);
  session.train_step(xs, ys, step_rng);
  for (ParamRef& p : session.params()) {
    Tensor analytic = p.grad.clone();
    for (int64_t i = 0; i < p.value.numel(); i += 3) {
      float saved = p.value.f32()[i];
      const float eps = 1e-2f;
      p.value.f32()[i] = saved + eps;
      double lp = session.evaluate(xs, ys);
      p.value.f32()[i] = saved - eps;
      double lm = session.evaluate(xs, ys);
      p.value.f32()[i] = saved;
      double numeric = (lp - lm) / (2 * eps);
      EXPECT_NEAR(analytic.f32()[i], numeric, 2e-3 + 2e-2 * std::abs(numeric))
          << p.name << "[" << i << "]";
    }
  }
}

}  // namespace
}  // namespace minnow
