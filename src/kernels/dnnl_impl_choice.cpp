#include "kernels/dnnl_impl_choice.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/dnnl_glue.h"

namespace minnow::dnnl_glue {

namespace {

constexpr int kMaxCandidates = 8;
constexpr double kMargin = 0.9;  // another implementation must take <= 90% of the first's time

bool is_jit(const std::string& impl) {
  const bool jit =
      impl.rfind("jit", 0) == 0 || impl.rfind("brg", 0) == 0 || impl.rfind("brdgmm", 0) == 0;
  return jit && impl.find("sse41") == std::string::npos;
}

double microseconds_per_run(const ConvPd& pd, const TimingArgs& args) {
  const Call call(dnnl::convolution_forward(pd), args(pd));
  for (int i = 0; i < 5; ++i) call();
  double best = std::numeric_limits<double>::infinity();
  for (int round = 0; round < 3; ++round) {
    constexpr int kRuns = 20;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRuns; ++i) call();
    const std::chrono::duration<double, std::micro> t = std::chrono::steady_clock::now() - t0;
    best = std::min(best, t.count() / kRuns);
  }
  return best;
}

}  // namespace

std::vector<ConvPd> convolution_candidates(const dnnl::convolution_forward::desc& d,
                                           const dnnl::primitive_attr& attr) {
  ConvPd it(d, attr, engine());
  const dnnl::memory::desc src = it.src_desc(), dst = it.dst_desc();
  std::vector<ConvPd> out{it};
  std::vector<std::string> names{it.impl_info_str()};
  while (static_cast<int>(out.size()) < kMaxCandidates && it.next_impl()) {
    const std::string name = it.impl_info_str();
    if (it.src_desc() == src && it.dst_desc() == dst && is_jit(name) &&
        std::find(names.begin(), names.end(), name) == names.end()) {
      out.push_back(it);  // a copy keeps this implementation while `it` moves on
      names.push_back(name);
    }
  }
  return out;
}

ConvPd convolution_impl(const dnnl::convolution_forward::desc& d, const dnnl::primitive_attr& attr,
                        const std::string& name) {
  for (const ConvPd& pd : convolution_candidates(d, attr)) {
    if (name == pd.impl_info_str()) return pd;
  }
  throw dnnl::error(dnnl_invalid_arguments, ("no candidate implementation " + name).c_str());
}

ConvPd fastest_convolution(const dnnl::convolution_forward::desc& d,
                           const dnnl::primitive_attr& attr, const TimingArgs& args) {
  const std::vector<ConvPd> candidates = convolution_candidates(d, attr);
  if (candidates.size() < 2) return candidates[0];
  const double first_us = microseconds_per_run(candidates[0], args);
  double best_us = first_us;
  size_t best = 0;
  for (size_t i = 1; i < candidates.size(); ++i) {
    const double us = microseconds_per_run(candidates[i], args);
    if (us < best_us) {
      best_us = us;
      best = i;
    }
  }
  if (best_us > kMargin * first_us) best = 0;
  return candidates[best];
}

dnnl::memory zeroed_memory(const dnnl::memory::desc& md) {
  dnnl::memory m(md, engine());
  std::memset(m.get_data_handle(), 0, md.get_size());
  return m;
}

}  // namespace minnow::dnnl_glue
