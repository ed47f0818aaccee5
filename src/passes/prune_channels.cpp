#include "passes/prune_channels.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "core/op_groups.h"
#include "core/op_registry.h"
#include "minnow/error.h"

namespace minnow {
namespace {

// Ops that act on each channel independently and keep axis 1 as it is: the elementwise
// activations (core/op_groups.h) and the ops listed one by one here. Any other op added to the
// table later is a barrier until someone decides otherwise.
bool keeps_channels(OpKind op) {
  if (is_elementwise_activation(op)) return true;
  switch (op) {
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
    case OpKind::kGlobalAvgPool:
    case OpKind::kDropout:
    case OpKind::kIdentity:
    case OpKind::kCast:
    case OpKind::kExp:
    case OpKind::kLog:
    case OpKind::kSqrt:
    case OpKind::kNeg:
    case OpKind::kAbs:
    case OpKind::kReciprocal:
    case OpKind::kErf:
    case OpKind::kFloor:
    case OpKind::kCeil:
    case OpKind::kRound:
    case OpKind::kSign:
    case OpKind::kSin:
    case OpKind::kCos:
    case OpKind::kTan:
    case OpKind::kAsin:
    case OpKind::kAcos:
    case OpKind::kAtan:
    case OpKind::kSinh:
    case OpKind::kCosh:
    case OpKind::kAsinh:
    case OpKind::kAcosh:
    case OpKind::kAtanh:
    case OpKind::kSoftplus:
    case OpKind::kSoftsign:
    case OpKind::kElu:
    case OpKind::kSelu:
    case OpKind::kCelu:
    case OpKind::kThresholdedRelu:
    case OpKind::kClip:
      return true;
    default:
      return false;
  }
}

bool is_elementwise_binary(OpKind op) {
  return op == OpKind::kAdd || op == OpKind::kSub || op == OpKind::kMul || op == OpKind::kDiv ||
         op == OpKind::kPow || op == OpKind::kMax || op == OpKind::kMin;
}

std::string label(const Node& n) { return std::string(op_def(n.op).name) + " '" + n.name + "'"; }

class Analyzer {
 public:
  Analyzer(const Graph& g, const std::vector<std::string>& exclude)
      : g_(g), exclude_(exclude), info_(g.infer_shapes()) {
    for (const Node& n : g.nodes) {
      for (const std::string& in : n.inputs) {
        if (!in.empty()) ++readers_[in];
      }
    }
  }

  ChannelAnalysis run() {
    for (const Node& n : g_.nodes) {
      visit(n);
      if (excluded(n.name)) {
        for (const std::string& v : n.inputs) {
          if (!v.empty() && !is_init(v)) freeze_layout(layout_of(v), "excluded " + label(n));
        }
        for (const std::string& v : n.outputs) freeze_layout(layout_of(v), "excluded " + label(n));
      }
    }
    for (const ValueInfo& o : g_.outputs) {
      freeze_layout(layout_of(o.name), "graph output '" + o.name + "'");
    }
    return finish();
  }

 private:
  // --- groups (union-find) ---
  int new_group(int64_t size, bool prunable, const std::string& reason) {
    parent_.push_back(static_cast<int>(parent_.size()));
    size_.push_back(size);
    frozen_.push_back(prunable ? 0 : 1);
    reason_.push_back(prunable ? "" : reason);
    sources_.emplace_back();
    return parent_.back();
  }
  int find(int x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void unite_groups(int a, int b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    parent_[b] = a;
    if (frozen_[b] && !frozen_[a]) reason_[a] = reason_[b];
    frozen_[a] |= frozen_[b];
    sources_[a].insert(sources_[a].end(), sources_[b].begin(), sources_[b].end());
  }
  void freeze(int grp, const std::string& why) {
    grp = find(grp);
    if (!frozen_[grp]) reason_[grp] = why;
    frozen_[grp] = 1;
  }
  void freeze_layout(const ChannelLayout& l, const std::string& why) {
    for (const ChannelSegment& s : l) freeze(s.group, why);
  }
  // Same run structure: merges the groups position by position. False (nothing merged) when the
  // structures differ.
  bool unite(const ChannelLayout& a, const ChannelLayout& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].length != b[i].length || a[i].inner != b[i].inner) return false;
    }
    for (size_t i = 0; i < a.size(); ++i) unite_groups(a[i].group, b[i].group);
    return true;
  }

  // --- values ---
  bool is_init(const std::string& v) const { return g_.initializers.count(v) != 0; }
  const Shape& shape(const std::string& v) const { return info_.at(v).shape; }
  // An initializer that only this node input reads and whose slices can be copied.
  bool own_float_init(const std::string& v) const {
    auto it = g_.initializers.find(v);
    if (it == g_.initializers.end() || readers_.at(v) != 1) return false;
    const DType t = it->second.value.dtype();
    return (t == DType::kF32 || t == DType::kF64) && it->second.value.quant.empty();
  }
  bool excluded(const std::string& node) const {
    for (const std::string& p : exclude_) {
      if (fnmatch(p.c_str(), node.c_str(), 0) == 0) return true;
    }
    return false;
  }
  // The layout of a value; a value that no tracked op produced (graph input, initializer) gets
  // one frozen group for its axis 1.
  const ChannelLayout& layout_of(const std::string& v) {
    auto it = layouts_.find(v);
    if (it != layouts_.end()) return it->second;
    ChannelLayout l;
    const Shape& s = shape(v);
    if (s.size() >= 2 && s[1] > 0) {
      l.push_back({new_group(s[1], false, "value '" + v + "' comes from outside the pruned graph"),
                   s[1], 1});
    }
    return layouts_[v] = l;
  }
  void set_layout(const std::string& v, ChannelLayout l) { layouts_[v] = std::move(l); }
  void new_frozen_output(const std::string& v, const std::string& why) {
    const Shape& s = shape(v);
    ChannelLayout l;
    if (s.size() >= 2 && s[1] > 0) l.push_back({new_group(s[1], false, why), s[1], 1});
    set_layout(v, std::move(l));
  }
  void add_uses(const ChannelLayout& l, const Node& n, const std::string& init, int axis,
                ChannelParamRole role) {
    int64_t offset = 0;
    for (const ChannelSegment& s : l) {
      uses_.push_back({s.group, n.name, init, axis, offset, s.inner, role});
      offset += s.length * s.inner;
    }
  }

  // The node's channels are left alone: whatever it reads keeps its channels.
  void barrier(const Node& n, const std::string& why) {
    const std::string reason = label(n) + " " + why;
    for (const std::string& v : n.inputs) {
      if (!v.empty() && !is_init(v)) freeze_layout(layout_of(v), reason);
    }
    for (const std::string& v : n.outputs) new_frozen_output(v, reason);
  }

  void visit(const Node& n) {
    if (n.op == OpKind::kConv2d) return conv(n);
    if (n.op == OpKind::kLinear) return linear(n);
    if (n.op == OpKind::kBatchNorm) return batch_norm(n);
    if (n.op == OpKind::kConcat) return concat(n);
    if (n.op == OpKind::kSplit) return split(n);
    if (n.op == OpKind::kFlatten) return flatten(n);
    if (is_elementwise_binary(n.op)) return binary(n);
    if (keeps_channels(n.op)) return preserve(n);
    barrier(n, "does not keep channels in place");
  }

  void conv(const Node& n) {
    const std::string& w = n.inputs.at(1);
    const bool has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
    if (!own_float_init(w) || (has_bias && !own_float_init(n.inputs[2]))) {
      return barrier(n, "has weights that are not float constants read only by it");
    }
    const Shape& ws = shape(w);
    const int64_t c = shape(n.inputs[0])[1], o = ws[0];
    const int64_t group = n.attrs.get_int("group", 1);
    if (group == 1) {
      add_uses(layout_of(n.inputs[0]), n, w, 1, ChannelParamRole::kConsumerWeight);
      const int grp = new_group(o, true, "");
      sources_[grp].push_back(n.name);
      const ChannelLayout out = {{grp, o, 1}};
      add_uses(out, n, w, 0, ChannelParamRole::kSourceWeight);
      if (has_bias) add_uses(out, n, n.inputs[2], 0, ChannelParamRole::kSourceBias);
      return set_layout(n.outputs[0], out);
    }
    if (group == c && o == c && ws[1] == 1) {
      const ChannelLayout l = layout_of(n.inputs[0]);
      add_uses(l, n, w, 0, ChannelParamRole::kDepthwiseWeight);
      if (has_bias) add_uses(l, n, n.inputs[2], 0, ChannelParamRole::kDepthwiseBias);
      depthwise_.push_back(n.name);
      return set_layout(n.outputs[0], l);
    }
    barrier(n, "is a grouped convolution (only depthwise convs shrink with their input)");
  }

  void linear(const Node& n) {
    const std::string& w = n.inputs.at(1);
    const bool has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
    if (shape(n.inputs[0]).size() != 2 || !own_float_init(w) ||
        (has_bias && !own_float_init(n.inputs[2]))) {
      return barrier(n, "is not a rank-2 Linear with float constant weights read only by it");
    }
    add_uses(layout_of(n.inputs[0]), n, w, 1, ChannelParamRole::kConsumerWeight);
    const int64_t o = shape(w)[0];
    const int grp = new_group(o, true, "");
    sources_[grp].push_back(n.name);
    const ChannelLayout out = {{grp, o, 1}};
    add_uses(out, n, w, 0, ChannelParamRole::kSourceWeight);
    if (has_bias) add_uses(out, n, n.inputs[2], 0, ChannelParamRole::kSourceBias);
    set_layout(n.outputs[0], out);
  }

  void batch_norm(const Node& n) {
    for (size_t i = 1; i < 5; ++i) {
      if (!own_float_init(n.inputs.at(i))) {
        return barrier(n, "has parameters that are not float constants read only by it");
      }
    }
    const ChannelLayout l = layout_of(n.inputs[0]);
    const ChannelParamRole roles[] = {ChannelParamRole::kBnScale, ChannelParamRole::kBnShift,
                                      ChannelParamRole::kBnStat, ChannelParamRole::kBnStat};
    for (size_t i = 1; i < 5; ++i) add_uses(l, n, n.inputs[i], 0, roles[i - 1]);
    for (const std::string& v : n.outputs) set_layout(v, l);
  }

  int64_t axis_attr(const Node& n, int64_t fallback, size_t rank) const {
    int64_t a = n.attrs.get_int("axis", fallback);
    return a < 0 ? a + static_cast<int64_t>(rank) : a;
  }

  void concat(const Node& n) {
    if (axis_attr(n, 0, shape(n.outputs[0]).size()) != 1) {
      return barrier(n, "concatenates along an axis other than the channels");
    }
    ChannelLayout out;
    for (const std::string& v : n.inputs) {
      const ChannelLayout& l = layout_of(v);
      out.insert(out.end(), l.begin(), l.end());
    }
    set_layout(n.outputs[0], out);
  }

  void split(const Node& n) {
    const ChannelLayout in = layout_of(n.inputs[0]);
    if (axis_attr(n, 0, shape(n.inputs[0]).size()) != 1) {
      return barrier(n, "splits along an axis other than the channels");
    }
    // Each output must take whole runs: a run (one group) cannot be divided between outputs.
    std::vector<ChannelLayout> outs;
    size_t seg = 0;
    for (const std::string& v : n.outputs) {
      int64_t need = shape(v)[1];
      ChannelLayout l;
      while (need > 0 && seg < in.size() && in[seg].length * in[seg].inner <= need) {
        need -= in[seg].length * in[seg].inner;
        l.push_back(in[seg++]);
      }
      if (need != 0) return barrier(n, "splits inside a channel group");
      outs.push_back(std::move(l));
    }
    for (size_t i = 0; i < outs.size(); ++i) set_layout(n.outputs[i], outs[i]);
    splits_.push_back(n.name);
  }

  void flatten(const Node& n) {
    const Shape& s = shape(n.inputs[0]);
    if (axis_attr(n, 1, s.size()) != 1 || s.size() < 2) {
      return barrier(n, "does not flatten to [N, features]");
    }
    int64_t spatial = 1;
    for (size_t i = 2; i < s.size(); ++i) spatial *= s[i];
    ChannelLayout l = layout_of(n.inputs[0]);
    for (ChannelSegment& seg : l) seg.inner *= spatial;
    set_layout(n.outputs[0], l);
  }

  void preserve(const Node& n) {
    const Shape& x = shape(n.inputs.at(0));
    for (size_t i = 1; i < n.inputs.size(); ++i) {
      if (!n.inputs[i].empty() && shape_numel(shape(n.inputs[i])) != 1) {
        return barrier(n, "has a non-scalar operand '" + n.inputs[i] + "'");
      }
    }
    for (const std::string& v : n.outputs) {
      const Shape& y = shape(v);
      if (x.size() < 2 || y.size() != x.size() || y[1] != x[1]) {
        return barrier(n, "changes the channel axis");
      }
    }
    const ChannelLayout l = layout_of(n.inputs[0]);
    for (const std::string& v : n.outputs) set_layout(v, l);
  }

  void binary(const Node& n) {
    const Shape& y = shape(n.outputs.at(0));
    if (y.size() < 2) return barrier(n, "has no channel axis");
    std::vector<ChannelLayout> joined;
    std::vector<std::pair<std::string, int>> consts;  // per-channel constant operand, its axis
    for (const std::string& v : n.inputs) {
      const Shape& s = shape(v);
      const int a = 1 - static_cast<int>(y.size() - s.size());
      if (a < 0 || (s[a] == 1 && y[1] != 1)) continue;  // broadcast along the channels
      if (is_init(v)) {
        if (!own_float_init(v)) return barrier(n, "has a shared or non-float constant '" + v + "'");
        consts.emplace_back(v, a);
      } else if (s.size() != y.size()) {
        return barrier(n, "broadcasts '" + v + "' across ranks");
      } else {
        joined.push_back(layout_of(v));
      }
    }
    if (joined.empty()) return barrier(n, "has no operand with channels");
    for (size_t i = 1; i < joined.size(); ++i) {
      if (!unite(joined[0], joined[i])) {
        const std::string why = label(n) + " joins tensors with different channel groupings";
        for (const ChannelLayout& l : joined) freeze_layout(l, why);
      }
    }
    for (const auto& [v, axis] : consts) {
      add_uses(joined[0], n, v, axis, ChannelParamRole::kElementwiseConst);
    }
    set_layout(n.outputs[0], joined[0]);
  }

  ChannelAnalysis finish() {
    ChannelAnalysis a;
    std::vector<int> id(parent_.size(), -1);
    for (size_t i = 0; i < parent_.size(); ++i) {
      const int r = find(static_cast<int>(i));
      if (id[r] < 0) {
        id[r] = static_cast<int>(a.groups.size());
        ChannelGroup grp;
        grp.size = size_[r];
        grp.sources = sources_[r];
        grp.prunable = !frozen_[r];
        grp.frozen_reason = reason_[r];
        a.groups.push_back(std::move(grp));
      }
      id[i] = id[r];
    }
    for (ChannelParamUse u : uses_) {
      u.group = id[u.group];
      a.groups[u.group].uses.push_back(std::move(u));
    }
    for (auto& [v, l] : layouts_) {
      for (ChannelSegment& s : l) s.group = id[s.group];
      a.layouts.emplace_back(v, l);
    }
    a.depthwise_nodes = depthwise_;
    a.split_nodes = splits_;
    return a;
  }

  const Graph& g_;
  const std::vector<std::string>& exclude_;
  const std::map<std::string, ValueInfo> info_;
  std::map<std::string, int> readers_;
  std::vector<int> parent_;
  std::vector<int64_t> size_;
  std::vector<char> frozen_;
  std::vector<std::string> reason_;
  std::vector<std::vector<std::string>> sources_;
  std::vector<ChannelParamUse> uses_;
  std::map<std::string, ChannelLayout> layouts_;
  std::vector<std::string> depthwise_, splits_;
};

// Copies the positions of `axis` whose mask is set.
Tensor slice_axis(const Tensor& t, int axis, const std::vector<char>& mask) {
  Shape s = t.shape();
  int64_t kept = 0;
  for (char m : mask) kept += m ? 1 : 0;
  s[axis] = kept;
  Tensor out(t.dtype(), s);
  int64_t outer = 1, inner = static_cast<int64_t>(dtype_size(t.dtype()));
  for (int i = 0; i < axis; ++i) outer *= t.dim(i);
  for (int i = axis + 1; i < t.rank(); ++i) inner *= t.dim(i);
  const auto* src = static_cast<const std::byte*>(t.raw());
  auto* dst = static_cast<std::byte*>(out.raw());
  const int64_t n = t.dim(axis);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < n; ++k) {
      if (!mask[k]) continue;
      std::memcpy(dst, src + (o * n + k) * inner, static_cast<size_t>(inner));
      dst += inner;
    }
  }
  return out;
}

}  // namespace

const ChannelLayout* ChannelAnalysis::layout(const std::string& value) const {
  for (const auto& [v, l] : layouts) {
    if (v == value) return &l;
  }
  return nullptr;
}

ChannelAnalysis analyze_channels(const Graph& g, const std::vector<std::string>& exclude) {
  return Analyzer(g, exclude).run();
}

std::vector<PrunedLayer> prune_channels(Graph& g, const ChannelAnalysis& analysis,
                                        const std::vector<std::vector<char>>& keep) {
  const auto& groups = analysis.groups;
  if (keep.size() != groups.size()) {
    throw Error("prune_channels: " + std::to_string(keep.size()) + " keep masks for " +
                std::to_string(groups.size()) + " channel groups");
  }
  std::vector<std::vector<char>> mask(groups.size());
  std::vector<int64_t> kept(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    const ChannelGroup& grp = groups[i];
    const std::string name = grp.sources.empty() ? "#" + std::to_string(i) : grp.sources[0];
    mask[i] = keep[i].empty() ? std::vector<char>(grp.size, 1) : keep[i];
    if (static_cast<int64_t>(mask[i].size()) != grp.size) {
      throw Error("prune_channels: keep mask of group '" + name + "' has " +
                  std::to_string(mask[i].size()) + " entries, expected " +
                  std::to_string(grp.size));
    }
    kept[i] = std::count(mask[i].begin(), mask[i].end(), 1);
    if (kept[i] == 0) throw Error("prune_channels: group '" + name + "' would keep no channel");
    if (!grp.prunable && kept[i] != grp.size) {
      throw Error("prune_channels: group '" + name + "' is frozen (" + grp.frozen_reason + ")");
    }
  }
  // initializer -> axis -> positions kept
  std::map<std::string, std::map<int, std::vector<char>>> axes;
  for (const ChannelGroup& grp : groups) {
    for (const ChannelParamUse& u : grp.uses) {
      auto it = g.initializers.find(u.initializer);
      if (it == g.initializers.end() || u.axis >= it->second.value.rank()) {
        throw Error("prune_channels: initializer '" + u.initializer + "' of node '" + u.node +
                    "' does not match the analysis (was the graph changed after it?)");
      }
      const int64_t dim = it->second.value.dim(u.axis);
      std::vector<char>& m = axes[u.initializer][u.axis];
      if (m.empty()) m.assign(dim, 1);
      if (u.offset + grp.size * u.inner > dim) {
        throw Error("prune_channels: initializer '" + u.initializer + "' axis " +
                    std::to_string(u.axis) + " is shorter than the channels indexing it");
      }
      const std::vector<char>& gm = mask[u.group];
      for (int64_t c = 0; c < grp.size; ++c) {
        if (gm[c]) continue;
        for (int64_t j = 0; j < u.inner; ++j) m[u.offset + c * u.inner + j] = 0;
      }
    }
  }
  for (const auto& [name, per_axis] : axes) {
    Initializer& init = g.initializers.at(name);
    Tensor t = init.value;
    for (const auto& [axis, m] : per_axis) t = slice_axis(t, axis, m);
    init.value = t;
  }
  auto layout_channels = [&](const std::string& v) {
    const ChannelLayout* l = analysis.layout(v);
    if (!l) throw Error("prune_channels: value '" + v + "' has no channel layout");
    int64_t c = 0;
    for (const ChannelSegment& s : *l) c += kept[s.group] * s.inner;
    return c;
  };
  for (Node& n : g.nodes) {
    if (std::find(analysis.depthwise_nodes.begin(), analysis.depthwise_nodes.end(), n.name) !=
        analysis.depthwise_nodes.end()) {
      n.attrs.set("group", g.initializers.at(n.inputs[1]).value.dim(0));
    }
    if (std::find(analysis.split_nodes.begin(), analysis.split_nodes.end(), n.name) !=
        analysis.split_nodes.end()) {
      std::vector<int64_t> sizes;
      for (const std::string& v : n.outputs) sizes.push_back(layout_channels(v));
      n.attrs.set("split", sizes);
    }
  }
  std::vector<PrunedLayer> layers;
  for (size_t i = 0; i < groups.size(); ++i) {
    for (const std::string& src : groups[i].sources) {
      PrunedLayer p{src, groups[i].size, kept[i], {}};
      for (int64_t c = 0; c < groups[i].size; ++c) {
        if (!mask[i][c]) p.removed.push_back(c);
      }
      layers.push_back(std::move(p));
    }
  }
  return layers;
}

}  // namespace minnow
