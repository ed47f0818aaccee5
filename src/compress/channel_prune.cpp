#include "compress/channel_prune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>
#include <tuple>

#include "compress/model_report.h"
#include "minnow/error.h"

namespace minnow::compress {
namespace {

double element(const Tensor& t, int64_t i) {
  return t.dtype() == DType::kF64 ? t.data<double>()[i] : double{t.f32()[i]};
}

// |values| summed per channel of `u` (the positions of channel c along u.axis).
std::vector<double> per_channel_abs_sum(const Tensor& t, const ChannelParamUse& u, int64_t size) {
  std::vector<double> sum(size, 0.0);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < u.axis; ++i) outer *= t.dim(i);
  for (int i = u.axis + 1; i < t.rank(); ++i) inner *= t.dim(i);
  const int64_t n = t.dim(u.axis);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < size; ++c) {
      for (int64_t j = 0; j < u.inner; ++j) {
        const int64_t k = u.offset + c * u.inner + j;
        for (int64_t i = 0; i < inner; ++i) sum[c] += std::abs(element(t, (o * n + k) * inner + i));
      }
    }
  }
  return sum;
}

// Mean over the contributing uses of each one's scores divided by its mean.
std::vector<double> normalized_mean(const Graph& g, const ChannelGroup& grp, ChannelParamRole role,
                                    bool normalize) {
  std::vector<double> score(grp.size, 0.0);
  int contributors = 0;
  for (const ChannelParamUse& u : grp.uses) {
    if (u.role != role) continue;
    std::vector<double> s =
        per_channel_abs_sum(g.initializers.at(u.initializer).value, u, grp.size);
    double mean = 0;
    for (double v : s) mean += v;
    mean /= static_cast<double>(grp.size);
    const double div = normalize && mean > 0 ? mean : 1.0;
    for (int64_t c = 0; c < grp.size; ++c) score[c] += s[c] / div;
    ++contributors;
  }
  if (contributors == 0) return {};
  for (double& v : score) v /= contributors;
  return score;
}

bool bilinear(const Node& n) {
  return (n.op == OpKind::kConv2d && n.attrs.get_int("group", 1) == 1) || n.op == OpKind::kLinear;
}

// MACs as a function of the kept channel counts: every node's MACs are multilinear in the
// channel counts of its input and output (both for convs and linears, the output alone for the
// per-channel ops), so scaling the measured MACs by the kept fractions is exact.
class MacModel {
 public:
  MacModel(const Graph& g, const ChannelAnalysis& a) : a_(a) {
    const std::vector<NodeStats> stats = graph_stats(g);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      Term t{static_cast<double>(stats[i].macs), nullptr, nullptr};
      if (t.macs == 0) continue;
      const ChannelLayout* out = n.outputs.empty() ? nullptr : a.layout(n.outputs[0]);
      const ChannelLayout* in = n.inputs.empty() ? nullptr : a.layout(n.inputs[0]);
      if (bilinear(n)) {
        t.first = in;
        t.second = out;
      } else {
        t.first = out && !out->empty() ? out : in;
      }
      terms_.push_back(t);
    }
  }
  double macs(const std::vector<int64_t>& kept) const {
    double total = 0;
    for (const Term& t : terms_)
      total += t.macs * fraction(t.first, kept) * fraction(t.second, kept);
    return total;
  }

 private:
  struct Term {
    double macs;
    const ChannelLayout *first, *second;
  };
  double fraction(const ChannelLayout* l, const std::vector<int64_t>& kept) const {
    if (!l || l->empty()) return 1.0;
    double k = 0, all = 0;
    for (const ChannelSegment& s : *l) {
      k += static_cast<double>(kept[s.group] * s.inner);
      all += static_cast<double>(a_.groups[s.group].size * s.inner);
    }
    return all > 0 ? k / all : 1.0;
  }
  const ChannelAnalysis& a_;
  std::vector<Term> terms_;
};

// Masks keeping the `count` most important channels (ties: the lower index).
std::vector<char> top_channels(const std::vector<double>& importance, int64_t count) {
  std::vector<int64_t> idx(importance.size());
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return importance[a] > importance[b]; });
  std::vector<char> keep(importance.size(), 0);
  for (int64_t k = 0; k < count; ++k) keep[idx[k]] = 1;
  return keep;
}

// Sum of the importance of a group's channels ranked [from, to) (most important first).
double ranked_importance(std::vector<double> importance, int64_t from, int64_t to) {
  std::sort(importance.begin(), importance.end(), std::greater<>());
  double s = 0;
  for (int64_t k = from; k < to; ++k) s += importance[k];
  return s;
}

int64_t total_macs(const Graph& g) {
  int64_t m = 0;
  for (const NodeStats& s : graph_stats(g)) m += s.macs;
  return m;
}

// Every pruned group's count to the nearest multiple of m (at least max(m, floor), at most its
// size); then, while the MACs exceed the target, the group whose next m channels matter least
// drops them. Groups not pruned keep all their channels.
void round_to_multiple(const ChannelAnalysis& a, const std::vector<std::vector<double>>& importance,
                       const std::vector<int64_t>& floor, int64_t m, const MacModel& model,
                       double target, std::vector<int64_t>& kept) {
  auto lowest = [&](size_t i) {
    const int64_t lo = (std::max(floor[i], m) + m - 1) / m * m;
    return std::min(lo, a.groups[i].size);
  };
  for (size_t i = 0; i < kept.size(); ++i) {
    const int64_t size = a.groups[i].size;
    if (!a.groups[i].prunable || kept[i] >= size) continue;
    const int64_t rounded = (kept[i] + m / 2) / m * m;
    kept[i] = std::clamp(rounded, lowest(i), size);
  }
  while (model.macs(kept) > target) {
    size_t best = kept.size();
    double best_cost = 0;
    for (size_t i = 0; i < kept.size(); ++i) {
      if (!a.groups[i].prunable || kept[i] - m < lowest(i)) continue;
      const double cost = ranked_importance(importance[i], kept[i] - m, kept[i]);
      if (best == kept.size() || cost < best_cost) {
        best = i;
        best_cost = cost;
      }
    }
    if (best == kept.size()) return;  // no multiple left to remove: the caller reports it
    kept[best] -= m;
  }
}

}  // namespace

std::vector<std::vector<double>> channel_importance(const Graph& graph,
                                                    const ChannelAnalysis& analysis,
                                                    const std::string& criterion) {
  if (criterion != "l1" && criterion != "bn-scale") {
    throw Error("--criterion '" + criterion + "': expected l1 or bn-scale");
  }
  std::vector<std::vector<double>> importance(analysis.groups.size());
  for (size_t i = 0; i < analysis.groups.size(); ++i) {
    const ChannelGroup& grp = analysis.groups[i];
    if (!grp.prunable) continue;
    if (criterion == "bn-scale") {
      importance[i] = normalized_mean(graph, grp, ChannelParamRole::kBnScale, false);
    }
    if (importance[i].empty()) {
      importance[i] = normalized_mean(graph, grp, ChannelParamRole::kSourceWeight, true);
    }
    // A group always has a source; this keeps a malformed analysis from indexing out of range.
    if (importance[i].empty()) importance[i].assign(grp.size, 1.0);
  }
  return importance;
}

ChannelPruneResult channel_prune(Graph& graph, const ChannelPruneOptions& options) {
  if (!(options.macs_reduction > 0 && options.macs_reduction < 1)) {
    char msg[160];
    std::snprintf(msg, sizeof msg,
                  "--macs-reduction %g: expected the fraction of the MACs to remove, in (0, 1)",
                  options.macs_reduction);
    throw Error(msg);
  }
  if (!(options.min_keep_fraction >= 0 && options.min_keep_fraction <= 1) ||
      options.min_keep_channels < 1) {
    throw Error("channel pruning: the per-layer floor must keep at least one channel");
  }
  const ChannelAnalysis analysis = analyze_channels(graph, options.exclude);
  const std::vector<std::vector<double>> importance =
      channel_importance(graph, analysis, options.criterion);

  ChannelPruneResult r;
  r.macs_before = total_macs(graph);
  r.params_before = count_params(graph);
  r.groups = static_cast<int>(analysis.groups.size());
  std::map<std::string, int> frozen_reasons;
  std::vector<int64_t> kept(analysis.groups.size()), floor(analysis.groups.size());
  std::vector<std::tuple<double, size_t, int64_t>> order;  // importance, group, channel
  for (size_t i = 0; i < analysis.groups.size(); ++i) {
    const ChannelGroup& grp = analysis.groups[i];
    kept[i] = floor[i] = grp.size;
    if (!grp.prunable) {
      if (!grp.sources.empty()) ++frozen_reasons[grp.frozen_reason];
      continue;
    }
    ++r.prunable_groups;
    const auto by_fraction =
        static_cast<int64_t>(std::ceil(options.min_keep_fraction * static_cast<double>(grp.size)));
    floor[i] = std::min(grp.size, std::max({options.min_keep_channels, by_fraction, int64_t{1}}));
    for (int64_t c = 0; c < grp.size; ++c) order.emplace_back(importance[i][c], i, c);
  }
  for (const auto& [why, count] : frozen_reasons) {
    r.frozen.push_back(std::to_string(count) + " group(s): " + why);
  }
  std::sort(order.begin(), order.end());

  const MacModel model(graph, analysis);
  const double start = model.macs(kept);
  const double target = start * (1.0 - options.macs_reduction);
  std::vector<std::vector<char>> keep(analysis.groups.size());
  for (size_t i = 0; i < keep.size(); ++i) keep[i].assign(analysis.groups[i].size, 1);
  double now = start;
  for (const auto& [score, i, c] : order) {
    if (now <= target) break;
    if (kept[i] <= floor[i]) continue;
    keep[i][c] = 0;
    --kept[i];
    now = model.macs(kept);
  }
  if (options.channel_multiple > 1 && now <= target) {
    std::vector<int64_t> rounded = kept;
    round_to_multiple(analysis, importance, floor, options.channel_multiple, model, target,
                      rounded);
    if (model.macs(rounded) <= target) {  // else the multiples cannot reach it: keep exact counts
      kept = rounded;
      for (size_t i = 0; i < keep.size(); ++i) {
        if (analysis.groups[i].prunable) keep[i] = top_channels(importance[i], kept[i]);
      }
      now = model.macs(kept);
    }
  }
  if (now > target) {
    char msg[320];
    std::snprintf(msg, sizeof msg,
                  "--macs-reduction %g is not reachable: keeping at least %g%% (and %lld) of each "
                  "layer's channels removes at most %.3f of the MACs (%d of %d channel groups are "
                  "frozen)",
                  options.macs_reduction, options.min_keep_fraction * 100,
                  static_cast<long long>(options.min_keep_channels),
                  start > 0 ? 1.0 - now / start : 0.0, r.groups - r.prunable_groups, r.groups);
    throw Error(msg);
  }
  r.layers = prune_channels(graph, analysis, keep);
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept[i] < analysis.groups[i].size) ++r.pruned_groups;
  }
  graph.infer_shapes();  // the rewrite must leave a consistent graph; throws naming the node
  r.macs_after = total_macs(graph);
  r.params_after = count_params(graph);
  return r;
}

nlohmann::json to_json(const ChannelPruneResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const PrunedLayer& l : r.layers) {
    layers.push_back({{"layer", l.node},
                      {"channels_before", l.channels_before},
                      {"channels_after", l.channels_after},
                      {"removed", l.removed}});
  }
  return {{"macs_before", r.macs_before},
          {"macs_after", r.macs_after},
          {"params_before", r.params_before},
          {"params_after", r.params_after},
          {"groups", r.groups},
          {"prunable_groups", r.prunable_groups},
          {"pruned_groups", r.pruned_groups},
          {"frozen", r.frozen},
          {"layers", layers}};
}

}  // namespace minnow::compress
