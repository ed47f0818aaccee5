// Knowledge distillation: the distillation loss in the training session (alpha 0 is plain
// cross-entropy, a student equal to its teacher has no soft loss), the hint adapter (trained,
// never in the caller's graph), the teacher's per-epoch cache, and a training run in which the
// student learns the teacher's function.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "compress/distill.h"
#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "runtime/inference_session.h"
#include "synthetic_data.h"
#include "train/trainer.h"
#include "train/training_session.h"

namespace minnow {
namespace {

Graph mlp(std::vector<int64_t> hidden, uint64_t seed) {
  zoo::ZooOptions o;
  o.input_shape = {1, 8, 8};
  o.classes = 3;
  o.hidden = std::move(hidden);
  o.seed = seed;
  return zoo::build("mlp", o);
}

// A small CNN with named nodes, for the 4-d hint path.
Graph cnn(int64_t channels, uint64_t seed) {
  GraphBuilder b("cnn", seed);
  std::string x = b.input("input", {kDynamic, 1, 8, 8});
  ConvOptions co;
  co.pad = 1;
  x = b.relu(b.conv2d(x, channels, 3, co, "conv1"));
  x = b.flatten(b.global_avg_pool(x));
  b.output(b.linear(x, 3, true, "fc"));
  return b.build();
}

Tensor slice_rows(const Tensor& t, int64_t n) {
  Shape s = t.shape();
  s[0] = n;
  Tensor r(t.dtype(), s);
  std::copy(t.f32(), t.f32() + r.numel(), r.f32());
  return r;
}

Tensor labels_of(const data::Dataset& d, int64_t n) {
  Tensor y(DType::kI64, {n});
  std::copy(d.y.data<int64_t>(), d.y.data<int64_t>() + n, y.data<int64_t>());
  return y;
}

SessionOptions kd_options(double temperature, double alpha) {
  SessionOptions o;
  o.loss = LossKind::kDistillation;
  o.distill.temperature = temperature;
  o.distill.alpha = alpha;
  return o;
}

TEST(DistillSession, AlphaZeroIsCrossEntropy) {
  data::Dataset d = testing::lines_dataset(16, 1);
  Graph student = mlp({8}, 2);
  Graph copy = student;
  Tensor x = slice_rows(d.x, 16), y = labels_of(d, 16);
  Tensor teacher(DType::kF32, {16, 3});
  Rng rng(5);
  for (int64_t i = 0; i < teacher.numel(); ++i) teacher.f32()[i] = rng.uniform(-4, 4);
  TrainingSession ce(copy, SessionOptions{});
  TrainingSession kd(student, kd_options(3.0, 0.0));
  kd.set_teacher(teacher);
  Rng r1(1), r2(1);
  const float lc = ce.train_step(x, y, r1);
  const float lk = kd.train_step(x, y, r2);
  EXPECT_NEAR(lc, lk, 1e-6);
  ASSERT_EQ(ce.params().size(), kd.params().size());
  for (size_t i = 0; i < ce.params().size(); ++i) {
    const Tensor& a = ce.params()[i].grad;
    const Tensor& b = kd.params()[i].grad;
    for (int64_t k = 0; k < a.numel(); ++k) ASSERT_NEAR(a.f32()[k], b.f32()[k], 1e-6);
  }
}

TEST(DistillSession, StudentEqualToTeacherHasNoSoftLoss) {
  data::Dataset d = testing::lines_dataset(8, 2);
  Graph student = mlp({8}, 3);
  Tensor x = slice_rows(d.x, 8), y = labels_of(d, 8);
  InferenceSession inf(student);
  Tensor teacher = inf.run({{"input", x}})[0].clone();
  TrainingSession kd(student, kd_options(4.0, 1.0));
  kd.set_teacher(teacher);
  Rng rng(1);
  EXPECT_NEAR(kd.train_step(x, y, rng), 0.0, 1e-5);
  for (const ParamRef& p : kd.params()) {
    for (int64_t k = 0; k < p.grad.numel(); ++k) ASSERT_NEAR(p.grad.f32()[k], 0.0f, 1e-5);
  }
  // A different teacher gives a positive loss.
  teacher.f32()[0] += 3;
  kd.set_teacher(teacher);
  EXPECT_GT(kd.train_step(x, y, rng), 1e-3);
}

// The session's loss and logits gradient against a hand computation in double of Hinton's
// loss, alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) CE(s, y): the KL runs from the
// teacher to the student (swapping them changes both figures), the soft term is scaled by T^2
// (its logits gradient by T), and softmax is over the class axis of each row.
TEST(DistillSession, LossAndGradientMatchAHandComputation) {
  const int64_t n = 6, classes = 3;
  const double temp = 4.0, alpha = 0.7;
  data::Dataset d = testing::lines_dataset(n, 7);
  Graph student = mlp({8}, 4);
  Tensor x = slice_rows(d.x, n), y = labels_of(d, n);
  InferenceSession inf(student);
  const Tensor s = inf.run({{"input", x}})[0].clone();
  Tensor t(DType::kF32, {n, classes});
  Rng rng(9);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-3, 3);

  auto softmax = [&](const float* z, double scale) {
    std::vector<double> p(classes);
    double m = *std::max_element(z, z + classes), sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += p[c] = std::exp((z[c] - m) / scale);
    for (double& v : p) v /= sum;
    return p;
  };
  double loss = 0;
  std::vector<double> bias_grad(classes, 0.0);  // d loss / d logits summed over rows
  for (int64_t i = 0; i < n; ++i) {
    const float* si = s.f32() + i * classes;
    const float* ti = t.f32() + i * classes;
    const std::vector<double> p = softmax(si, 1.0), qs = softmax(si, temp), qt = softmax(ti, temp);
    const int64_t yi = y.data<int64_t>()[i];
    double kl = 0;
    for (int64_t c = 0; c < classes; ++c) kl += qt[c] * std::log(qt[c] / qs[c]);
    loss += (alpha * temp * temp * kl - (1 - alpha) * std::log(p[yi])) / n;
    for (int64_t c = 0; c < classes; ++c) {
      bias_grad[c] += (alpha * temp * (qs[c] - qt[c]) + (1 - alpha) * (p[c] - (c == yi))) / n;
    }
  }

  TrainingSession kd(student, kd_options(temp, alpha));
  kd.set_teacher(t);
  Rng step_rng(1);
  EXPECT_NEAR(kd.train_step(x, y, step_rng), loss, 1e-5 * std::max(1.0, loss));
  const ParamRef* bias = nullptr;
  for (const ParamRef& p : kd.params()) {
    if (p.name.find("logits") != std::string::npos && p.grad.numel() == classes) bias = &p;
  }
  ASSERT_NE(bias, nullptr) << "the mlp's output layer has no bias named after 'logits'";
  for (int64_t c = 0; c < classes; ++c) EXPECT_NEAR(bias->grad.f32()[c], bias_grad[c], 1e-5);
}

TEST(DistillSession, MissingOrMisshapenTeacherIsAnError) {
  data::Dataset d = testing::lines_dataset(4, 3);
  Graph student = mlp({8}, 3);
  TrainingSession kd(student, kd_options(2.0, 0.5));
  Rng rng(1);
  EXPECT_THROW(kd.train_step(slice_rows(d.x, 4), labels_of(d, 4), rng), Error);
  kd.set_teacher(Tensor(DType::kF32, {4, 5}));
  EXPECT_THROW(kd.train_step(slice_rows(d.x, 4), labels_of(d, 4), rng), Error);
  TrainingSession ce(student, SessionOptions{});
  EXPECT_THROW(ce.set_teacher(Tensor(DType::kF32, {4, 3})), Error);
}

TEST(DistillSession, HintAdapterTrainsButStaysOutOfTheStudent) {
  data::Dataset d = testing::lines_dataset(8, 4);
  Graph student = cnn(4, 1);
  const size_t inits = student.initializers.size();
  SessionOptions o = kd_options(2.0, 0.5);
  const std::string feature_value = student.nodes[1].outputs[0];
  o.distill.student_feature = feature_value;
  o.distill.teacher_feature = {6, 8, 8};
  o.distill.feature_weight = 0.5;
  TrainingSession kd(student, o);
  EXPECT_EQ(kd.adapter_params(), 6 * 4 + 6);
  EXPECT_EQ(student.initializers.size(), inits);
  bool adapter_param = false;
  for (const ParamRef& p : kd.params())
    adapter_param = adapter_param || p.name == "__adapter.weight";
  EXPECT_TRUE(adapter_param);
  Tensor x = slice_rows(d.x, 8), y = labels_of(d, 8);
  Tensor teacher(DType::kF32, {8, 3}), feature(DType::kF32, {8, 6, 8, 8});
  Rng rng(9);
  for (int64_t i = 0; i < teacher.numel(); ++i) teacher.f32()[i] = rng.uniform(-1, 1);
  for (int64_t i = 0; i < feature.numel(); ++i) feature.f32()[i] = rng.uniform(-1, 1);
  // Without the feature the step refuses; with it the loss is the soft/hard loss plus the hint.
  kd.set_teacher(teacher);
  EXPECT_THROW(kd.train_step(x, y, rng), Error);
  kd.set_teacher(teacher, feature);
  const float with_hint = kd.train_step(x, y, rng);
  TrainingSession plain(student, kd_options(2.0, 0.5));
  plain.set_teacher(teacher);
  const float without = plain.train_step(x, y, rng);
  EXPECT_GT(with_hint, without + 0.05f);  // 0.5 * MSE against U(-1, 1) targets is ~0.17+
  double adapter_grad = 0;
  for (const ParamRef& p : kd.params()) {
    if (p.name != "__adapter.weight") continue;
    for (int64_t k = 0; k < p.grad.numel(); ++k) adapter_grad += std::abs(p.grad.f32()[k]);
  }
  EXPECT_GT(adapter_grad, 0);
  // Shapes that no 1x1 adapter can map are refused, naming the value.
  o.distill.teacher_feature = {6, 4, 4};
  try {
    TrainingSession bad(student, o);
    ADD_FAILURE() << "spatial mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(feature_value), std::string::npos) << e.what();
  }
}

TEST(Teacher, CachesPerSampleWithoutAugmentation) {
  data::Dataset d = testing::lines_dataset(10, 5);
  Graph teacher = mlp({16}, 7);
  compress::Teacher t(teacher, "", d.size());
  data::Batch b;
  b.x = slice_rows(d.x, 4);
  b.y = labels_of(d, 4);
  b.size = 4;
  const int64_t ids[] = {3, 1, 4, 0};
  Tensor logits, feature;
  t.fill(TeacherBatch{b, ids, 1, false}, logits, feature);
  EXPECT_EQ(t.teacher_samples(), 4);
  InferenceSession ref(teacher);
  const Tensor& want = ref.run({{"input", b.x}})[0];
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_NEAR(logits.f32()[i], want.f32()[i], 1e-5);
  // The same indices again, even with different (wrong) pixels: served from the cache.
  Tensor zeros(DType::kF32, b.x.shape());
  zeros.fill_zero();
  data::Batch b2 = b;
  b2.x = zeros;
  Tensor again;
  t.fill(TeacherBatch{b2, ids, 2, false}, again, feature);
  EXPECT_EQ(t.teacher_samples(), 4);
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_NEAR(again.f32()[i], want.f32()[i], 1e-5);
  // Augmented batches always run the teacher on the pixels given.
  t.fill(TeacherBatch{b2, ids, 2, true}, again, feature);
  EXPECT_EQ(t.teacher_samples(), 8);
  const Tensor& zero_out = ref.run({{"input", zeros}})[0];
  for (int64_t i = 0; i < zero_out.numel(); ++i)
    EXPECT_NEAR(again.f32()[i], zero_out.f32()[i], 1e-5);
  // Label agreement counts every served sample, cached or not, against its argmax.
  int64_t agree = 0;
  for (const Tensor* out : {&want, &want, &zero_out}) {
    for (int64_t i = 0; i < 4; ++i) {
      const float* row = out->f32() + i * 3;
      agree += (std::max_element(row, row + 3) - row) == b.y.data<int64_t>()[i];
    }
  }
  EXPECT_DOUBLE_EQ(t.label_agreement(), static_cast<double>(agree) / 12.0);
}

TEST(Distill, SetupChecksTheModels) {
  Graph teacher = mlp({16}, 1), student = mlp({4}, 2);
  TrainConfig cfg;
  compress::DistillSettings s;
  EXPECT_NO_THROW(compress::setup_distillation(teacher, student, s, 10, cfg));
  EXPECT_TRUE(static_cast<bool>(cfg.teacher));
  compress::DistillSettings bad = s;
  bad.temperature = 0;
  EXPECT_THROW(compress::setup_distillation(teacher, student, bad, 10, cfg), Error);
  bad = s;
  bad.alpha = 1.5;
  EXPECT_THROW(compress::setup_distillation(teacher, student, bad, 10, cfg), Error);
  bad = s;
  bad.feature_map = "no_equals_sign";
  EXPECT_THROW(compress::setup_distillation(teacher, student, bad, 10, cfg), Error);
  bad.feature_map = "nosuchnode=fc1";
  EXPECT_THROW(compress::setup_distillation(teacher, student, bad, 10, cfg), Error);
  // Checkpoints do not hold the hint adapter: resuming a hint run is refused, not silently wrong.
  bad.feature_map = "fc1=fc1";
  TrainConfig resumed;
  resumed.resume_path = "run.ckpt";
  EXPECT_THROW(compress::setup_distillation(teacher, student, bad, 10, resumed), Error);
  EXPECT_NO_THROW(compress::setup_distillation(teacher, student, s, 10, resumed));
  zoo::ZooOptions five;
  five.input_shape = {1, 8, 8};
  five.classes = 5;
  five.hidden = {4};
  EXPECT_THROW(compress::setup_distillation(teacher, zoo::build("mlp", five), s, 10, cfg), Error);
}

// End to end on the trainer: the teacher runs once per sample over three epochs (cache), and a
// student trained with alpha 1 (soft targets only) on scrambled labels learns the task, which
// the same student trained on those labels alone (alpha 0) cannot.
TEST(Distill, TrainerDistillsTheTeachersFunction) {
  data::Dataset train = testing::lines_dataset(300, 11), test = testing::lines_dataset(200, 12);
  data::Normalization norm{{0.0f}, {1.0f}};
  Graph teacher = mlp({32}, 4);
  TrainConfig tc;
  tc.epochs = 4;
  tc.batch = 32;
  tc.lr = 3e-3;
  tc.optimizer.kind = "adam";
  train_model(teacher, train, norm, tc);

  // Labels scrambled: whatever the student learns about the task comes from the teacher.
  data::Dataset scrambled = train;
  scrambled.y = Tensor(DType::kI64, {train.size()});
  for (int64_t i = 0; i < train.size(); ++i) scrambled.y.data<int64_t>()[i] = i % 3;
  Graph student = mlp({8}, 9);
  Graph control = student;
  for (auto& [name, init] : control.initializers) init.value = init.value.clone();
  TrainConfig sc = tc;
  sc.epochs = 5;
  compress::DistillSettings s;
  s.temperature = 2;
  s.alpha = 1.0;
  auto t = compress::setup_distillation(teacher, student, s, scrambled.size(), sc);
  train_model(student, scrambled, norm, sc);
  EXPECT_EQ(t->teacher_samples(), scrambled.size());
  const double acc = evaluate_model(student, test, norm).accuracy;
  const double teacher_acc = evaluate_model(teacher, test, norm).accuracy;
  EXPECT_GT(teacher_acc, 0.8);
  EXPECT_GT(acc, 0.6) << "teacher " << teacher_acc;
  compress::DistillSettings labels_only = s;
  labels_only.alpha = 0;
  TrainConfig cc = tc;
  cc.epochs = 5;
  compress::setup_distillation(teacher, control, labels_only, scrambled.size(), cc);
  train_model(control, scrambled, norm, cc);
  EXPECT_LT(evaluate_model(control, test, norm).accuracy, 0.5);
}

}  // namespace
}  // namespace minnow
