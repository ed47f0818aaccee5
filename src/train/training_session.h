// TrainingSession: runs a model graph forward and backward for training (DESIGN.md §3).
//
// The session appends a loss node to a copy of the graph's structure; parameter tensors are
// shared with the caller's Graph, so optimizer updates land in graph.initializers directly.
// Per batch size it builds a plan once — kernels (oneDNN primitives), activation and gradient
// buffers — and reuses it every step, so a steady-state step allocates nothing.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "minnow/graph.h"
#include "train/step_profiler.h"

namespace minnow {

class Rng;

enum class LossKind { kSoftmaxCrossEntropy, kMse, kBceWithLogits, kDistillation };

// Knowledge distillation (LossKind::kDistillation): the loss node is DistillationLoss (Hinton
// soft targets at `temperature`, weight `alpha`, plus (1 - alpha) cross-entropy on the labels)
// and reads the teacher's logits, given per batch with set_teacher(). With `student_feature`
// set, a hint term feature_weight * MSE(adapter(student value), teacher feature) is added,
// where the adapter is a learned 1x1 Conv2d (4-d values) or Linear (2-d values) that exists in
// the session's graph only: it trains with the student but is never part of the caller's graph,
// so a saved student does not contain it.
struct DistillationOptions {
  double temperature = 4.0;
  double alpha = 0.9;
  std::string student_feature;  // value name in the student graph; empty: no hint term
  Shape teacher_feature;        // per-sample shape of the teacher's value: [C] or [C, H, W]
  double feature_weight = 1.0;
  uint64_t adapter_seed = 0;
};

struct SessionOptions {
  LossKind loss = LossKind::kSoftmaxCrossEntropy;
  double label_smoothing = 0.0;
  DistillationOptions distill;  // used by LossKind::kDistillation
  KernelChoice kernels = KernelChoice::kFast;
  // Fuse BatchNorm -> ReLU/ReLU6 pairs into one node (same results, less memory traffic).
  bool fuse_batchnorm_activation = true;
  // Fuse BatchNorm -> depthwise Conv2d pairs into one node (passes/fuse_batchnorm_depthwise.h).
  bool fuse_batchnorm_depthwise = true;
};

struct ParamRef {
  std::string name;
  Tensor value;  // shares storage with graph.initializers[name].value
  Tensor grad;   // written by train_step()
};

class TrainingSession {
 public:
  // `graph` has one output (the logits) and one input (the samples), or two inputs where the
  // second is i64 [N] sequence lengths (text models: token ids plus their lengths).
  TrainingSession(const Graph& graph, SessionOptions options);
  ~TrainingSession();

  // Forward in training mode, backward, parameter gradients in params()[i].grad.
  // Returns the mean loss of the batch. `rng` drives dropout. `lengths` feeds the second graph
  // input when the model has one (it must then be defined).
  float train_step(const Tensor& x, const Tensor& labels, Rng& rng, const Tensor& lengths = {});
  // Forward in eval mode (running BN statistics, no dropout); returns the mean loss.
  float evaluate(const Tensor& x, const Tensor& labels, const Tensor& lengths = {});
  // Distillation: the teacher's logits [N, classes] (and, with a hint term, its feature
  // [N, ...teacher_feature]) for the batch of the next train_step() or evaluate(). The tensors
  // are read, not copied; they must stay valid until that call returns.
  void set_teacher(const Tensor& logits, const Tensor& feature = {});
  bool distilling() const { return options_.loss == LossKind::kDistillation; }
  // Parameter count of the distillation adapter (0 without a hint term).
  int64_t adapter_params() const { return adapter_params_; }
  bool takes_lengths() const { return !lengths_name_.empty(); }
  // Model output of the last train_step() or evaluate().
  const Tensor& logits() const;
  std::vector<ParamRef>& params() { return params_; }

  // After a non-finite loss: "node 'conv2' (Conv2d)" for the first node (in execution order)
  // whose output holds a NaN or Inf in the last forward pass, or "" if none.
  std::string first_non_finite_node() const;

 private:
  struct Plan;
  Plan& plan_for(int64_t batch);
  float run_forward(Plan& plan, const Tensor& x, const Tensor& labels, const Tensor& lengths,
                    bool training, Rng* rng);

  Graph graph_;  // model + loss node; initializers share storage with the caller's graph
  SessionOptions options_;
  std::string input_name_, output_name_, labels_name_, loss_name_;
  std::string lengths_name_;                 // empty unless the model takes sequence lengths
  std::string teacher_name_, feature_name_;  // distillation inputs ("" when absent)
  Tensor teacher_logits_, teacher_feature_;  // set by set_teacher() for the next step
  int64_t adapter_params_ = 0;
  void add_distillation_loss(const ValueInfo& logits);
  std::vector<ParamRef> params_;
  std::map<int64_t, std::unique_ptr<Plan>> plans_;
  Plan* last_plan_ = nullptr;
  StepProfiler profiler_;
};

}  // namespace minnow
