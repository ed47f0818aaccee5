#include "runtime/inference_session.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <set>
#include <thread>

#include "core/op_groups.h"
#include "minnow/error.h"
#include "ops/shape_util.h"
#include "passes/channels_last.h"
#include "passes/fold_batchnorm.h"
#include "passes/fold_constants.h"
#include "passes/fuse_activation.h"
#include "passes/fuse_qlinear_residual.h"
#include "passes/fuse_residual_add.h"
#include "passes/lower_qdq.h"
#include "passes/simplify_for_inference.h"
#include "runtime/lane_workers.h"
#include "runtime/memory_plan.h"
#include "runtime/threads_choice.h"

namespace minnow {
namespace {

// Large batches run in micro-batches whose largest activation fits in about this many bytes:
// MobileNet-style layers are memory-bound, and a whole batch of 256 leaves the caches between
// layers (mobilenet_v2 on 28x28: ~12.7k images/s at batch 256 in one piece, ~24k in pieces of
// 27). Small networks (LeNet) never split.
constexpr int64_t kMicroBatchBytes = int64_t{8} << 20;

// Pieces on parallel lanes: their largest activation within about twice a core's L2 cache (1 MiB
// on the dev host), and at least four pieces per lane, so that a slower core takes fewer. At
// batch 256 on 2 lanes, ms for pieces of 8 / 16 / 32 / 64: mobilenet_v2 f32 9.3 / 9.5 / 9.8 /
// 11.9, int8 5.5 / 5.5 / 5.4 / 5.3, lenet5 1.20 / 1.12 / 1.11 / 1.10.
constexpr int64_t kLaneBytes = int64_t{2} << 20;
constexpr int64_t kPiecesPerLane = 4;
// Every piece reads every weight again, so lanes pay when a weight serves several multiply-adds
// per sample (convolutions: mobilenet_v2 98 per weight, lenet5 7), not in MLPs, where only the
// batch shares a weight (lenet300: 1; batch 256 in one piece 0.31 ms, in lanes' pieces of 32
// 0.38 ms), and when the weights stay in cache from piece to piece (mobilenet_v1's 12.9 MB: 51
// ms in one piece, 55 ms in lanes).
constexpr int64_t kLaneMinMacsPerWeight = 2;
constexpr size_t kLaneMaxWeightBytes = size_t{4} << 20;

// Ops that compute every sample on its own, with the batch along dim 0 of everything they read
// and write (checked by the caller): splitting the batch cannot change their results.
bool per_sample(const Node& n, const std::map<std::string, ValueInfo>& info) {
  auto axis_not_0 = [&](int64_t def) {
    const int64_t a = n.attrs.get_int("axis", def);
    return a != 0 && a != -static_cast<int64_t>(info.at(n.inputs[0]).shape.size());
  };
  switch (n.op) {
    case OpKind::kConv2d:
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
    case OpKind::kGlobalAvgPool:
    case OpKind::kBatchNorm:
    case OpKind::kLinear:
    case OpKind::kClip:
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kFlatten:
    case OpKind::kReshape:
      return true;
    case OpKind::kQuantizeLinear:  // per-axis parameters along the batch would differ per piece
    case OpKind::kDequantizeLinear:
    case OpKind::kSoftmax:
    case OpKind::kLogSoftmax:
    case OpKind::kConcat:
      return axis_not_0(1);
    case OpKind::kTranspose: {
      const std::vector<int64_t> perm = n.attrs.get_ints("perm", {});
      return !perm.empty() && perm[0] == 0;
    }
    default:
      return is_elementwise_activation(n.op) || is_integer_op(n.op);
  }
}

}  // namespace

struct InferenceSession::Plan {
  std::map<std::string, Tensor> values;        // std::map: pointers stay valid as it grows
  std::map<std::string, Tensor> chunk_inputs;  // micro-batched runs copy input slices here
  std::shared_ptr<std::byte[]> arena;          // intermediate values live here (memory_plan.h)
  size_t arena_bytes = 0, unshared_bytes = 0;
  struct Step {
    std::unique_ptr<Kernel> kernel;
    std::vector<Tensor*> in, out;
  };
  std::vector<Step> steps;
  ThreadsChoice threads;  // whether runs of this plan (set 0) go faster on one thread
  bool ran = false;       // lanes: whether it has run once (its kernels have been built)
};

InferenceSession::InferenceSession(Graph graph, KernelChoice kernels, bool optimize)
    : graph_(std::move(graph)), kernels_(kernels), optimize_(optimize) {
  graph_.validate();
  graph_.infer_shapes();
  // Inference-only rewrites; each keeps every graph input and output name.
  if (optimize) {
    simplify_for_inference(graph_);
    fold_constants(graph_, /*keep_dequantize=*/true);
    fold_batchnorm(graph_);
    fuse_activation(graph_, {OpKind::kConv2d, OpKind::kLinear, OpKind::kBatchNorm});
    // Quantized patterns run on integer kernels; dequantized constants left over (weights of
    // layers kept in float) are then folded once here instead of on every run.
    lower_qdq(graph_);
    fuse_qlinear_residual(graph_);
    // Float residual Adds join float convolutions only: run before lower_qdq, it would also fuse
    // an Add kept in float into a convolution that lower_qdq then makes a QLinearConv with a
    // float output, whose inputs have no place for a float sum. (It takes the ReLU after the Add
    // itself.)
    fuse_residual_add(graph_);
    fold_constants(graph_);
    channels_last(graph_);  // activations stay NHWC between convolutions (int8 and f32)
    graph_.validate();
  }
  if (graph_.inputs.empty() || graph_.outputs.empty()) {
    throw Error("model '" + graph_.name + "' has no inputs or no outputs");
  }
  if (optimize) choose_micro_batch();
}

void InferenceSession::choose_micro_batch() {
  const std::map<std::string, ValueInfo> info = graph_.infer_shapes();
  auto batch_first = [](const ValueInfo& v) {
    if (v.shape.empty() || v.shape[0] != kDynamic) return false;
    for (size_t d = 1; d < v.shape.size(); ++d) {
      if (v.shape[d] == kDynamic) return false;
    }
    return true;
  };
  for (const ValueInfo& v : graph_.inputs) {
    if (!batch_first(v)) return;
  }
  for (const ValueInfo& v : graph_.outputs) {
    if (!batch_first(info.at(v.name))) return;
  }
  int64_t largest = 1;  // bytes of one sample of the largest value
  for (const Node& n : graph_.nodes) {
    bool constant = true;  // e.g. the DequantizeLinear of weights kept for a float layer
    for (const std::string& v : n.inputs)
      constant = constant && (v.empty() || graph_.initializers.count(v));
    if (constant) continue;
    if (!per_sample(n, info)) return;
    for (const std::string& o : n.outputs) {
      const ValueInfo& v = info.at(o);
      if (!batch_first(v)) return;
      int64_t bytes = static_cast<int64_t>(dtype_size(v.dtype));
      for (size_t d = 1; d < v.shape.size(); ++d) bytes *= v.shape[d];
      largest = std::max(largest, bytes);
    }
  }
  micro_batch_ = std::max<int64_t>(1, kMicroBatchBytes / largest);
  int64_t macs = 0, weights = 0;
  for (const NodeStats& s : graph_stats(graph_)) {
    macs += s.macs;
    weights += s.params;
  }
  size_t weight_bytes = 0;
  for (const auto& [name, init] : graph_.initializers) weight_bytes += init.value.nbytes();
  if (macs >= kLaneMinMacsPerWeight * weights && weight_bytes <= kLaneMaxWeightBytes) {
    lane_piece_ = std::max<int64_t>(1, kLaneBytes / largest);
  }
}

int64_t InferenceSession::piece_size(int64_t batch, int lanes) const {
  if (micro_batch_ == 0) return batch;
  if (lanes < 2 || lane_piece_ == 0) return std::min(batch, micro_batch_);
  // Every lane gets a piece, even of a small batch.
  const int64_t shared_out = (batch + kPiecesPerLane * lanes - 1) / (kPiecesPerLane * lanes);
  const int64_t largest = std::min(lane_piece_, shared_out);
  // As many pieces as a multiple of the lanes, of equal size as far as it goes, so that the
  // lanes finish together: mobilenet_v2 int8 at batch 256 in pieces of 27 (nine and 13) left
  // one lane 14 samples more than the other; in pieces of 26 (nine and 22), 4: 4.54 -> 4.37 ms.
  int64_t pieces = (batch + largest - 1) / largest;
  pieces = (pieces + lanes - 1) / lanes * lanes;
  return (batch + pieces - 1) / pieces;
}

bool InferenceSession::threads_chosen(int64_t batch) const {
  if (plans_.empty()) return true;
  const auto it = plans_[0].find(batch);
  return it == plans_[0].end() || it->second->threads.chosen();
}

InferenceSession::~InferenceSession() = default;

// Gives every value a node writes an offset in one arena (runtime/memory_plan.h).
void InferenceSession::place_in_arena(Plan& plan, const std::map<std::string, ValueInfo>& info) {
  std::map<std::string, size_t> index;  // value name -> entry in `values`
  std::vector<PlannedValue> values;
  std::vector<std::string> names;
  const int end = static_cast<int>(graph_.nodes.size());
  for (int step = 0; step < end; ++step) {
    const Node& n = graph_.nodes[step];
    for (const std::string& name : n.inputs) {
      auto it = index.find(name);
      if (it != index.end()) values[it->second].last = step;
    }
    for (const std::string& name : n.outputs) {
      const ValueInfo& v = info.at(name);
      index[name] = values.size();
      values.push_back({shape_numel(v.shape) * dtype_size(v.dtype), step, step});
      names.push_back(name);
    }
  }
  std::set<std::string> graph_outputs;
  for (const ValueInfo& v : graph_.outputs) {
    graph_outputs.insert(v.name);
    auto it = index.find(v.name);
    if (it != index.end()) values[it->second].last = end;  // read by the caller
  }
  // In place: an op that only relabels its input's bytes (Reshape, Flatten, Squeeze, Unsqueeze,
  // and a Transpose that moves only size-1 dims, such as channels_last's NCHW <-> NHWC of a
  // 1-channel image or of a pooled [N,C,1,1]) takes the input's buffer when it is the input's
  // last reader; its copy then has nothing to do.
  for (int step = 0; step < end; ++step) {
    const Node& n = graph_.nodes[step];
    bool relabels = n.op == OpKind::kReshape || n.op == OpKind::kFlatten ||
                    n.op == OpKind::kSqueeze || n.op == OpKind::kUnsqueeze;
    if (n.op == OpKind::kTranspose && n.attrs.has("perm") && !n.inputs.empty()) {
      relabels =
          ops::transpose_keeps_layout(info.at(n.inputs[0]).shape, n.attrs.get_ints("perm", {}));
    }
    if (!relabels || n.inputs.empty() || n.outputs.size() != 1) continue;
    auto in = index.find(n.inputs[0]);
    if (in == index.end() || graph_outputs.count(n.inputs[0])) continue;
    PlannedValue& x = values[in->second];
    PlannedValue& y = values[index.at(n.outputs[0])];
    if (x.last == step && x.bytes == y.bytes) y.alias_of = static_cast<int>(in->second);
  }
  const MemoryPlan mp = plan_memory(values);
  void* p = std::aligned_alloc(64, std::max<size_t>(mp.arena_bytes, 64));
  if (!p) throw std::bad_alloc();
  plan.arena =
      std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); });
  plan.arena_bytes = mp.arena_bytes;
  plan.unshared_bytes = mp.unshared_bytes;
  for (size_t i = 0; i < values.size(); ++i) {
    const ValueInfo& v = info.at(names[i]);
    std::shared_ptr<std::byte[]> at(plan.arena, plan.arena.get() + mp.offsets[i]);
    plan.values[names[i]] = Tensor::wrap(v.dtype, v.shape, std::move(at));
  }
}

size_t InferenceSession::arena_bytes() const { return last_plan_ ? last_plan_->arena_bytes : 0; }
size_t InferenceSession::unshared_bytes() const {
  return last_plan_ ? last_plan_->unshared_bytes : 0;
}

InferenceSession::Plan& InferenceSession::plan_for(int64_t batch, int set) {
  if (plans_.size() <= static_cast<size_t>(set)) plans_.resize(static_cast<size_t>(set) + 1);
  std::map<int64_t, std::unique_ptr<Plan>>& plans = plans_[static_cast<size_t>(set)];
  auto it = plans.find(batch);
  if (it != plans.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  auto info = graph_.infer_shapes(batch);
  for (const auto& [name, init] : graph_.initializers) plan->values[name] = init.value;
  for (const ValueInfo& v : graph_.inputs) plan->values[v.name] = Tensor();
  if (optimize_) place_in_arena(*plan, info);
  for (const Node& n : graph_.nodes) {
    Plan::Step s;
    InputInfos in;
    std::vector<ValueInfo> out;
    for (const std::string& name : n.inputs) {
      in.push_back(name.empty() ? nullptr : &info.at(name));
      s.in.push_back(name.empty() ? nullptr : &plan->values.at(name));
    }
    for (const std::string& name : n.outputs) {
      const ValueInfo& v = info.at(name);
      out.push_back(v);
      Tensor& t = plan->values[name];
      if (!t.defined()) t = Tensor(v.dtype, v.shape);  // not planned: its own buffer
      s.out.push_back(&t);
    }
    s.kernel = make_kernel(n, in, out, kernels_);
    // graph_ is never changed after construction, so its initializers are constant.
    std::vector<bool> constant;
    for (const std::string& name : n.inputs) constant.push_back(graph_.initializers.count(name));
    s.kernel->set_constant_inputs(constant);
    plan->steps.push_back(std::move(s));
  }
  Plan& ref = *plan;
  plans[batch] = std::move(plan);
  return ref;
}

const std::vector<Tensor>& InferenceSession::run(const std::map<std::string, Tensor>& feeds) {
  int64_t batch = -1;
  for (const ValueInfo& v : graph_.inputs) {
    auto it = feeds.find(v.name);
    if (it == feeds.end()) throw Error("missing input '" + v.name + "' " + shape_str(v.shape));
    const Tensor& t = it->second;
    bool ok = t.dtype() == v.dtype && t.rank() == static_cast<int>(v.shape.size());
    for (size_t d = 0; ok && d < v.shape.size(); ++d) {
      if (v.shape[d] == kDynamic) {
        if (batch < 0) batch = t.dim(static_cast<int>(d));
        ok = t.dim(static_cast<int>(d)) == batch;
      } else {
        ok = t.dim(static_cast<int>(d)) == v.shape[d];
      }
    }
    if (!ok) {
      throw Error("input '" + v.name + "' has shape " + shape_str(t.shape()) + " " +
                  std::string(dtype_name(t.dtype())) + ", expected " + shape_str(v.shape) + " " +
                  std::string(dtype_name(v.dtype)));
    }
  }
  for (const auto& [name, t] : feeds) {
    bool known = false;
    for (const ValueInfo& v : graph_.inputs) known = known || v.name == name;
    if (!known) throw Error("model has no input named '" + name + "'");
  }
  if (batch < 0) batch = 1;
  // Profiling times nodes one after another, so it keeps to one lane.
  const int lanes = profiling_ ? 1 : omp_get_max_threads();
  const int64_t piece = piece_size(batch, lanes);
  if (piece < batch) return run_in_pieces(feeds, batch, piece, lanes);
  Plan& plan = plan_for(batch);
  Plan* ran = &plan;
  auto run_on = [&](Plan& p) {
    for (const ValueInfo& v : graph_.inputs) p.values[v.name] = feeds.at(v.name);
    run_steps(p);
    ran = &p;
  };
  if (lanes < 2) {
    run_on(plan);
  } else {
    plan.threads.run(
        [&] {
          // Lane 0's plan, whose kernels were made for one thread (see run_in_pieces).
          OneThread one;
          run_on(plan_for(batch, 1));
        },
        [&] {
          run_on(plan);
          return true;
        });
  }
  last_plan_ = ran;
  // Assigned in place, not rebuilt: a copied Tensor would allocate its shape every run.
  results_.resize(graph_.outputs.size());
  for (size_t i = 0; i < results_.size(); ++i) {
    results_[i] = ran->values.at(graph_.outputs[i].name);
  }
  return results_;
}

void InferenceSession::run_steps(Plan& plan) {
  RunContext ctx;
  if (!profiling_) {
    for (Plan::Step& s : plan.steps) s.kernel->forward(s.in, s.out, ctx);
    return;
  }
  if (node_times_.empty()) {
    for (const Node& n : graph_.nodes) node_times_.push_back({n.name, op_def(n.op).name, 0.0, 0});
  }
  using Clock = std::chrono::steady_clock;
  for (size_t i = 0; i < plan.steps.size(); ++i) {  // step i runs graph_.nodes[i]
    Plan::Step& s = plan.steps[i];
    const Clock::time_point t0 = Clock::now();
    s.kernel->forward(s.in, s.out, ctx);
    NodeTime& t = node_times_[i];
    t.total_ms += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    ++t.calls;
  }
}

std::vector<InferenceSession::NodeTime> InferenceSession::node_times() const { return node_times_; }

// The batch in pieces of `piece` samples (and a remainder), each through a plan of its size;
// input slices are copied into the piece's buffers and output slices out of them, into output
// tensors kept per batch size, so that repeated runs allocate nothing. With lanes > 1 the
// threads take pieces in turn, each through its own lane's plans.
const std::vector<Tensor>& InferenceSession::run_in_pieces(
    const std::map<std::string, Tensor>& feeds, int64_t batch, int64_t piece, int lanes) {
  std::vector<Tensor>& outs = piece_outputs_[batch];
  if (outs.empty()) {
    const std::map<std::string, ValueInfo> info = graph_.infer_shapes(batch);
    for (const ValueInfo& v : graph_.outputs) {
      const ValueInfo& o = info.at(v.name);
      outs.emplace_back(o.dtype, o.shape);
    }
  }
  const int64_t pieces = (batch + piece - 1) / piece;
  lanes = static_cast<int>(std::min<int64_t>(lanes, pieces));
  // Each lane makes its own plans on its own thread (run_piece), so that their kernels are
  // built for one thread (a oneDNN primitive built for two would start two threads of its own
  // in every lane). Lane l keeps them in plans_[l + 1]; plans_[0] holds those of runs on all
  // threads.
  if (plans_.size() < static_cast<size_t>(lanes) + 1) plans_.resize(static_cast<size_t>(lanes) + 1);
  if (lanes == 1) {
    plan_for(piece, 0);
    if (batch % piece) plan_for(batch % piece, 0);
    for (int64_t k = 0; k < pieces; ++k) {
      run_piece(feeds, batch, k * piece, std::min(piece, batch - k * piece), 0, outs);
    }
  } else {
    if (!lane_workers_) lane_workers_ = std::make_unique<LaneWorkers>();
    // Lane l runs whole piece l first (lane 0 then the remainder) and then takes the next one
    // left. So every lane runs the plans it made on every run (their kernels' first calls, which
    // may allocate, all happen in the first run), and the remainder does not come last, where
    // it would keep one lane busy while the other waits.
    const int64_t whole = batch / piece, rest = batch % piece;
    std::atomic<int64_t> next{lanes};
    std::atomic<int> planned{0};  // lanes done making plans (or failing to)
    auto job = [&](int lane) {
      bool first_done = false, rest_done = false;
      {
        struct Done {
          std::atomic<int>& planned;
          ~Done() { planned.fetch_add(1); }
        } done{planned};
        // One lane at a time makes plans, and runs a new plan's first piece: kernels build on
        // their first call (oneDNN primitives are created then, and small layers time
        // candidate implementations), and two lanes building at once would time each other.
        // Worse, oneDNN 2.6 is not safe then: run in fresh processes on a busy host, the QAT
        // test's evaluation (tests/compress/test_qat_batchnorm.cpp) crashed inside oneDNN's
        // JIT code or computed wrong logits 1 to 6 times in 300, with both lanes timing the
        // candidates of the same layer.
        std::lock_guard<std::mutex> lock(plans_mu_);
        Plan& first = plan_for(piece, lane + 1);
        if (lane < whole && !first.ran) {
          run_piece(feeds, batch, lane * piece, piece, lane + 1, outs);
          first.ran = first_done = true;
        }
        if (lane == 0 && rest) {
          Plan& last = plan_for(rest, 1);
          if (!last.ran) {
            run_piece(feeds, batch, whole * piece, rest, 1, outs);
            last.ran = rest_done = true;
          }
        }
      }
      // And no lane runs while another makes plans or builds kernels: timing oneDNN candidates
      // executes the very primitives (from oneDNN's cache) a running lane executes, and once
      // in a test-suite run lane 0's first piece came out wrong (FloatResidualAdd, resnet8 at
      // batch 8: only sample 0's logits differed).
      while (planned.load() < lanes) std::this_thread::yield();
      if (lane < whole && !first_done) run_piece(feeds, batch, lane * piece, piece, lane + 1, outs);
      if (lane == 0 && rest && !rest_done) run_piece(feeds, batch, whole * piece, rest, 1, outs);
      for (int64_t k = next++; k < whole; k = next++) {
        run_piece(feeds, batch, k * piece, piece, lane + 1, outs);
      }
    };
    lane_workers_->run(lanes, job);
  }
  last_plan_ = &plan_for(piece, lanes == 1 ? 0 : 1);
  results_.resize(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) results_[i] = outs[i];
  return results_;
}

void InferenceSession::run_piece(const std::map<std::string, Tensor>& feeds, int64_t batch,
                                 int64_t start, int64_t len, int set, std::vector<Tensor>& outs) {
  Plan& plan = *plans_[static_cast<size_t>(set)].at(len);
  for (const ValueInfo& v : graph_.inputs) {
    const Tensor& full = feeds.at(v.name);
    const size_t sample = full.nbytes() / static_cast<size_t>(batch);
    Tensor& in = plan.chunk_inputs[v.name];
    if (!in.defined()) {
      Shape s = full.shape();
      s[0] = len;
      in = Tensor(full.dtype(), s);
    }
    std::memcpy(in.raw(), static_cast<const std::byte*>(full.raw()) + start * sample,
                sample * static_cast<size_t>(len));
    plan.values[v.name] = in;
  }
  run_steps(plan);
  for (size_t i = 0; i < outs.size(); ++i) {
    const Tensor& part = plan.values.at(graph_.outputs[i].name);
    const size_t sample = outs[i].nbytes() / static_cast<size_t>(batch);
    std::memcpy(static_cast<std::byte*>(outs[i].raw()) + start * sample, part.raw(),
                sample * static_cast<size_t>(len));
  }
}

}  // namespace minnow
