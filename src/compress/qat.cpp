#include "compress/qat.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "compress/qat_batchnorm.h"
#include "compress/quantize.h"
#include "minnow/error.h"
#include "passes/fresh_names.h"
#include "passes/graph_uses.h"
#include "passes/quant_range.h"
#include "passes/simplify_for_inference.h"

namespace minnow::compress {
namespace {

constexpr int64_t kWeightQmax = 127;  // symmetric int8 weights, [-127, 127] (quant_range.h)

Tensor scalar_f32(float v) {
  Tensor t(DType::kF32, {});
  t.f32()[0] = v;
  return t;
}

int64_t numel_per_sample(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d == kDynamic ? 1 : d;
  return std::max<int64_t>(n, 1);
}

// LSQ's gradient scale for a step size shared by `elements` values: 1 / sqrt(elements * qmax).
double lsq_grad_scale(int64_t elements, int64_t qmax) {
  return 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(elements, 1)) *
                         static_cast<double>(std::max<int64_t>(qmax, 1)));
}

int32_t scalar_int(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kU8:
      return t.data<uint8_t>()[0];
    case DType::kI8:
      return t.data<int8_t>()[0];
    default:
      throw Error("insert_fake_quantize: unexpected zero-point dtype " +
                  std::string(dtype_name(t.dtype())));
  }
}

// Where insert_qdq quantizes `g`, learned by running it on a copy: the activation values with
// the parameters it chose for them (ranges of passthrough groups already united), and the
// quantized compute nodes.
struct QdqPlan {
  std::map<std::string, ActivationQuant> activations;
  QdqSummary summary;
};

QdqPlan plan_qdq(const Graph& g, const std::map<std::string, ValueRange>& ranges,
                 const QdqOptions& opts) {
  Graph probe = g;
  QdqPlan plan;
  plan.summary = insert_qdq(probe, ranges, opts);
  for (const Node& n : probe.nodes) {
    if (n.op != OpKind::kQuantizeLinear) continue;
    const Tensor& zp = probe.initializers.at(n.inputs[2]).value;
    ActivationQuant q;
    q.scale = probe.initializers.at(n.inputs[1]).value.f32()[0];
    q.zero_point = scalar_int(zp);
    q.dtype = zp.dtype();
    plan.activations[n.inputs[0]] = q;
  }
  return plan;
}

// y = fq(w, s) per output channel (axis 0) or per tensor, as the FakeQuantize op computes it.
void fake_quantize_weight(Tensor& w, const Tensor& s) {
  const int64_t channels = s.numel();
  const int64_t per = w.numel() / std::max<int64_t>(channels, 1);
  float* d = w.f32();
  for (int64_t c = 0; c < channels; ++c) {
    const float sc = s.f32()[c];
    for (int64_t i = c * per; i < (c + 1) * per; ++i) {
      const float q =
          std::clamp(std::nearbyint(d[i] / sc), -float(kWeightQmax), float(kWeightQmax));
      d[i] = q * sc;
    }
  }
}

}  // namespace

QatState insert_fake_quantize(Graph& g, const data::Dataset& calibration_data,
                              const data::Normalization& norm, const QatOptions& opts) {
  if (opts.freeze_bn_epoch < 0) {
    throw Error("the BatchNorm freeze epoch must be >= 0, got " +
                std::to_string(opts.freeze_bn_epoch));
  }
  // Step 1 on the prepared (folded) graph, which is also the training graph unless BatchNorm
  // is simulated.
  Graph prepared = g;
  prepare_for_quantization(prepared);
  QatState state;
  state.calibration = calibrate(prepared, calibration_data, norm, opts.calibration);
  const QdqPlan plan = plan_qdq(prepared, state.calibration.ranges, opts.qdq);
  if (plan.summary.int8_nodes.empty()) {
    throw Error("nothing in model '" + g.name + "' can be quantized (no Conv2d, Linear, Add or " +
                "GlobalAvgPool on float data outside the layers kept in float)");
  }
  state.int8_nodes = plan.summary.int8_nodes;
  const std::set<std::string> quantized(plan.summary.int8_nodes.begin(),
                                        plan.summary.int8_nodes.end());
  // Conv -> the value its weight quantizer reads and the weights that value starts as.
  std::map<std::string, std::pair<std::string, const Tensor*>> weight_of;
  for (const Node& n : prepared.nodes) {
    if (!quantized.count(n.name) || (n.op != OpKind::kConv2d && n.op != OpKind::kLinear)) continue;
    weight_of[n.name] = {n.inputs[1], &prepared.initializers.at(n.inputs[1]).value};
  }
  if (opts.freeze_bn_epoch == 0) {
    // BatchNorm folding wrote the folded weights and biases as constants; they are what QAT
    // fine-tunes.
    for (const Node& n : prepared.nodes) {
      if (n.op != OpKind::kConv2d && n.op != OpKind::kLinear) continue;
      for (size_t i = 1; i < n.inputs.size() && i <= 2; ++i) {
        auto it = prepared.initializers.find(n.inputs[i]);
        if (it != prepared.initializers.end() && it->second.value.dtype() == DType::kF32) {
          it->second.trainable = true;
        }
      }
    }
    g = prepared;
  } else {
    simplify_for_inference(g);
    // Training writes weights and running statistics in place, and graph copies share tensor
    // storage: the caller's float model must not change.
    for (auto& [name, init] : g.initializers) init.value = init.value.clone();
    for (const SimulatedBatchNorm& sim : simulate_batchnorm_folding(g, quantized)) {
      weight_of[sim.conv].first = sim.folded_weight;  // starts as the folded weight
    }
    state.simulated_batchnorm = true;
  }
  const std::map<std::string, ValueInfo> info = g.infer_shapes();

  FreshNames names(g);
  std::vector<Node> out;
  std::map<std::string, std::string> replaced;  // value -> FakeQuantize output
  auto emit = [&](FakeQuantPoint p, const std::string& scale_init, Tensor scale, Tensor zp,
                  int64_t axis, double grad_scale) {
    p.node = names.node(p.value + "/FakeQuantize");
    p.output = names.value(p.value + "_fake_quantized");
    p.scale = names.value(scale_init);
    g.initializers[p.scale] = Initializer{std::move(scale), true};
    Node n;
    n.name = p.node;
    n.op = OpKind::kFakeQuantize;
    n.inputs = {p.value, p.scale};
    if (zp.defined()) {
      p.zero_point = names.value(p.value + "_fq_zero_point");
      g.initializers[p.zero_point] = Initializer{std::move(zp), false};
      n.inputs.push_back(p.zero_point);
    }
    n.outputs = {p.output};
    n.attrs.set("quant_min", p.qmin);
    n.attrs.set("quant_max", p.qmax);
    n.attrs.set("axis", axis);
    n.attrs.set("grad_scale", grad_scale);
    out.push_back(std::move(n));
    replaced[p.value] = p.output;
    return p;
  };
  auto emit_activation = [&](const std::string& v) {
    auto it = plan.activations.find(v);
    if (it == plan.activations.end()) return;
    const ActivationQuant& q = it->second;
    FakeQuantPoint p;
    p.value = v;
    const bool u8 = q.dtype == DType::kU8;
    p.qmin = u8 ? 0 : -kWeightQmax;  // i8 activations are symmetric like the weights
    p.qmax = u8 ? 255 : kWeightQmax;
    const double gs = lsq_grad_scale(numel_per_sample(info.at(v).shape), p.qmax);
    state.activations.push_back(emit(p, v + "_fq_scale", scalar_f32(q.scale),
                                     scalar_f32(static_cast<float>(q.zero_point)), 1, gs));
  };
  auto weight_output = [&](const std::string& conv) {
    const auto& [w, start] = weight_of.at(conv);
    auto it = replaced.find(w);
    if (it != replaced.end()) return it->second;
    const Tensor& wt = *start;
    const int64_t channels = opts.qdq.per_channel ? wt.dim(0) : 1;
    const int64_t per = wt.numel() / std::max<int64_t>(channels, 1);
    const QuantizedWeights q = quantize_weights_per_channel(wt.f32(), channels, per, 8);
    Tensor scale = opts.qdq.per_channel ? Tensor(DType::kF32, {channels}) : Tensor(DType::kF32, {});
    std::copy(q.scale.begin(), q.scale.end(), scale.f32());
    FakeQuantPoint p;
    p.value = w;
    p.consumer = conv;
    p.qmin = -kWeightQmax;
    p.qmax = kWeightQmax;
    state.weights.push_back(
        emit(p, w + "_fq_scale", std::move(scale), Tensor(), 0, lsq_grad_scale(per, p.qmax)));
    return state.weights.back().output;
  };

  for (const ValueInfo& v : g.inputs) emit_activation(v.name);
  for (const Node& original : g.nodes) {
    Node n = original;
    for (std::string& in : n.inputs) {
      auto it = replaced.find(in);
      if (it != replaced.end()) in = it->second;
    }
    if (quantized.count(n.name) && (n.op == OpKind::kConv2d || n.op == OpKind::kLinear)) {
      n.inputs[1] = weight_output(n.name);
    }
    out.push_back(std::move(n));
    for (const std::string& o : original.outputs) emit_activation(o);
  }
  g.nodes = std::move(out);
  g.validate();
  return state;
}

void add_qat_hooks(const QatState& state, TrainConfig& config) {
  // Scale initializer -> the weight it quantizes ("" for activations).
  auto scales = std::make_shared<std::map<std::string, std::string>>();
  for (const FakeQuantPoint& p : state.activations) (*scales)[p.scale] = "";
  for (const FakeQuantPoint& p : state.weights) (*scales)[p.scale] = p.value;
  auto before = std::make_shared<std::map<std::string, std::vector<float>>>();
  auto prev_before = config.before_step;
  auto prev_after = config.after_step;
  config.before_step = [=](int64_t step, std::vector<ParamRef>& params) {
    if (prev_before) prev_before(step, params);
    for (const ParamRef& p : params) {
      if (!scales->count(p.name)) continue;
      const float* v = p.value.f32();
      (*before)[p.name].assign(v, v + p.value.numel());
    }
  };
  config.after_step = [=](int64_t step, std::vector<ParamRef>& params) {
    std::map<std::string, const Tensor*> values;
    for (const ParamRef& p : params) values[p.name] = &p.value;
    for (ParamRef& p : params) {
      auto it = scales->find(p.name);
      auto old = before->find(p.name);
      if (it == scales->end() || old == before->end()) continue;
      float* s = p.value.f32();
      const int64_t n = p.value.numel();
      for (int64_t c = 0; c < n; ++c) {
        // The optimizer's step, taken in log space (bounded: one step never more than doubles
        // or halves a scale).
        const double step_log = std::clamp(double(s[c]) - double(old->second[c]), -0.69, 0.69);
        s[c] = static_cast<float>(old->second[c] * std::exp(step_log));
      }
      if (it->second.empty()) continue;
      auto w = values.find(it->second);
      if (w == values.end()) continue;  // a frozen weight: its scale may roam freely
      const float* wd = w->second->f32();
      const int64_t per = w->second->numel() / std::max<int64_t>(n, 1);
      for (int64_t c = 0; c < n; ++c) {
        float amax = 0;
        for (int64_t i = c * per; i < (c + 1) * per; ++i) amax = std::max(amax, std::fabs(wd[i]));
        const float cap = amax / float(kWeightQmax);
        if (cap > 0 && s[c] > cap) s[c] = cap;
      }
    }
    if (prev_after) prev_after(step, params);
  };
}

QatState freeze_batchnorm(Graph& g, const QatState& state, const Graph& float_graph,
                          const data::Dataset& calibration_data, const data::Normalization& norm,
                          const QatOptions& opts) {
  if (!state.simulated_batchnorm) return state;
  // The float graph with the trained tensors (weights, BatchNorm parameters and running
  // statistics keep their names in the simulation).
  Graph frozen = float_graph;
  for (auto& [name, init] : frozen.initializers) {
    auto it = g.initializers.find(name);
    if (it != g.initializers.end()) init.value = it->second.value.clone();
  }
  QatOptions o = opts;
  o.freeze_bn_epoch = 0;
  QatState next = insert_fake_quantize(frozen, calibration_data, norm, o);
  // The learned scales. Activations are the same values in both graphs; a conv's folded weight
  // with the running statistics is what its simulated quantizer saw, so its scale carries over.
  std::map<std::string, const FakeQuantPoint*> act, weight;
  for (const FakeQuantPoint& p : state.activations) act[p.value] = &p;
  for (const FakeQuantPoint& p : state.weights) weight[p.consumer] = &p;
  auto copy = [&](const std::string& from, const std::string& to) {
    const Tensor& src = g.initializers.at(from).value;
    Tensor& dst = frozen.initializers.at(to).value;
    if (src.shape() == dst.shape()) dst = src.clone();
  };
  for (const FakeQuantPoint& p : next.activations) {
    auto it = act.find(p.value);
    if (it == act.end()) continue;
    copy(it->second->scale, p.scale);
    copy(it->second->zero_point, p.zero_point);
  }
  for (const FakeQuantPoint& p : next.weights) {
    auto it = weight.find(p.consumer);
    if (it != weight.end()) copy(it->second->scale, p.scale);
  }
  // The learned weight scale may exceed the cap (max|w_c| / qmax) the hooks keep in frozen
  // training; the first step's cap brings it back.
  next.calibration = state.calibration;
  g = std::move(frozen);
  return next;
}

QatState train_qat(Graph& g, QatState state, const Graph& float_graph,
                   const data::Dataset& train_data, const data::Normalization& norm,
                   const QatOptions& opts, const TrainConfig& config, const QatTrainFn& train,
                   TrainResult* result) {
  const int64_t simulated =
      state.simulated_batchnorm ? std::min(opts.freeze_bn_epoch, config.epochs) : 0;
  TrainResult r;
  if (simulated > 0) {
    TrainConfig phase = config;
    phase.stop_after_epoch = simulated;
    add_qat_hooks(state, phase);
    r = train(g, phase);
  }
  state = freeze_batchnorm(g, state, float_graph, train_data, norm, opts);
  if (simulated < config.epochs && !r.stopped_early) {
    TrainConfig phase = config;
    phase.start_epoch = simulated + 1;
    add_qat_hooks(state, phase);
    TrainResult rest = train(g, phase);
    r.history.insert(r.history.end(), rest.history.begin(), rest.history.end());
    r.epochs_run = rest.epochs_run;
    r.steps = rest.steps;
    r.images += rest.images;
    r.train_seconds += rest.train_seconds;
    r.final_train_loss = rest.final_train_loss;
    r.stopped_early = rest.stopped_early;
  }
  if (result) *result = r;
  return state;
}

QdqSummary convert_qat(Graph& g, const QatState& state, const QatOptions& opts) {
  std::map<std::string, std::string> original;  // FakeQuantize output -> its input
  std::map<std::string, ValueRange> ranges;
  auto check = [&](const FakeQuantPoint& p) {
    const Node* n = g.find_node(p.node);
    if (!n || n->op != OpKind::kFakeQuantize || n->outputs.at(0) != p.output ||
        !g.initializers.count(p.scale)) {
      throw Error("convert_qat: the graph no longer holds FakeQuantize node '" + p.node + "'");
    }
    original[p.output] = p.value;
    return &g.initializers.at(p.scale).value;
  };
  for (const FakeQuantPoint& p : state.activations) {
    const Tensor* s = check(p);
    const float scale = s->f32()[0];
    const float zp = std::clamp(std::nearbyint(g.initializers.at(p.zero_point).value.f32()[0]),
                                float(p.qmin), float(p.qmax));
    if (!(scale > 0) || !std::isfinite(scale)) {
      throw Error("convert_qat: learned scale of '" + p.value + "' is not finite and positive");
    }
    ranges[p.value] = ValueRange{(float(p.qmin) - zp) * scale, (float(p.qmax) - zp) * scale};
  }
  for (const FakeQuantPoint& p : state.weights) {
    const Tensor* s = check(p);
    // A copy: graph copies share tensor storage, and the caller's float model must not change.
    Tensor& w = g.initializers.at(p.value).value;
    w = w.clone();
    fake_quantize_weight(w, *s);
  }
  std::vector<char> removed(g.nodes.size(), 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.op == OpKind::kFakeQuantize && original.count(n.outputs[0])) {
      removed[i] = 1;
      continue;
    }
    for (std::string& in : n.inputs) {
      auto it = original.find(in);
      if (it != original.end()) in = it->second;
    }
  }
  remove_nodes(g, removed);
  remove_unread_initializers(g);
  // insert_qdq wants a range for every value a quantized node reads: those are exactly the
  // values that had a FakeQuantize. Calibrated ranges fill any value the training graph lacked.
  for (const auto& [v, r] : state.calibration.ranges) ranges.emplace(v, r);
  return insert_qdq(g, ranges, opts.qdq);
}

QatResult quantize_aware_train(Graph& g, const data::Dataset& train_data,
                               const data::Normalization& norm, const QatOptions& opts,
                               TrainConfig config) {
  QatResult r;
  const Graph float_graph = g;
  r.state = insert_fake_quantize(g, train_data, norm, opts);
  r.state = train_qat(
      g, r.state, float_graph, train_data, norm, opts, config,
      [&](Graph& graph, const TrainConfig& c) { return train_model(graph, train_data, norm, c); },
      &r.train);
  r.summary = convert_qat(g, r.state, opts);
  return r;
}

}  // namespace minnow::compress
