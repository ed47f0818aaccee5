// minnow distill: trains a student with knowledge distillation from a trained teacher
// (compress/distill.h). The report's "before" is the teacher, "after" the distilled student.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.h"
#include "compress/distill.h"
#include "compress_common.h"
#include "minnow/error.h"

namespace minnow::cli {
namespace {

struct DistillArgs {
  CompressFlags f;
  std::string teacher, student;
  compress::DistillSettings settings;
  int64_t train_samples = 0;  // 0: the whole training set
};

void run_distill(DistillArgs& a) {
  if (a.f.train.epochs <= 0) throw Error("--epochs must be >= 1: distillation is training");
  if (zoo::has(a.teacher)) {
    throw Error("--teacher " + a.teacher +
                ": expected a trained model file (.mnw or .onnx), not a zoo name");
  }
  LoadedModel teacher = load_model(a.teacher, zoo::ZooOptions{});
  a.f.model = a.student;
  CompressFlags& f = a.f;
  // A zoo student is built for the data and shaped by --hidden/--width/--dropout; "before" is
  // the teacher's, measured below.
  const bool zoo_student = zoo::has(a.student);
  CompressJob job = start_compress_job(f, false);
  // The student learns on the teacher's inputs: it takes over the teacher's normalization.
  if (teacher.metadata.contains("normalization")) {
    const data::Normalization tn = model_normalization(teacher.metadata, job.norm);
    if (job.model.metadata.contains("normalization") && !zoo_student &&
        (tn.mean != job.norm.mean || tn.std != job.norm.std)) {
      throw Error("--student " + a.student +
                  ": its stored input normalization differs from the teacher's; both must see "
                  "the same inputs");
    }
    job.norm = tn;
    job.model.metadata["normalization"] = {{"mean", tn.mean}, {"std", tn.std}};
  }
  if (a.train_samples != 0) {
    job.data.train = compress::class_balanced_subset(job.data.train, a.train_samples, f.seed);
  }
  compress::MeasureOptions mo;
  mo.latency_iters = f.latency_iters;
  job.before =
      compress::measure_model(teacher.graph, &job.data.test, job.norm, teacher.metadata, mo);

  TrainConfig cfg = f.train;
  cfg.seed = f.seed;
  std::shared_ptr<compress::Teacher> t = compress::setup_distillation(
      teacher.graph, job.model.graph, a.settings, job.data.train.size(), cfg);
  std::printf("distill %s (%lld params) -> %s (%lld params), T=%g alpha=%g%s\n",
              teacher.source.c_str(), static_cast<long long>(job.before.params), a.student.c_str(),
              static_cast<long long>(job.model.graph.num_params(false)), a.settings.temperature,
              a.settings.alpha,
              a.settings.feature_map.empty() ? "" : (", hint " + a.settings.feature_map).c_str());
  compress::ModelReport after;
  after.trainable_params = fine_tune(job, f, cfg);
  nlohmann::json extra = {{"command", "distill"},
                          {"teacher", teacher.source},
                          {"student", a.student},
                          {"temperature", a.settings.temperature},
                          {"alpha", a.settings.alpha},
                          {"epochs", f.train.epochs},
                          {"train_samples", job.data.train.size()},
                          {"student_teacher_param_ratio",
                           static_cast<double>(job.model.graph.num_params(false)) /
                               static_cast<double>(std::max<int64_t>(job.before.params, 1))},
                          {"teacher_forward_samples", t->teacher_samples()},
                          {"teacher_label_agreement", t->label_agreement()}};
  if (!a.settings.feature_map.empty()) {
    extra["feature_map"] = a.settings.feature_map;
    extra["feature_weight"] = a.settings.feature_weight;
  }
  finish_compress_job(job, f, after, extra);
}

}  // namespace

void add_distill_command(CLI::App& app) {
  auto a = std::make_shared<DistillArgs>();
  CLI::App* c = app.add_subcommand(
      "distill", "Train a small student from a trained teacher (knowledge distillation)");
  c->add_option("--teacher", a->teacher, "Trained teacher model (.mnw or .onnx)")->required();
  c->add_option("--student", a->student, "Student: zoo name (built for the data) or model file")
      ->required();
  add_compress_flags(*c, a->f, false);
  c->add_option("--temperature", a->settings.temperature, "Softmax temperature T")
      ->capture_default_str();
  c->add_option("--alpha", a->settings.alpha,
                "Weight of the soft-target term (1 - alpha: cross-entropy on labels)")
      ->capture_default_str();
  c->add_option("--feature-map", a->settings.feature_map,
                "Hint distillation TEACHER_NODE=STUDENT_NODE through a learned 1x1 adapter");
  c->add_option("--feature-weight", a->settings.feature_weight, "Weight of the hint MSE term")
      ->capture_default_str();
  c->add_option("--train-samples", a->train_samples,
                "Train the student on a class-balanced subset of N samples (0: all)")
      ->capture_default_str();
  c->add_option("--augment-shift", a->f.train.augment.shift,
                "Random shift with padding (pixels); the teacher sees the same shifted batch");
  c->add_flag("--augment-flip", a->f.train.augment.hflip, "Random horizontal flip");
  c->callback([a] { run_distill(*a); });
}

}  // namespace minnow::cli
