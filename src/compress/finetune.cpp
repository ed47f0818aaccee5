#include "compress/finetune.h"

#include <cmath>

#include "core/rng.h"
#include "minnow/error.h"
#include "passes/lora.h"

namespace minnow::compress {

std::string find_head(const Graph& g) {
  if (g.outputs.size() != 1) {
    throw Error("fine-tuning needs a model with one output; '" + g.name + "' has " +
                std::to_string(g.outputs.size()));
  }
  std::string v = g.outputs[0].name;
  for (const Node* n = g.producer(v); n; n = g.producer(v)) {
    if (n->op == OpKind::kLinear) {
      if (n->inputs.size() < 2 || !g.initializers.count(n->inputs[1])) break;
      return n->name;
    }
    int data_inputs = 0;
    for (const std::string& in : n->inputs) {
      if (in.empty()) continue;
      if (g.initializers.count(in)) {
        if (n->op != OpKind::kReshape) data_inputs = 99;  // a parametrized op: not a pass-through
        continue;
      }
      ++data_inputs;
      v = in;
    }
    if (data_inputs != 1) break;
  }
  throw Error("model '" + g.name + "': no Linear classification head feeds output '" +
              g.outputs[0].name + "'");
}

std::string replace_head(Graph& g, int64_t classes, uint64_t seed) {
  if (classes < 1) throw Error("--classes must be >= 1, got " + std::to_string(classes));
  const std::string head = find_head(g);
  const Node& n = *g.find_node(head);
  Initializer& w = g.initializers.at(n.inputs[1]);
  if (w.value.rank() != 2) throw Error("head '" + head + "' has a weight that is not 2-d");
  const int64_t in = w.value.dim(1);
  Rng rng = Rng::derive(seed, 0x4EAD);
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  Tensor nw(DType::kF32, {classes, in});
  for (int64_t i = 0; i < nw.numel(); ++i) nw.f32()[i] = rng.uniform(-bound, bound);
  w = Initializer{nw, true};
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    Tensor nb(DType::kF32, {classes});
    for (int64_t i = 0; i < nb.numel(); ++i) nb.f32()[i] = rng.uniform(-bound, bound);
    g.initializers.at(n.inputs[2]) = Initializer{nb, true};
  }
  // Values between the head and the output keep their rank; their last dim is the class count.
  auto info = g.infer_shapes();
  g.outputs[0] = info.at(g.outputs[0].name);
  g.validate();
  return head;
}

std::vector<std::string> freeze_nodes(Graph& g, const std::vector<std::string>& patterns) {
  std::vector<std::string> frozen;
  for (const std::string& p : patterns) {
    bool any = false;
    for (const Node& n : g.nodes) {
      if (!name_matches(p, n.name)) continue;
      any = true;
      for (const std::string& in : n.inputs) {
        auto it = g.initializers.find(in);
        if (it == g.initializers.end() || !dtype_is_float(it->second.value.dtype())) continue;
        if (it->second.trainable) frozen.push_back(in);
        it->second.trainable = false;
      }
    }
    if (!any) throw Error("--freeze '" + p + "' matches no node of model '" + g.name + "'");
  }
  return frozen;
}

void freeze_all(Graph& g) {
  for (auto& [name, init] : g.initializers) init.trainable = false;
}

void restore_trainable(Graph& g, const std::set<std::string>& names) {
  for (const std::string& n : names) {
    auto it = g.initializers.find(n);
    if (it != g.initializers.end()) it->second.trainable = true;
  }
}

}  // namespace minnow::compress
