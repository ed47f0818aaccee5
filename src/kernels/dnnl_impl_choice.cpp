#include "kernels/dnnl_impl_choice.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
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

// Wall time one layer's timing may take. On an idle machine it takes well under 1 ms. On a
// machine whose cores another process is using, every parallel region of every timed run can
// wait a scheduler time slice for a preempted thread: without a limit, building a MobileNet
// session then took over a minute, and the measurements meant nothing anyway.
constexpr std::chrono::milliseconds kBudget{20};

// Microseconds per run of each candidate: the best of kRounds rounds of kRuns runs, the rounds
// taken in turn across the candidates so that a slow spell of a shared machine hits all of them.
// Past kBudget the rounds stop; a candidate not timed yet reads as infinitely slow, and an empty
// result means none was (the warm-up ran out of time).
std::vector<double> microseconds_per_run(const std::vector<ConvPd>& candidates,
                                         const ExtraArgs& extra) {
  // One timing at a time in the process: two would time each other, and they execute the same
  // candidate primitives (from oneDNN's cache) at once, which crashed oneDNN 2.6 inside its JIT
  // code (two lanes of an inference session building the same layer; those now build one at a
  // time, see InferenceSession::run_in_pieces, but sessions on other threads may not).
  static std::mutex timing;
  const std::lock_guard<std::mutex> lock(timing);
  constexpr int kRounds = 5, kRuns = 20;
  const auto deadline = std::chrono::steady_clock::now() + kBudget;
  // One set of zeroed argument memories for all (the candidates share their activation
  // layouts); only the weights get one per layout, so that timing holds little more memory than
  // one layer.
  const ConvPd& first = candidates[0];
  std::vector<std::pair<int, dnnl::memory>> shared{
      {DNNL_ARG_SRC, zeroed_memory(first.src_desc())},
      {DNNL_ARG_WEIGHTS, zeroed_memory(first.weights_desc())},
      {DNNL_ARG_DST, zeroed_memory(first.dst_desc())}};
  if (first.bias_desc().get_size() > 0) {
    shared.push_back({DNNL_ARG_BIAS, zeroed_memory(first.bias_desc())});
  }
  for (const auto& [arg, md] : extra) shared.push_back({arg, zeroed_memory(md)});
  std::vector<Call> calls;
  for (const ConvPd& pd : candidates) {
    std::vector<std::pair<int, dnnl::memory>> a = shared;
    for (auto& [arg, mem] : a) {
      if (arg == DNNL_ARG_WEIGHTS && mem.get_desc() != pd.weights_desc()) {
        mem = zeroed_memory(pd.weights_desc());
      }
    }
    calls.emplace_back(dnnl::convolution_forward(pd), a);
    for (int i = 0; i < 5; ++i) calls.back()();  // warm-up
    if (std::chrono::steady_clock::now() > deadline) return {};
  }
  std::vector<double> best(calls.size(), std::numeric_limits<double>::infinity());
  for (int round = 0; round < kRounds; ++round) {
    for (size_t c = 0; c < calls.size(); ++c) {
      if (std::chrono::steady_clock::now() > deadline) return best;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kRuns; ++i) calls[c]();
      const std::chrono::duration<double, std::micro> t = std::chrono::steady_clock::now() - t0;
      best[c] = std::min(best[c], t.count() / kRuns);
    }
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
                           const dnnl::primitive_attr& attr, const ExtraArgs& extra) {
  const std::vector<ConvPd> candidates = convolution_candidates(d, attr);
  if (candidates.size() < 2) return candidates[0];
  const std::vector<double> us = microseconds_per_run(candidates, extra);
  // The timed candidates stay in oneDNN's primitive cache (it evicts the oldest beyond its
  // capacity). Emptying it here once saved their JIT code's memory, but an inference session's
  // parallel lanes build and run kernels at the same time, and oneDNN 2.6 crashed when the
  // cache was emptied under them.
  if (us.empty()) return candidates[0];
  const size_t best = std::min_element(us.begin(), us.end()) - us.begin();
  return us[best] <= kMargin * us[0] ? candidates[best] : candidates[0];
}

dnnl::memory zeroed_memory(const dnnl::memory::desc& md) {
  dnnl::memory m(md, engine());
  std::memset(m.get_data_handle(), 0, md.get_size());
  return m;
}

}  // namespace minnow::dnnl_glue
