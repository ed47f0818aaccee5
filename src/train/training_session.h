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

enum class LossKind { kSoftmaxCrossEntropy, kMse, kBceWithLogits };

struct SessionOptions {
  LossKind loss = LossKind::kSoftmaxCrossEntropy;
  double label_smoothing = 0.0;
  KernelChoice kernels = KernelChoice::kFast;
  // Fuse BatchNorm -> ReLU/ReLU6 pairs into one node (same results, less memory traffic).
  bool fuse_batchnorm_activation = true;
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
  std::string lengths_name_;  // empty unless the model takes sequence lengths
  std::vector<ParamRef> params_;
  std::map<int64_t, std::unique_ptr<Plan>> plans_;
  Plan* last_plan_ = nullptr;
  StepProfiler profiler_;
};

}  // namespace minnow
