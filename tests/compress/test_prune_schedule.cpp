// Gradual pruning (Zhu & Gupta cubic schedule) through the training hooks, and sensitivity
// analysis.
#include <gtest/gtest.h>

#include <cmath>

#include "compress/prune_schedule.h"
#include "compress/prune_sensitivity.h"
#include "minnow/error.h"
#include "prune_test_util.h"
#include "train/trainer.h"

namespace minnow {
namespace {

using compress::GradualSchedule;
using prune_test::zeros;

TEST(GradualSchedule, CubicCurve) {
  GradualSchedule s;
  s.initial_sparsity = 0.1;
  s.begin_step = 100;
  s.end_step = 500;
  s.frequency = 50;
  EXPECT_DOUBLE_EQ(compress::scheduled_sparsity(s, 0.9, 0), 0.1);
  EXPECT_DOUBLE_EQ(compress::scheduled_sparsity(s, 0.9, 100), 0.1);
  // Halfway: s_f + (s_i - s_f) * 0.5^3.
  EXPECT_DOUBLE_EQ(compress::scheduled_sparsity(s, 0.9, 300), 0.9 - 0.8 / 8);
  EXPECT_DOUBLE_EQ(compress::scheduled_sparsity(s, 0.9, 400), 0.9 - 0.8 / 64);
  EXPECT_DOUBLE_EQ(compress::scheduled_sparsity(s, 0.9, 500), 0.9);
  EXPECT_DOUBLE_EQ(compress::scheduled_sparsity(s, 0.9, 9000), 0.9);
  // s_i is capped at a layer's lower final sparsity.
  EXPECT_DOUBLE_EQ(compress::scheduled_sparsity(s, 0.05, 100), 0.05);
  // Monotone.
  for (int64_t t = 0; t < 600; ++t) {
    EXPECT_LE(compress::scheduled_sparsity(s, 0.9, t), compress::scheduled_sparsity(s, 0.9, t + 1));
  }
}

TEST(GradualSchedule, PruningSteps) {
  GradualSchedule s;
  s.begin_step = 10;
  s.end_step = 45;
  s.frequency = 10;
  std::vector<int64_t> steps;
  for (int64_t t = 0; t < 100; ++t) {
    if (compress::is_pruning_step(s, t)) steps.push_back(t);
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{10, 20, 30, 40, 45}));
}

TEST(GradualSchedule, ValidationNamesTheFlag) {
  GradualSchedule s;
  s.begin_step = 0;
  s.end_step = 100;
  s.frequency = 10;
  EXPECT_NO_THROW(compress::validate_schedule(s, 200));
  auto message = [](const GradualSchedule& bad, int64_t total) -> std::string {
    try {
      compress::validate_schedule(bad, total);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(s, 100).find("--end-step"), std::string::npos);
  GradualSchedule f = s;
  f.frequency = 0;
  EXPECT_NE(message(f, 200).find("--frequency"), std::string::npos);
  GradualSchedule b = s;
  b.begin_step = 100;
  EXPECT_NE(message(b, 200).find("--begin-step"), std::string::npos);
  GradualSchedule i = s;
  i.initial_sparsity = 1.0;
  EXPECT_NE(message(i, 200).find("--initial-sparsity"), std::string::npos);
}

TEST(GradualPruner, ReachesFinalSparsityAndHoldsIt) {
  Graph g = prune_test::conv_mlp();
  const auto layers = compress::prunable_layers(g);
  passes::MagnitudePlan plan;
  plan.per_layer = {{"conv1.weight", 0.5}, {"fc1.weight", 0.9}, {"logits.weight", 0.7}};
  GradualSchedule s;
  s.begin_step = 2;
  s.end_step = 14;
  s.frequency = 4;
  compress::GradualPruner pruner(g, layers, plan, s);
  TrainConfig c;
  c.epochs = 3;  // 8 steps per epoch: 24 steps, the last 10 at the final sparsity
  c.batch = 16;
  c.lr = 0.05;
  c.optimizer.kind = "sgd";
  c.optimizer.momentum = 0.9;
  std::vector<int64_t> fc1_zeros;  // after every step
  c.after_step = [&](int64_t, std::vector<ParamRef>&) {};
  pruner.install(c);
  auto inner = c.after_step;
  c.after_step = [&](int64_t step, std::vector<ParamRef>& p) {
    inner(step, p);
    fc1_zeros.push_back(zeros(g.initializers.at("fc1.weight").value));
  };
  train_model(g, prune_test::lines_dataset(128, 2), prune_test::unit_norm(), c);

  const int64_t n = 16 * 256;
  EXPECT_EQ(zeros(g.initializers.at("fc1.weight").value), std::llround(0.9 * n));
  EXPECT_EQ(zeros(g.initializers.at("conv1.weight").value), 18);
  EXPECT_EQ(zeros(g.initializers.at("logits.weight").value), std::llround(0.7 * 48));
  ASSERT_EQ(fc1_zeros.size(), 24u);
  EXPECT_EQ(fc1_zeros[0], 0);  // before t0 (s_i = 0)
  EXPECT_EQ(fc1_zeros[1], 0);
  for (size_t t = 1; t < fc1_zeros.size(); ++t) EXPECT_GE(fc1_zeros[t], fc1_zeros[t - 1]);
  // Between pruning steps the count is held (masks), and it moves on the schedule.
  EXPECT_EQ(fc1_zeros[6], std::llround(compress::scheduled_sparsity(s, 0.9, 6) * n));
  EXPECT_EQ(fc1_zeros[7], fc1_zeros[6]);
  for (size_t t = 14; t < 24; ++t) EXPECT_EQ(fc1_zeros[t], std::llround(0.9 * n));

  const auto& events = pruner.events();
  ASSERT_EQ(events.size(), 4u);  // steps 2, 6, 10, 14
  EXPECT_EQ(events[0].step, 2);
  EXPECT_EQ(events.back().step, 14);
  EXPECT_DOUBLE_EQ(events.back().target, 0.9);
  EXPECT_NEAR(events.back().achieved, (0.5 * 36 + 0.9 * n + 0.7 * 48) / (36 + n + 48), 1e-3);
}

TEST(GradualPruner, GlobalThreshold) {
  Graph g = prune_test::conv_mlp();
  passes::MagnitudePlan plan;
  plan.global = {"conv1.weight", "fc1.weight", "logits.weight"};
  plan.global_sparsity = 0.85;
  GradualSchedule s;
  s.end_step = 8;
  s.frequency = 2;
  compress::GradualPruner pruner(g, compress::prunable_layers(g), plan, s);
  TrainConfig c;
  c.epochs = 2;
  c.batch = 16;
  c.lr = 0.01;
  pruner.install(c);
  train_model(g, prune_test::lines_dataset(128, 3), prune_test::unit_norm(), c);
  const int64_t z = zeros(g.initializers.at("conv1.weight").value) +
                    zeros(g.initializers.at("fc1.weight").value) +
                    zeros(g.initializers.at("logits.weight").value);
  EXPECT_EQ(z, std::llround(0.85 * (36 + 4096 + 48)));
}

TEST(Sensitivity, CurvesAndRestoresTheModel) {
  Graph g = prune_test::conv_mlp();
  data::Dataset train = prune_test::lines_dataset(256, 4), test = prune_test::lines_dataset(90, 5);
  TrainConfig c;
  c.epochs = 4;
  c.batch = 16;
  c.lr = 1e-2;
  train_model(g, train, prune_test::unit_norm(), c);
  Graph before = g;
  std::vector<float> fc1(before.initializers.at("fc1.weight").value.f32(),
                         before.initializers.at("fc1.weight").value.f32() + 4096);
  compress::SensitivityOptions o;
  o.sparsities = {0.5, 1.0};
  o.max_samples = 60;
  const auto layers = compress::prunable_layers(g);
  compress::SensitivityResult r =
      compress::analyze_sensitivity(g, layers, test, prune_test::unit_norm(), o);
  EXPECT_EQ(r.samples, 60);
  EXPECT_GT(r.baseline_acc, 0.55);  // chance: 1/3
  ASSERT_EQ(r.layers.size(), 3u);
  for (const auto& l : r.layers) ASSERT_EQ(l.accuracy.size(), 2u);
  // All of the classifier's weights gone: the logits are the biases alone, one class for all.
  EXPECT_LT(r.layers[2].accuracy[1], 0.5);
  EXPECT_LT(r.layers[2].accuracy[1], r.baseline_acc - 0.1);
  // The model is as it was.
  EXPECT_EQ(zeros(g.initializers.at("fc1.weight").value), 0);
  for (int64_t i = 0; i < 4096; ++i) {
    ASSERT_EQ(g.initializers.at("fc1.weight").value.f32()[i], fc1[static_cast<size_t>(i)]);
  }
  nlohmann::json j = compress::to_json(r);
  EXPECT_EQ(j["layers"][2]["name"], "logits");
  EXPECT_EQ(j["sparsities"].size(), 2u);
}

TEST(Sensitivity, BudgetPicksLargestSafeRatio) {
  compress::SensitivityResult r;
  r.sparsities = {0.5, 0.7, 0.9};
  r.baseline_acc = 0.90;
  r.layers = {{"a", "a.weight", 10, {0.90, 0.895, 0.85}},
              {"b", "b.weight", 10, {0.89, 0.80, 0.70}},
              {"c", "c.weight", 10, {0.70, 0.60, 0.50}},
              {"d", "d.weight", 10, {0.91, 0.50, 0.90}}};
  auto ratios = compress::ratios_within_budget(r, 1.0);
  EXPECT_DOUBLE_EQ(ratios.at("a.weight"), 0.7);
  EXPECT_DOUBLE_EQ(ratios.at("b.weight"), 0.5);
  EXPECT_EQ(ratios.count("c.weight"), 0u);
  EXPECT_DOUBLE_EQ(ratios.at("d.weight"), 0.9);  // not monotone: the largest safe one
  EXPECT_THROW(compress::ratios_within_budget(r, -1), Error);
  Graph g = prune_test::conv_mlp();
  compress::SensitivityOptions bad;
  bad.sparsities = {1.5};
  EXPECT_THROW(
      compress::analyze_sensitivity(g, compress::prunable_layers(g),
                                    prune_test::lines_dataset(10, 1), prune_test::unit_norm(), bad),
      Error);
}

}  // namespace
}  // namespace minnow
