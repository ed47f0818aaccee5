// Knowledge distillation driver (issue 5, deliverable 1): a trained teacher, run in inference
// mode, supplies soft targets (and optionally an intermediate feature map) for every training
// batch of a student. The loss itself is the DistillationLoss op; the training session adds it
// and the hint adapter (train/training_session.h, LossKind::kDistillation).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "minnow/graph.h"
#include "train/trainer.h"

namespace minnow {
class InferenceSession;
}

namespace minnow::compress {

struct DistillSettings {
  double temperature = 4.0;
  double alpha = 0.9;
  // Hint distillation: "TEACHER_NODE=STUDENT_NODE" (node or value names); empty: none.
  std::string feature_map;
  double feature_weight = 1.0;
};

// The teacher as the trainer's TrainConfig::teacher callback. Runs the teacher graph with an
// InferenceSession on exactly the batch the student sees. Without augmentation, an index of the
// training set always stands for the same input, so each sample's outputs are computed once (in
// the first epoch) and reused afterwards.
class Teacher {
 public:
  // `feature_value`: a value of the teacher graph to output next to its logits ("" for none).
  // `train_size`: samples in the training set (the index range of TeacherBatch::indices).
  Teacher(const Graph& teacher, const std::string& feature_value, int64_t train_size);
  ~Teacher();
  Teacher(const Teacher&) = delete;
  Teacher& operator=(const Teacher&) = delete;

  void fill(const TeacherBatch& batch, Tensor& logits, Tensor& feature);

  int64_t classes() const { return classes_; }
  const Shape& feature_shape() const { return feature_shape_; }  // per sample; empty: none
  // Samples run through the teacher so far (cache hits do not count).
  int64_t teacher_samples() const { return teacher_samples_; }
  // Fraction of the samples served (cached or not) whose teacher argmax is their label: the
  // teacher's training accuracy as the student saw it. A value far below the teacher's own
  // accuracy means its outputs reached the wrong samples.
  double label_agreement() const {
    return served_ > 0 ? static_cast<double>(agree_) / static_cast<double>(served_) : 0.0;
  }

 private:
  void fill_outputs(const TeacherBatch& batch, Tensor& logits, Tensor& feature);

  std::unique_ptr<InferenceSession> session_;
  std::string input_name_, lengths_name_;
  int64_t classes_ = 0, train_size_ = 0;
  Shape feature_shape_;
  int64_t feature_size_ = 0;  // floats per sample
  bool cache_features_ = false;
  std::vector<float> logit_cache_, feature_cache_;
  std::vector<char> cached_;
  int64_t teacher_samples_ = 0;
  int64_t served_ = 0, agree_ = 0;
};

// The value a node name (or value name) stands for in `g`: a node's first output, else the value
// itself. Throws minnow::Error naming `what` when `g` has neither.
std::string resolve_value(const Graph& g, const std::string& name, const std::string& what);

// A class-balanced subset of `n` training samples (`--train-samples`): each class gets n / classes
// samples (the first classes one more when n does not divide), picked in the order of a
// permutation drawn from Rng(seed), and the result keeps that order. Distillation pays most where
// the student alone overfits a small training set (Hinton et al. 2015, section 5: soft targets as
// regularizers), and this is how both arms of that comparison see the same samples. Throws
// minnow::Error unless 0 < n <= d.size() and every class has its share.
data::Dataset class_balanced_subset(const data::Dataset& d, int64_t n, uint64_t seed);

// Sets config.teacher and config.distill so that train_model() distills `teacher` into
// `student`. The returned Teacher must outlive the training run. Checks that both models
// produce the same number of classes and parses settings.feature_map. A feature map with
// config.resume_path already set is an error: checkpoints hold the student, not the adapter.
std::shared_ptr<Teacher> setup_distillation(const Graph& teacher, const Graph& student,
                                            const DistillSettings& settings, int64_t train_size,
                                            TrainConfig& config);

}  // namespace minnow::compress
