#include "runtime/inference_session.h"

#include "minnow/error.h"
#include "passes/fold_batchnorm.h"
#include "passes/fuse_activation.h"
#include "passes/simplify_for_inference.h"

namespace minnow {

struct InferenceSession::Plan {
  std::map<std::string, Tensor> values;  // std::map: pointers stay valid as it grows
  struct Step {
    std::unique_ptr<Kernel> kernel;
    std::vector<Tensor*> in, out;
  };
  std::vector<Step> steps;
};

InferenceSession::InferenceSession(Graph graph, KernelChoice kernels, bool rewrite)
    : graph_(std::move(graph)), kernels_(kernels) {
  graph_.validate();
  graph_.infer_shapes();
  // Inference-only rewrites; each keeps every graph input and output name.
  if (rewrite) {
    simplify_for_inference(graph_);
    fold_batchnorm(graph_);
    fuse_activation(graph_, {OpKind::kConv2d, OpKind::kLinear, OpKind::kBatchNorm});
    graph_.validate();
  }
  if (graph_.inputs.empty() || graph_.outputs.empty()) {
    throw Error("model '" + graph_.name + "' has no inputs or no outputs");
  }
}

InferenceSession::~InferenceSession() = default;

InferenceSession::Plan& InferenceSession::plan_for(int64_t batch) {
  auto it = plans_.find(batch);
  if (it != plans_.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  auto info = graph_.infer_shapes(batch);
  for (const auto& [name, init] : graph_.initializers) plan->values[name] = init.value;
  for (const ValueInfo& v : graph_.inputs) plan->values[v.name] = Tensor();
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
      s.out.push_back(&(plan->values[name] = Tensor(v.dtype, v.shape)));
    }
    s.kernel = make_kernel(n, in, out, kernels_);
    plan->steps.push_back(std::move(s));
  }
  Plan& ref = *plan;
  plans_[batch] = std::move(plan);
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
  Plan& plan = plan_for(batch);
  for (const ValueInfo& v : graph_.inputs) plan.values[v.name] = feeds.at(v.name);
  RunContext ctx;
  for (Plan::Step& s : plan.steps) s.kernel->forward(s.in, s.out, ctx);
  results_.clear();
  for (const ValueInfo& v : graph_.outputs) results_.push_back(plan.values.at(v.name));
  return results_;
}

}  // namespace minnow
