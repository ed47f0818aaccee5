#include "train/trainer.h"

#include <chrono>
#include <cmath>

#include "core/rng.h"
#include "data/loader.h"
#include "io/mnw.h"
#include "minnow/error.h"
#include "passes/lower_qdq.h"
#include "train/evaluate_runtime.h"
#include "train/metrics.h"

namespace minnow {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Settings that must not change between a run and its resumption, or the resumed run would
// not reproduce the uninterrupted one.
nlohmann::json run_identity(const TrainConfig& c, int64_t train_size) {
  nlohmann::json id = {{"batch", c.batch},
                       {"lr", c.lr},
                       {"optimizer", c.optimizer.kind},
                       {"seed", c.seed},
                       {"val_split", c.val_split},
                       {"train_size", train_size},
                       {"schedule", c.schedule.kind},
                       {"label_smoothing", c.label_smoothing}};
  if (c.teacher) {
    id["distill"] = {{"temperature", c.distill.temperature},
                     {"alpha", c.distill.alpha},
                     {"student_feature", c.distill.student_feature},
                     {"feature_weight", c.distill.feature_weight}};
  }
  return id;
}

struct EarlyStop {
  double best = 0;
  int64_t best_epoch = 0;
  int64_t bad_epochs = 0;
};

}  // namespace

EvalResult evaluate_model(const Graph& graph, const data::Dataset& d,
                          const data::Normalization& norm, int64_t batch) {
  if (batch <= 0) throw Error("evaluation batch must be positive");
  if (is_quantized_graph(graph)) return evaluate_with_runtime(graph, d, norm, batch);
  TrainingSession session(graph, SessionOptions{});
  data::BatchLoader loader(d, batch, false, norm, data::AugmentOptions{}, 0, true);
  loader.start_epoch(0);
  data::Batch b;
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  auto t0 = Clock::now();
  while (loader.next(b)) {
    loss_sum += session.evaluate(b.x, b.y, b.lengths) * static_cast<double>(b.size);
    correct += count_correct(session.logits(), b.y);
    r.samples += b.size;
  }
  r.seconds = seconds_since(t0);
  if (r.samples == 0) throw Error("evaluation dataset is empty");
  r.loss = loss_sum / static_cast<double>(r.samples);
  r.accuracy = static_cast<double>(correct) / static_cast<double>(r.samples);
  return r;
}

TrainResult train_model(Graph& graph, const data::Dataset& train_data,
                        const data::Normalization& norm, const TrainConfig& c) {
  if (c.epochs <= 0) throw Error("--epochs must be positive, got " + std::to_string(c.epochs));
  if (c.batch <= 0) throw Error("--batch must be positive, got " + std::to_string(c.batch));
  if (c.val_split < 0 || c.val_split >= 1) throw Error("--val-split must be in [0, 1)");
  if (c.early_stop_metric != "val_acc" && c.early_stop_metric != "val_loss") {
    throw Error("--early-stop-metric must be val_acc or val_loss");
  }
  if (c.patience > 0 && c.val_split <= 0) throw Error("--patience needs --val-split > 0");
  if (c.clip_grad_norm < 0) throw Error("--clip-grad-norm must be >= 0");
  if (c.label_smoothing < 0 || c.label_smoothing >= 1)
    throw Error("--label-smoothing must be in [0, 1)");

  data::Dataset train = train_data, val;
  if (c.val_split > 0)
    std::tie(train, val) = data::split_validation(train_data, c.val_split, c.seed);
  if (train.size() == 0) throw Error("the training set is empty");

  TrainResult result;
  EarlyStop stop;
  if (c.start_epoch < 1 || c.start_epoch > std::max<int64_t>(c.epochs, 1)) {
    throw Error("start epoch " + std::to_string(c.start_epoch) + " is outside 1.." +
                std::to_string(c.epochs));
  }
  int64_t first_epoch = c.start_epoch;
  io::MnwContents resumed;
  if (!c.resume_path.empty()) {
    resumed = io::load_mnw(c.resume_path);
    const nlohmann::json& ts = resumed.trainer_state;
    if (!ts.is_object() || !ts.contains("epoch") || !ts.contains("identity")) {
      throw Error(c.resume_path + ": not a training checkpoint (no trainer state)");
    }
    if (ts["identity"] != run_identity(c, train_data.size())) {
      throw Error(c.resume_path + ": checkpoint was made with different settings " +
                  ts["identity"].dump() + "; resume with the same flags");
    }
    graph = resumed.graph;
    first_epoch = ts["epoch"].get<int64_t>() + 1;
    result.steps = ts["steps"].get<int64_t>();
    stop.best = ts["best"].get<double>();
    stop.best_epoch = ts["best_epoch"].get<int64_t>();
    stop.bad_epochs = ts["bad_epochs"].get<int64_t>();
    for (const auto& h : ts["history"]) {
      EpochSummary e;
      e.epoch = h["epoch"];
      e.train_loss = h["train_loss"];
      e.train_acc = h["train_acc"];
      e.val_loss = h["val_loss"];
      e.val_acc = h["val_acc"];
      e.lr = h["lr"];
      e.seconds = h["seconds"];
      result.history.push_back(e);
    }
    result.epochs_run = first_epoch - 1;
    if (!result.history.empty()) result.final_train_loss = result.history.back().train_loss;
  }

  SessionOptions session_options{LossKind::kSoftmaxCrossEntropy, c.label_smoothing};
  if (c.teacher) {
    session_options.loss = LossKind::kDistillation;
    session_options.distill = c.distill;
  }
  TrainingSession session(graph, session_options);
  std::unique_ptr<Optimizer> opt = make_optimizer(c.optimizer, session.params());
  if (!c.resume_path.empty())
    opt->load_state(resumed.optimizer_state, resumed.trainer_state["optimizer_steps"]);
  data::BatchLoader loader(train, c.batch, true, norm, c.augment, c.seed, true);
  const int64_t steps_per_epoch = loader.batches_per_epoch();
  LrSchedule schedule(c.schedule, c.lr, steps_per_epoch, steps_per_epoch * c.epochs);
  if (c.resume_path.empty()) {
    result.epochs_run = first_epoch - 1;
    result.steps = (first_epoch - 1) * steps_per_epoch;
  }

  data::Batch b;
  Tensor teacher_logits, teacher_feature;  // filled by c.teacher for each batch
  for (int64_t epoch = first_epoch; epoch <= c.epochs; ++epoch) {
    loader.start_epoch(epoch - 1);
    EpochSummary summary;
    summary.epoch = epoch;
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, step_in_epoch = 0;
    auto t0 = Clock::now();
    while (loader.next(b)) {
      double lr = schedule.at(result.steps);
      Rng step_rng = Rng::derive(c.seed, 0xD5, static_cast<uint64_t>(result.steps));
      if (c.teacher) {
        const int64_t* ids = loader.epoch_order().data() + step_in_epoch * c.batch;
        c.teacher(TeacherBatch{b, ids, epoch, c.augment.any()}, teacher_logits, teacher_feature);
        session.set_teacher(teacher_logits, teacher_feature);
      }
      float loss = session.train_step(b.x, b.y, step_rng, b.lengths);
      if (!std::isfinite(loss)) {
        std::string where = session.first_non_finite_node();
        throw Error("training diverged: loss is " + std::string(std::isnan(loss) ? "NaN" : "Inf") +
                    " at epoch " + std::to_string(epoch) + " step " +
                    std::to_string(step_in_epoch + 1) +
                    (where.empty() ? std::string(" (all node outputs finite before the loss)")
                                   : "; first non-finite output: " + where) +
                    " — try a lower --lr or --clip-grad-norm");
      }
      if (c.clip_grad_norm > 0) clip_grad_norm(session.params(), c.clip_grad_norm);
      if (c.before_step) c.before_step(result.steps, session.params());
      opt->step(session.params(), lr);
      if (c.after_step) c.after_step(result.steps, session.params());
      ++result.steps;
      ++step_in_epoch;
      loss_sum += static_cast<double>(loss) * static_cast<double>(b.size);
      correct += count_correct(session.logits(), b.y);
      seen += b.size;
      summary.lr = lr;
      if (c.on_progress) {
        double secs = seconds_since(t0);
        TrainProgress p;
        p.epoch = epoch;
        p.epochs = c.epochs;
        p.step = step_in_epoch;
        p.steps_per_epoch = steps_per_epoch;
        p.loss = loss_sum / static_cast<double>(seen);
        p.accuracy = static_cast<double>(correct) / static_cast<double>(seen);
        p.images_per_second = secs > 0 ? static_cast<double>(seen) / secs : 0;
        int64_t remaining =
            (c.epochs - epoch) * steps_per_epoch + (steps_per_epoch - step_in_epoch);
        p.eta_seconds = step_in_epoch > 0 ? secs / static_cast<double>(step_in_epoch) *
                                                static_cast<double>(remaining)
                                          : 0;
        c.on_progress(p);
      }
    }
    summary.seconds = seconds_since(t0);
    result.train_seconds += summary.seconds;
    result.images += seen;
    summary.train_loss = loss_sum / static_cast<double>(seen);
    summary.train_acc = static_cast<double>(correct) / static_cast<double>(seen);
    result.final_train_loss = summary.train_loss;
    if (val.size() > 0) {
      EvalResult v = evaluate_model(graph, val, norm);
      summary.val_loss = v.loss;
      summary.val_acc = v.accuracy;
    }
    result.history.push_back(summary);
    result.epochs_run = epoch;
    if (c.on_epoch) c.on_epoch(summary);

    bool stop_now = false;
    if (val.size() > 0) {
      double metric = c.early_stop_metric == "val_acc" ? summary.val_acc : -summary.val_loss;
      if (stop.best_epoch == 0 || metric > stop.best) {
        stop.best = metric;
        stop.best_epoch = epoch;
        stop.bad_epochs = 0;
      } else {
        ++stop.bad_epochs;
        stop_now = c.patience > 0 && stop.bad_epochs >= c.patience;
      }
    }
    if (!c.checkpoint_path.empty()) {
      io::MnwContents ckpt;
      ckpt.graph = graph;
      ckpt.metadata["normalization"] = {{"mean", norm.mean}, {"std", norm.std}};
      int64_t opt_steps = 0;
      opt->save_state(ckpt.optimizer_state, opt_steps);
      nlohmann::json history = nlohmann::json::array();
      for (const EpochSummary& e : result.history) {
        history.push_back({{"epoch", e.epoch},
                           {"train_loss", e.train_loss},
                           {"train_acc", e.train_acc},
                           {"val_loss", e.val_loss},
                           {"val_acc", e.val_acc},
                           {"lr", e.lr},
                           {"seconds", e.seconds}});
      }
      ckpt.trainer_state = {{"epoch", epoch},
                            {"steps", result.steps},
                            {"optimizer_steps", opt_steps},
                            {"best", stop.best},
                            {"best_epoch", stop.best_epoch},
                            {"bad_epochs", stop.bad_epochs},
                            {"identity", run_identity(c, train_data.size())},
                            {"history", history}};
      io::save_mnw(c.checkpoint_path, ckpt);
    }
    if (stop_now) {
      result.stopped_early = true;
      break;
    }
    if (c.stop_after_epoch == epoch) break;
  }
  return result;
}

}  // namespace minnow
