// InferenceSession: runs a graph forward in eval mode for any number of inputs and outputs.
//
// The graph is first rewritten for inference (Dropout and dead nodes removed:
// passes/simplify_for_inference.h; BatchNorm folded into the Conv2d/Linear before it:
// passes/fold_batchnorm.h; ReLU/ReLU6 fused into the op before it: passes/fuse_activation.h); the
// caller's graph and its weights are not modified. Kernels (and their oneDNN primitives) are built
// once per batch size and reused. Later work (issue 4) adds more fusion passes and a static memory
// plan here; the interface stays.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "minnow/graph.h"

namespace minnow {

class InferenceSession {
 public:
  // `rewrite` = false runs the graph exactly as given (the oracle for testing the rewrites).
  explicit InferenceSession(Graph graph, KernelChoice kernels = KernelChoice::kFast,
                            bool rewrite = true);
  ~InferenceSession();

  const std::vector<ValueInfo>& inputs() const { return graph_.inputs; }
  const std::vector<ValueInfo>& outputs() const { return graph_.outputs; }

  // `feeds` maps every graph input name to a tensor of the declared dtype and shape (with one
  // common batch size). Throws minnow::Error naming the input that does not fit.
  // Returns the outputs in graph order; they are valid until the next run().
  const std::vector<Tensor>& run(const std::map<std::string, Tensor>& feeds);

 private:
  struct Plan;
  Plan& plan_for(int64_t batch);

  Graph graph_;
  KernelChoice kernels_;
  std::map<int64_t, std::unique_ptr<Plan>> plans_;
  std::vector<Tensor> results_;
};

}  // namespace minnow
