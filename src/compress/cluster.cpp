#include "compress/cluster.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "minnow/error.h"

namespace minnow::compress {
namespace {

// Calls f(T* data) with the tensor's float elements.
template <class F>
void with_floats(Tensor& t, F f) {
  if (t.dtype() == DType::kF64) {
    f(t.data<double>());
  } else {
    f(t.f32());
  }
}

template <class F>
void with_floats(const Tensor& t, F f) {
  if (t.dtype() == DType::kF64) {
    f(t.data<double>());
  } else {
    f(t.f32());
  }
}

// Lloyd's algorithm in one dimension. The centroids stay sorted, so the nearest one is found by
// binary search among the midpoints between neighbours. Returns the iterations run.
int kmeans_1d(const std::vector<double>& x, std::vector<double>& c, std::vector<int32_t>& a,
              int max_iterations) {
  a.assign(x.size(), -1);
  const size_t k = c.size();
  std::vector<double> sum(k), bounds(k > 0 ? k - 1 : 0);
  std::vector<int64_t> count(k);
  int it = 0;
  while (it < max_iterations) {
    ++it;
    for (size_t j = 0; j + 1 < k; ++j) bounds[j] = 0.5 * (c[j] + c[j + 1]);
    bool changed = false;
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(count.begin(), count.end(), 0);
    for (size_t i = 0; i < x.size(); ++i) {
      const auto j = static_cast<int32_t>(std::lower_bound(bounds.begin(), bounds.end(), x[i]) -
                                          bounds.begin());
      changed = changed || a[i] != j;
      a[i] = j;
      sum[j] += x[i];
      ++count[j];
    }
    if (!changed) break;
    // An empty cluster keeps its centroid: it lies between its neighbours, which stay sorted.
    for (size_t j = 0; j < k; ++j) {
      if (count[j]) c[j] = sum[j] / static_cast<double>(count[j]);
    }
  }
  return it;
}

bool matches_any(const std::vector<std::string>& patterns, const std::string& name,
                 std::vector<char>& used) {
  if (patterns.empty()) return true;
  bool any = false;
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (fnmatch(patterns[i].c_str(), name.c_str(), 0) == 0) {
      used[i] = 1;
      any = true;
    }
  }
  return any;
}

LayerClusters cluster_tensor(Tensor& w, const ClusterOptions& o) {
  LayerClusters lc;
  const int64_t n = w.numel();
  std::vector<double> all(static_cast<size_t>(n));
  with_floats(w, [&](const auto* p) { std::copy(p, p + n, all.begin()); });
  std::vector<double> x;  // the values k-means sees: the non-zero ones when zero is fixed
  x.reserve(all.size());
  for (double v : all) {
    if (v == 0) lc.zero_fixed = true;
  }
  for (double v : all) {
    if (!lc.zero_fixed || v != 0) x.push_back(v);
  }
  const int64_t k = (int64_t{1} << o.bits) - (lc.zero_fixed ? 1 : 0);
  if (!x.empty() && k > 0) {
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    lc.centroids.resize(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) {
      lc.centroids[j] = k == 1 ? 0.5 * (*lo + *hi) : *lo + (*hi - *lo) * j / double(k - 1);
    }
  }
  std::vector<int32_t> a;
  lc.iterations = lc.centroids.empty() ? 0 : kmeans_1d(x, lc.centroids, a, o.max_iterations);
  lc.assignment.assign(all.size(), -1);
  size_t next = 0;
  double err = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (lc.zero_fixed && all[i] == 0) continue;
    lc.assignment[i] = a[next++];
    const double d = all[i] - lc.centroids[lc.assignment[i]];
    err += d * d;
  }
  lc.mse = n > 0 ? err / static_cast<double>(n) : 0;
  return lc;
}

void write_centroids(const LayerClusters& lc, Tensor& w) {
  with_floats(w, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (size_t i = 0; i < lc.assignment.size(); ++i) {
      const int32_t j = lc.assignment[i];
      p[i] = j < 0 ? T(0) : static_cast<T>(lc.centroids[j]);
    }
  });
}

ParamRef* find_param(std::vector<ParamRef>& params, const std::string& name) {
  for (ParamRef& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;  // frozen: nothing trains it
}

}  // namespace

WeightClusters cluster_weights(Graph& g, const ClusterOptions& o) {
  if (o.bits < 1 || o.bits > 8) {
    throw Error("cluster: bits must be in 1..8, got " + std::to_string(o.bits));
  }
  if (o.max_iterations < 1) throw Error("cluster: max_iterations must be >= 1");
  std::vector<char> used(o.layers.size(), 0);
  std::vector<std::pair<std::string, std::string>> chosen;  // node, weight
  std::set<std::string> seen;
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kLinear && n.op != OpKind::kConv2d) continue;
    if (n.inputs.size() < 2 || !matches_any(o.layers, n.name, used)) continue;
    auto it = g.initializers.find(n.inputs[1]);
    if (it == g.initializers.end() || !dtype_is_float(it->second.value.dtype())) continue;
    if (seen.insert(n.inputs[1]).second) chosen.emplace_back(n.name, n.inputs[1]);
  }
  for (size_t i = 0; i < o.layers.size(); ++i) {
    if (!used[i]) {
      throw Error("cluster: layer pattern '" + o.layers[i] + "' matches no Linear or Conv2d node");
    }
  }
  WeightClusters wc;
  wc.sum_gradients = o.sum_gradients;
  for (const auto& [node, param] : chosen) {
    Initializer& init = g.initializers[param];
    // A new tensor: graphs may share initializer storage with the caller's copy.
    Tensor w = init.value.clone();
    LayerClusters lc = cluster_tensor(w, o);
    lc.node = node;
    lc.param = param;
    write_centroids(lc, w);
    init.value = w;
    wc.layers.push_back(std::move(lc));
  }
  return wc;
}

void WeightClusters::share_gradients(std::vector<ParamRef>& params) const {
  for (const LayerClusters& lc : layers) {
    ParamRef* p = find_param(params, lc.param);
    if (!p || !p->grad.defined()) continue;
    std::vector<double> sum(lc.centroids.size(), 0.0);
    std::vector<int64_t> count(lc.centroids.size(), 0);
    with_floats(p->grad, [&](auto* g) {
      using T = std::remove_pointer_t<decltype(g)>;
      for (size_t i = 0; i < lc.assignment.size(); ++i) {
        const int32_t j = lc.assignment[i];
        if (j >= 0) sum[j] += g[i], ++count[j];
      }
      for (size_t j = 0; j < sum.size(); ++j) {
        if (!sum_gradients && count[j]) sum[j] /= static_cast<double>(count[j]);
      }
      for (size_t i = 0; i < lc.assignment.size(); ++i) {
        const int32_t j = lc.assignment[i];
        g[i] = j < 0 ? T(0) : static_cast<T>(sum[j]);
      }
    });
  }
}

void WeightClusters::snap(std::vector<ParamRef>& params) {
  for (LayerClusters& lc : layers) {
    ParamRef* p = find_param(params, lc.param);
    if (!p) continue;
    std::vector<double> sum(lc.centroids.size(), 0.0);
    std::vector<int64_t> count(lc.centroids.size(), 0);
    with_floats(p->value, [&](const auto* w) {
      for (size_t i = 0; i < lc.assignment.size(); ++i) {
        const int32_t j = lc.assignment[i];
        if (j >= 0) sum[j] += w[i], ++count[j];
      }
    });
    for (size_t j = 0; j < sum.size(); ++j) {
      if (count[j]) lc.centroids[j] = sum[j] / static_cast<double>(count[j]);
    }
    write_centroids(lc, p->value);
  }
}

void WeightClusters::apply(Graph& g) const {
  for (const LayerClusters& lc : layers) {
    auto it = g.initializers.find(lc.param);
    if (it == g.initializers.end()) throw Error("cluster: weight '" + lc.param + "' is gone");
    if (it->second.value.numel() != static_cast<int64_t>(lc.assignment.size())) {
      throw Error("cluster: weight '" + lc.param + "' changed size");
    }
    write_centroids(lc, it->second.value);
  }
}

int64_t count_distinct(const Tensor& t) {
  std::set<double> values;
  with_floats(t, [&](const auto* p) { values.insert(p, p + t.numel()); });
  return static_cast<int64_t>(values.size());
}

}  // namespace minnow::compress
