// InferenceSession: runs a graph forward in eval mode for any number of inputs and outputs.
//
// The graph is first rewritten for inference, keeping every input and output name: Dropout and
// dead nodes removed (passes/simplify_for_inference.h), constant subgraphs evaluated
// (passes/fold_constants.h), BatchNorm folded into the Conv2d/Linear before it
// (passes/fold_batchnorm.h), ReLU/ReLU6 fused into the op before it (passes/fuse_activation.h).
// The caller's graph and its weights are not modified. Per batch size, kernels (and their
// oneDNN primitives) are built once and every intermediate value gets a place in one arena
// (runtime/memory_plan.h): runs after the first reuse every buffer. A batch larger than what
// keeps the largest activation within a few MiB runs in micro-batches when every op computes
// samples independently (CNNs; not recurrent or attention graphs): same results, the
// activations stay in cache between layers. With several threads such a batch runs in small
// pieces on parallel lanes instead (runtime/lane_workers.h), one thread each, every lane with
// its own kernels and arena: no layer then waits for the other thread, and each lane's
// activations stay in its core's own cache. Batch 256 on 2 threads, `minnow bench` p50,
// micro-batches whose every layer both threads share -> lanes: mobilenet_v2 f32 12.8 -> 8.6 ms,
// int8 9.0 -> 4.7 ms; resnet8 int8 4.7 -> 3.8 ms (the host's busier state; in its quieter
// one, f32 mobilenet_v2 9.6 -> 8.8 ms, resnet8 11.4 -> 9.3 ms). A batch that runs in one piece
// runs on all threads or on one, whichever the session last measured faster
// (runtime/threads_choice.h).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "minnow/graph.h"

namespace minnow {

class LaneWorkers;

class InferenceSession {
 public:
  // `optimize` = false runs the graph exactly as given with one buffer per value (the oracle
  // for testing the rewrites and the memory plan).
  explicit InferenceSession(Graph graph, KernelChoice kernels = KernelChoice::kFast,
                            bool optimize = true);
  // Bytes of the activation arena of the last run's batch size (0 before the first run, or
  // without optimization), and what separate buffers would take.
  size_t arena_bytes() const;
  size_t unshared_bytes() const;
  // Batches larger than this run in pieces of this size on one thread (0: never split).
  int64_t micro_batch() const { return micro_batch_; }
  // The pieces of a batch of `batch` samples when `lanes` threads run pieces side by side (the
  // whole batch: no split).
  int64_t piece_size(int64_t batch, int lanes) const;
  // False while runs of this batch size are still timing all threads against one
  // (runtime/threads_choice.h); then, and for batches that never choose, true.
  bool threads_chosen(int64_t batch) const;
  ~InferenceSession();

  const std::vector<ValueInfo>& inputs() const { return graph_.inputs; }
  const std::vector<ValueInfo>& outputs() const { return graph_.outputs; }

  // `feeds` maps every graph input name to a tensor of the declared dtype and shape (with one
  // common batch size). Throws minnow::Error naming the input that does not fit.
  // Returns the outputs in graph order; they are valid until the next run().
  const std::vector<Tensor>& run(const std::map<std::string, Tensor>& feeds);

  // Per-node timing of the optimized graph (`minnow bench --profile`): while enabled, every
  // run adds each kernel's wall time to its node's entry. Off by default: reading the clock
  // twice per node costs ~50 ns, which matters for small models at batch 1.
  struct NodeTime {
    std::string node, op;
    double total_ms = 0;
    int64_t calls = 0;
  };
  void set_profiling(bool on) { profiling_ = on; }
  // One entry per node of the optimized graph, in execution order, summed over batch sizes.
  std::vector<NodeTime> node_times() const;

 private:
  struct Plan;
  // The plan for this batch size of plan set `set` (0: runs on all threads; l + 1: lane l),
  // each with its own kernels and arena. Lanes call it under plans_mu_, once plans_ has an
  // entry for each.
  Plan& plan_for(int64_t batch, int set = 0);
  void choose_micro_batch();
  const std::vector<Tensor>& run_in_pieces(const std::map<std::string, Tensor>& feeds,
                                           int64_t batch, int64_t piece, int lanes);
  void run_piece(const std::map<std::string, Tensor>& feeds, int64_t batch, int64_t start,
                 int64_t len, int set, std::vector<Tensor>& outs);
  void place_in_arena(Plan& plan, const std::map<std::string, ValueInfo>& info);
  void run_steps(Plan& plan);

  Graph graph_;
  KernelChoice kernels_;
  bool optimize_;
  Plan* last_plan_ = nullptr;
  std::vector<std::map<int64_t, std::unique_ptr<Plan>>> plans_;  // per set, per batch size
  std::unique_ptr<LaneWorkers> lane_workers_;                    // threads of lanes 1, 2, ...
  std::mutex plans_mu_;                                          // lanes making plans
  std::vector<Tensor> results_;
  int64_t micro_batch_ = 0;  // 0: never split the batch
  int64_t lane_piece_ = 0;   // largest piece on parallel lanes
  bool profiling_ = false;
  std::vector<NodeTime> node_times_;                      // by node index, filled while profiling_
  std::map<int64_t, std::vector<Tensor>> piece_outputs_;  // per batch size, when split
};

}  // namespace minnow
