// The training loop: epochs of shuffled, augmented batches through a TrainingSession and an
// optimizer, with LR schedule, gradient clipping, validation, early stopping, atomic
// checkpoints, exact resume, and NaN/Inf detection.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/normalize.h"
#include "minnow/graph.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"
#include "train/training_session.h"

namespace minnow {

struct TrainProgress {
  int64_t epoch = 0, epochs = 0;  // epoch is 1-based
  int64_t step = 0, steps_per_epoch = 0;
  double loss = 0, accuracy = 0;  // running means over the epoch so far
  double images_per_second = 0;
  double eta_seconds = 0;
};

struct EpochSummary {
  int64_t epoch = 0;
  double train_loss = 0, train_acc = 0;
  double val_loss = -1, val_acc = -1;  // -1 without a validation split
  double lr = 0;
  double seconds = 0;
};

// One training batch as the distillation teacher sees it (TrainConfig::teacher).
struct TeacherBatch {
  const data::Batch& batch;  // exactly what the student gets: normalized and augmented
  const int64_t* indices;    // training-set indices of its batch.size samples
  int64_t epoch = 0;         // 1-based
  bool augmented = false;    // false: an index always stands for the same input
};

struct TrainConfig {
  int64_t epochs = 10;
  int64_t batch = 64;
  double lr = 1e-3;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  double clip_grad_norm = 0;  // 0: off
  double label_smoothing = 0;
  uint64_t seed = 0;
  double val_split = 0;  // fraction of the training set held out for validation
  std::string early_stop_metric = "val_acc";  // val_acc | val_loss
  int64_t patience = 0;                       // 0: no early stopping
  data::AugmentOptions augment;
  std::string checkpoint_path;   // written atomically after every epoch when non-empty
  std::string resume_path;       // continue from this checkpoint
  int64_t stop_after_epoch = 0;  // return after this epoch (0: off); the schedule spans `epochs`
  // Without resume_path: the first epoch this run trains, for a run that continues an earlier
  // one (stop_after_epoch = start_epoch - 1) on a rewritten graph, as quantization-aware training
  // does when it freezes BatchNorm. Epoch numbers, the learning-rate schedule, shuffling and step
  // seeds continue where that run stopped; optimizer state starts fresh.
  int64_t start_epoch = 1;
  // Hooks for the compression drivers (src/compress/): called every optimizer step with the
  // session's parameters — before_step after the gradients are computed (and clipped), e.g. to
  // mask pruned weights' gradients or share them across a weight cluster; after_step after the
  // update, e.g. to re-apply pruning masks or advance a gradual-pruning schedule. `step` counts
  // optimizer steps from 0 over the whole run.
  std::function<void(int64_t step, std::vector<ParamRef>& params)> before_step;
  std::function<void(int64_t step, std::vector<ParamRef>& params)> after_step;
  // Knowledge distillation (src/compress/distill.h): when set, the loss is
  // LossKind::kDistillation with `distill`, and `teacher` is called for every batch before the
  // step to fill the teacher's logits [N, classes] (and its feature [N, ...], when
  // distill.student_feature is set). The tensors it fills must stay valid until the next call.
  std::function<void(const TeacherBatch&, Tensor& logits, Tensor& feature)> teacher;
  DistillationOptions distill;
  std::function<void(const TrainProgress&)> on_progress;
  std::function<void(const EpochSummary&)> on_epoch;
};

struct TrainResult {
  int64_t epochs_run = 0;    // epochs completed in total (including resumed ones)
  int64_t steps = 0;         // optimizer steps in total
  int64_t images = 0;        // images through training steps in this process
  double train_seconds = 0;  // wall time of training steps in this process, data loading included
  double final_train_loss = 0;
  bool stopped_early = false;
  std::vector<EpochSummary> history;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t samples = 0;
  double seconds = 0;
};

// Trains `graph` in place (its initializers). `norm` is applied to every batch and should be
// stored with the model. Throws minnow::Error on bad configuration or a non-finite loss.
TrainResult train_model(Graph& graph, const data::Dataset& train_data,
                        const data::Normalization& norm, const TrainConfig& config);

EvalResult evaluate_model(const Graph& graph, const data::Dataset& data,
                          const data::Normalization& norm, int64_t batch = 256);

}  // namespace minnow
