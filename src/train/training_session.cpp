#include "train/training_session.h"

#include <cmath>
#include <cstring>

#include "core/rng.h"
#include "minnow/error.h"
#include "passes/fuse_activation.h"
#include "passes/fuse_batchnorm_depthwise.h"

namespace minnow {

// Values are addressed by index in the step loop; names are resolved once when planning.
struct TrainingSession::Plan {
  int64_t batch = 0;
  std::vector<std::string> names;
  std::vector<Tensor> values;
  std::vector<Tensor> grads;    // empty tensors for values that need no gradient
  std::vector<Tensor> scratch;  // for the second and later gradient contributions (fan-out)
  std::vector<char> needs_grad;
  std::vector<char> grad_written;
  std::vector<int> param_ids;  // value id of params_[i]
  struct Step {
    const Node* node;
    std::unique_ptr<Kernel> kernel;
    std::vector<int> in, out;
    std::vector<Tensor*> in_ptrs, out_ptrs;
    bool backward = false;
  };
  std::vector<Step> steps;
  int input_id = -1, labels_id = -1, output_id = -1, loss_id = -1, lengths_id = -1;
  int teacher_id = -1, feature_id = -1;
  bool grads_allocated = false;
};

TrainingSession::TrainingSession(const Graph& graph, SessionOptions options)
    : graph_(graph), options_(options) {
  const bool two_inputs = graph.inputs.size() == 2 && graph.inputs[1].dtype == DType::kI64 &&
                          graph.inputs[1].shape.size() == 1;
  if ((graph.inputs.size() != 1 && !two_inputs) || graph.outputs.size() != 1) {
    throw Error(
        "training needs a model with one output and one input (or an input and i64 [N] "
        "sequence lengths); '" +
        graph.name + "' has " + std::to_string(graph.inputs.size()) + " inputs and " +
        std::to_string(graph.outputs.size()) + " outputs");
  }
  input_name_ = graph.inputs[0].name;
  if (two_inputs) lengths_name_ = graph.inputs[1].name;
  output_name_ = graph.outputs[0].name;
  labels_name_ = "__labels";
  loss_name_ = "__loss";
  ValueInfo logits = graph.infer_shapes().at(output_name_);
  Node loss;
  loss.name = "__loss";
  loss.inputs = {output_name_, labels_name_};
  loss.outputs = {loss_name_};
  ValueInfo labels{labels_name_, DType::kF32, logits.shape};
  switch (options.loss) {
    case LossKind::kSoftmaxCrossEntropy:
      loss.op = OpKind::kSoftmaxCrossEntropy;
      loss.attrs.set("label_smoothing", options.label_smoothing);
      labels.dtype = DType::kI64;
      labels.shape = {logits.shape.empty() ? kDynamic : logits.shape[0]};
      break;
    case LossKind::kMse:
      loss.op = OpKind::kMseLoss;
      break;
    case LossKind::kBceWithLogits:
      loss.op = OpKind::kBceWithLogits;
      break;
    case LossKind::kDistillation:
      labels.dtype = DType::kI64;
      labels.shape = {logits.shape.empty() ? kDynamic : logits.shape[0]};
      break;
  }
  graph_.inputs.push_back(labels);
  if (options.loss == LossKind::kDistillation) {
    add_distillation_loss(logits);
  } else {
    graph_.nodes.push_back(loss);
  }
  // Fused after the loss nodes exist: a value the hint term reads has two readers and stays.
  if (options.fuse_batchnorm_activation) fuse_batchnorm_activation(graph_);
  if (options.fuse_batchnorm_depthwise) fuse_batchnorm_depthwise(graph_);
  graph_.outputs = {ValueInfo{loss_name_, DType::kF32, {}}};
  graph_.validate();
  for (auto& [name, init] : graph_.initializers) {
    if (init.trainable)
      params_.push_back(ParamRef{name, init.value, Tensor(init.value.dtype(), init.value.shape())});
  }
}

TrainingSession::~TrainingSession() = default;

void TrainingSession::add_distillation_loss(const ValueInfo& logits) {
  const DistillationOptions& d = options_.distill;
  teacher_name_ = "__teacher_logits";
  graph_.inputs.push_back(ValueInfo{teacher_name_, logits.dtype, logits.shape});
  Node kd;
  kd.name = "__distill_loss";
  kd.op = OpKind::kDistillationLoss;
  kd.inputs = {output_name_, labels_name_, teacher_name_};
  kd.attrs.set("temperature", d.temperature);
  kd.attrs.set("alpha", d.alpha);
  if (d.student_feature.empty()) {
    kd.outputs = {loss_name_};
    graph_.nodes.push_back(kd);
    return;
  }
  kd.outputs = {"__distill_soft"};
  graph_.nodes.push_back(kd);
  if (!(d.feature_weight >= 0)) throw Error("distillation feature weight must be >= 0");
  auto info = graph_.infer_shapes();
  auto it = info.find(d.student_feature);
  if (it == info.end()) {
    throw Error("distillation feature: student '" + graph_.name + "' has no value '" +
                d.student_feature + "'");
  }
  const ValueInfo& s = it->second;
  const Shape& t = d.teacher_feature;
  const bool conv =
      s.shape.size() == 4 && t.size() == 3 && s.shape[2] == t[1] && s.shape[3] == t[2];
  const bool dense = s.shape.size() == 2 && t.size() == 1;
  if (!conv && !dense) {
    throw Error("distillation feature: student value '" + d.student_feature + "' has shape " +
                shape_str(s.shape) + " and the teacher's feature has per-sample shape " +
                shape_str(t) +
                "; expected [N, C] and [C'] or [N, C, H, W] and [C', H, W] (same H, W)");
  }
  feature_name_ = "__teacher_feature";
  Shape tshape = {kDynamic};
  tshape.insert(tshape.end(), t.begin(), t.end());
  graph_.inputs.push_back(ValueInfo{feature_name_, s.dtype, tshape});
  // Adapter: PyTorch-default init (U(+-1/sqrt(fan_in))), trained with the student.
  const int64_t cin = s.shape[1], cout = t[0];
  Rng rng = Rng::derive(d.adapter_seed, 0xADA9);
  const float bound = 1.0f / std::sqrt(static_cast<float>(cin));
  Tensor w(DType::kF32, conv ? Shape{cout, cin, 1, 1} : Shape{cout, cin});
  Tensor b(DType::kF32, {cout});
  for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = rng.uniform(-bound, bound);
  for (int64_t i = 0; i < b.numel(); ++i) b.f32()[i] = rng.uniform(-bound, bound);
  adapter_params_ = w.numel() + b.numel();
  graph_.initializers["__adapter.weight"] = Initializer{w, true};
  graph_.initializers["__adapter.bias"] = Initializer{b, true};
  Tensor weight(DType::kF32, {});
  weight.f32()[0] = static_cast<float>(d.feature_weight);
  graph_.initializers["__hint_weight"] = Initializer{weight, false};
  Node adapter;
  adapter.name = "__adapter";
  adapter.op = conv ? OpKind::kConv2d : OpKind::kLinear;
  adapter.inputs = {d.student_feature, "__adapter.weight", "__adapter.bias"};
  adapter.outputs = {"__adapter"};
  if (conv) {
    adapter.attrs.set("strides", std::vector<int64_t>{1, 1});
    adapter.attrs.set("pads", std::vector<int64_t>{0, 0, 0, 0});
    adapter.attrs.set("dilations", std::vector<int64_t>{1, 1});
    adapter.attrs.set("group", int64_t{1});
  }
  Node mse;
  mse.name = "__hint_mse";
  mse.op = OpKind::kMseLoss;
  mse.inputs = {"__adapter", feature_name_};
  mse.outputs = {"__hint_mse"};
  Node scaled;
  scaled.name = "__hint_loss";
  scaled.op = OpKind::kMul;
  scaled.inputs = {"__hint_mse", "__hint_weight"};
  scaled.outputs = {"__hint_loss"};
  Node total;
  total.name = "__loss";
  total.op = OpKind::kAdd;
  total.inputs = {"__distill_soft", "__hint_loss"};
  total.outputs = {loss_name_};
  graph_.nodes.insert(graph_.nodes.end(), {adapter, mse, scaled, total});
}

void TrainingSession::set_teacher(const Tensor& logits, const Tensor& feature) {
  if (!distilling()) throw Error("set_teacher: the session was not made for distillation");
  teacher_logits_ = logits;
  teacher_feature_ = feature;
}

TrainingSession::Plan& TrainingSession::plan_for(int64_t batch) {
  auto it = plans_.find(batch);
  if (it != plans_.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  plan->batch = batch;
  auto info = graph_.infer_shapes(batch);
  std::map<std::string, int> id;
  auto add_value = [&](const std::string& name) {
    auto [pos, inserted] = id.emplace(name, static_cast<int>(plan->names.size()));
    if (inserted) {
      plan->names.push_back(name);
      auto init = graph_.initializers.find(name);
      if (init != graph_.initializers.end()) {
        plan->values.push_back(init->second.value);  // shares storage
        plan->needs_grad.push_back(init->second.trainable);
      } else {
        const ValueInfo& v = info.at(name);
        plan->values.emplace_back(v.dtype, v.shape);
        plan->needs_grad.push_back(0);
      }
    }
    return pos->second;
  };
  for (const ValueInfo& v : graph_.inputs) add_value(v.name);
  for (const auto& [name, init] : graph_.initializers) add_value(name);
  for (const Node& n : graph_.nodes) {
    Plan::Step s;
    s.node = &n;
    InputInfos in;
    std::vector<ValueInfo> out;
    bool any_grad = false;
    for (const std::string& name : n.inputs) {
      if (name.empty()) {
        s.in.push_back(-1);
        in.push_back(nullptr);
        continue;
      }
      int v = add_value(name);
      s.in.push_back(v);
      in.push_back(&info.at(name));
      any_grad = any_grad || plan->needs_grad[v];
    }
    for (const std::string& name : n.outputs) {
      int v = add_value(name);
      s.out.push_back(v);
      out.push_back(info.at(name));
      plan->needs_grad[v] = any_grad;
    }
    if (any_grad && !op_def(n.op).has_gradient) {
      throw Error("node '" + n.name + "' (" + op_def(n.op).name +
                  ") has trainable parameters upstream but its op has no gradient");
    }
    s.backward = any_grad;
    s.kernel = make_kernel(n, in, out, options_.kernels);
    plan->steps.push_back(std::move(s));
  }
  // Pointers are taken after all values exist: the vector no longer reallocates.
  for (Plan::Step& s : plan->steps) {
    for (int v : s.in) s.in_ptrs.push_back(v >= 0 ? &plan->values[v] : nullptr);
    for (int v : s.out) s.out_ptrs.push_back(&plan->values[v]);
  }
  plan->input_id = id.at(input_name_);
  plan->labels_id = id.at(labels_name_);
  plan->output_id = id.at(output_name_);
  plan->loss_id = id.at(loss_name_);
  if (!teacher_name_.empty()) plan->teacher_id = id.at(teacher_name_);
  if (!feature_name_.empty()) plan->feature_id = id.at(feature_name_);
  if (!lengths_name_.empty()) plan->lengths_id = id.at(lengths_name_);
  for (const ParamRef& p : params_) plan->param_ids.push_back(id.at(p.name));
  Plan& ref = *plan;
  plans_[batch] = std::move(plan);
  return ref;
}

static void check_batch_input(const std::string& what, const Tensor& t, const ValueInfo& expected,
                              int64_t batch) {
  Shape want = expected.shape;
  for (int64_t& d : want) {
    if (d == kDynamic) d = batch;
  }
  if (t.shape() != want || t.dtype() != expected.dtype) {
    throw Error(what + " has shape " + shape_str(t.shape()) + " " +
                std::string(dtype_name(t.dtype())) + ", expected " + shape_str(want) + " " +
                std::string(dtype_name(expected.dtype)));
  }
}

float TrainingSession::run_forward(Plan& plan, const Tensor& x, const Tensor& labels,
                                   const Tensor& lengths, bool training, Rng* rng) {
  check_batch_input("input", x, graph_.inputs[0], plan.batch);
  const size_t labels_index = lengths_name_.empty() ? 1 : 2;
  check_batch_input("labels", labels, graph_.inputs[labels_index], plan.batch);
  plan.values[plan.input_id] = x;
  plan.values[plan.labels_id] = labels;
  if (plan.teacher_id >= 0) {
    if (!teacher_logits_.defined()) throw Error("distillation: no teacher logits for this batch");
    check_batch_input("teacher logits", teacher_logits_, graph_.inputs[labels_index + 1],
                      plan.batch);
    plan.values[plan.teacher_id] = teacher_logits_;
  }
  if (plan.feature_id >= 0) {
    if (!teacher_feature_.defined()) throw Error("distillation: no teacher feature for this batch");
    check_batch_input("teacher feature", teacher_feature_, graph_.inputs[labels_index + 2],
                      plan.batch);
    plan.values[plan.feature_id] = teacher_feature_;
  }
  if (plan.lengths_id >= 0) {
    if (!lengths.defined()) throw Error("model '" + graph_.name + "' needs sequence lengths");
    check_batch_input("lengths", lengths, graph_.inputs[1], plan.batch);
    plan.values[plan.lengths_id] = lengths;
  }
  RunContext ctx{training, rng};
  for (Plan::Step& s : plan.steps) {
    if (!profiler_.enabled()) {
      s.kernel->forward(s.in_ptrs, s.out_ptrs, ctx);
      continue;
    }
    const auto start = StepProfiler::Clock::now();
    s.kernel->forward(s.in_ptrs, s.out_ptrs, ctx);
    profiler_.add(s.node->name, op_def(s.node->op).name, false, start);
  }
  last_plan_ = &plan;
  return plan.values[plan.loss_id].f32()[0];
}

float TrainingSession::evaluate(const Tensor& x, const Tensor& labels, const Tensor& lengths) {
  if (x.rank() == 0) throw Error("input has no batch dimension");
  return run_forward(plan_for(x.dim(0)), x, labels, lengths, false, nullptr);
}

static void add_into(Tensor& dst, const Tensor& src) {
  float* d = dst.f32();
  const float* s = src.f32();
  int64_t n = dst.numel();
#pragma omp parallel for if (n >= (1 << 16))
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];
}

float TrainingSession::train_step(const Tensor& x, const Tensor& labels, Rng& rng,
                                  const Tensor& lengths) {
  if (x.rank() == 0) throw Error("input has no batch dimension");
  Plan& plan = plan_for(x.dim(0));
  if (!plan.grads_allocated) {
    plan.grads.resize(plan.values.size());
    plan.scratch.resize(plan.values.size());
    plan.grad_written.assign(plan.values.size(), 0);
    for (size_t v = 0; v < plan.values.size(); ++v) {
      if (!plan.needs_grad[v]) continue;
      plan.grads[v] = Tensor(plan.values[v].dtype(), plan.values[v].shape());
      plan.scratch[v] = Tensor(plan.values[v].dtype(), plan.values[v].shape());
    }
    // Parameter gradients live in params_ so the optimizer finds them whatever the batch size.
    for (size_t i = 0; i < params_.size(); ++i) plan.grads[plan.param_ids[i]] = params_[i].grad;
    plan.grads_allocated = true;
  }
  float loss = run_forward(plan, x, labels, lengths, true, &rng);
  if (!std::isfinite(loss)) return loss;  // the caller reports; no backward through NaN

  std::fill(plan.grad_written.begin(), plan.grad_written.end(), 0);
  plan.grads[plan.loss_id].f32()[0] = 1.0f;
  plan.grad_written[plan.loss_id] = 1;
  RunContext ctx{true, &rng};
  std::vector<Tensor*> gout, gin;
  std::vector<int> deferred;  // inputs whose gradient went to scratch and must be added
  for (auto it = plan.steps.rbegin(); it != plan.steps.rend(); ++it) {
    Plan::Step& s = *it;
    if (!s.backward) continue;
    gout.clear();
    gin.clear();
    deferred.clear();
    bool any_out = false;
    for (int v : s.out) {
      bool has = plan.grad_written[v];
      any_out = any_out || has;
      gout.push_back(has ? &plan.grads[v] : nullptr);
    }
    if (!any_out) continue;  // output does not reach the loss
    for (int v : s.in) {
      if (v < 0 || !plan.needs_grad[v]) {
        gin.push_back(nullptr);
      } else if (!plan.grad_written[v]) {
        gin.push_back(&plan.grads[v]);
        plan.grad_written[v] = 1;
      } else {
        gin.push_back(&plan.scratch[v]);
        deferred.push_back(v);
      }
    }
    // The same value twice as input of one node (x + x) must not share one scratch buffer.
    for (size_t i = 0; i < s.in.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (s.in[i] >= 0 && s.in[i] == s.in[j] && gin[i] && gin[i] == gin[j]) {
          throw Error("node '" + s.node->name + "' reads value '" + plan.names[s.in[i]] +
                      "' twice; training such a node is not supported");
        }
      }
    }
    const auto start = StepProfiler::Clock::now();
    s.kernel->backward(s.in_ptrs, s.out_ptrs, gout, gin, ctx);
    for (int v : deferred) add_into(plan.grads[v], plan.scratch[v]);
    if (profiler_.enabled()) profiler_.add(s.node->name, op_def(s.node->op).name, true, start);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!plan.grad_written[plan.param_ids[i]]) params_[i].grad.fill_zero();
  }
  return loss;
}

const Tensor& TrainingSession::logits() const {
  if (!last_plan_) throw Error("no forward pass has run yet");
  return last_plan_->values[last_plan_->output_id];
}

std::string TrainingSession::first_non_finite_node() const {
  if (!last_plan_) return "";
  for (const Plan::Step& s : last_plan_->steps) {
    for (int v : s.out) {
      const Tensor& t = last_plan_->values[v];
      if (t.dtype() != DType::kF32) continue;
      const float* p = t.f32();
      for (int64_t i = 0; i < t.numel(); ++i) {
        if (!std::isfinite(p[i])) {
          return "node '" + s.node->name + "' (" + op_def(s.node->op).name + ")";
        }
      }
    }
  }
  return "";
}

}  // namespace minnow
