// GraphBuilder: builds a Graph layer by layer, inferring shapes as it goes and initializing
// parameters the way PyTorch does by default (so models train like their PyTorch twins).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "minnow/graph.h"

namespace minnow {

class Rng;

struct ConvOptions {
  int64_t stride = 1;
  int64_t pad = 0;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

class GraphBuilder {
 public:
  GraphBuilder(std::string graph_name, uint64_t seed);
  ~GraphBuilder();

  // A graph input; dim 0 of `shape` is usually kDynamic (the batch).
  std::string input(const std::string& name, Shape shape, DType dtype = DType::kF32);
  void output(const std::string& value);

  // Layers. `name` is the node name (auto-numbered when empty); parameters are
  // "<name>.weight" / "<name>.bias" like PyTorch's state_dict keys.
  std::string conv2d(const std::string& x, int64_t out_channels, int64_t kernel,
                     const ConvOptions& opt = {}, std::string name = "");
  std::string linear(const std::string& x, int64_t out_features, bool bias = true,
                     std::string name = "");
  std::string batch_norm(const std::string& x, double epsilon = 1e-5, double momentum = 0.1,
                         std::string name = "");
  std::string max_pool(const std::string& x, int64_t kernel, int64_t stride = 0, int64_t pad = 0,
                       std::string name = "");
  std::string avg_pool(const std::string& x, int64_t kernel, int64_t stride = 0, int64_t pad = 0,
                       std::string name = "");
  std::string global_avg_pool(const std::string& x, std::string name = "");
  std::string flatten(const std::string& x, int64_t axis = 1, std::string name = "");
  std::string dropout(const std::string& x, double ratio, std::string name = "");
  std::string activation(OpKind kind, const std::string& x, std::string name = "");
  std::string relu(const std::string& x) { return activation(OpKind::kRelu, x); }

  // Sequence layers, initialized like their PyTorch modules. embedding: i64 indices
  // [N, T...] -> [N, T..., dim], weight ~ N(0, 1). layer_norm: over the last dim, scale 1,
  // bias 0. multi_head_attention: self-attention on x [N, T, D] (nn.MultiheadAttention with
  // batch_first=True); `lengths` names an i64 [N] value (keys t >= lengths[n] are masked) or is
  // empty. Parameters are named as in PyTorch's state_dict ("<name>.in_proj_weight",
  // "<name>.out_proj.weight", ...).
  std::string embedding(const std::string& x, int64_t vocab, int64_t dim, std::string name = "");
  std::string layer_norm(const std::string& x, double epsilon = 1e-5, std::string name = "");
  std::string multi_head_attention(const std::string& x, int64_t num_heads,
                                   const std::string& lengths = "", std::string name = "");
  // Whole-sequence LSTM / GRU over x [N, T, F] (PyTorch batch_first, one layer). `lengths` is
  // an i64 [N] value, or "" when every sequence has T steps. Returns {y [N, T, dirs*H],
  // h_last [N, dirs*H]}. Parameters "<name>.weight_ih", ".weight_hh", ".bias_ih", ".bias_hh",
  // all U(-1/sqrt(H), 1/sqrt(H)) like PyTorch.
  std::vector<std::string> lstm(const std::string& x, int64_t hidden, bool bidirectional = false,
                                const std::string& lengths = "", std::string name = "");
  std::vector<std::string> gru(const std::string& x, int64_t hidden, bool bidirectional = false,
                               const std::string& lengths = "", std::string name = "");

  // Any op with one output; inputs are value names.
  std::string op(OpKind kind, const std::vector<std::string>& inputs, Attrs attrs = {},
                 std::string name = "");
  std::vector<std::string> op_multi(OpKind kind, const std::vector<std::string>& inputs,
                                    int num_outputs, Attrs attrs = {}, std::string name = "");
  // A constant tensor (parameter when trainable).
  std::string parameter(const std::string& name, Tensor value, bool trainable);

  const ValueInfo& info(const std::string& value) const;
  Rng& rng() { return *rng_; }

  // Validates and returns the graph; the builder is empty afterwards.
  Graph build();

 private:
  std::string auto_name(const std::string& base, std::string name);
  Tensor kaiming_uniform(Shape shape, int64_t fan_in);

  Graph graph_;
  std::map<std::string, ValueInfo> info_;
  std::map<std::string, int> counters_;
  std::unique_ptr<Rng> rng_;  // parameter initialization
};

}  // namespace minnow
