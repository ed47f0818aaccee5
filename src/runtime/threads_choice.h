// ThreadsChoice: whether a run goes faster on all threads or on the calling thread alone,
// decided by timing both on this host, now.
//
// Neither answer holds for long on the shared dev host. It switches between two states: in one
// a cache line moves between the two cores in about 0.05 us, in the other in 0.4 us (a spin
// round trip; OpenMP's fork and join takes 0.5 and 1.1 us). At batch 1, ms on two threads / one
// in the first state and in the second: mobilenet_v2 f32 0.058 / 0.075 and 0.112 / 0.075,
// resnet8 int8 0.025 / 0.029 and 0.042 / 0.030, mobilenet_v2 int8 (layers shared with the spin
// team, kernels/spin_team.h) 0.028 / 0.035 and 0.068 / 0.035. So after the first calls, and
// then every so often, a trial runs blocks of calls one way and the other, and the way with the
// lower median is kept until the next trial. Whole runs are timed, in blocks of one way: a layer
// shared right after a run alone pays for moving its input to the other core, which a run whose
// every layer is shared does not (timed alternately, call by call, shared runs of mobilenet_v2
// int8 took 0.03 to 0.07 ms, 0.027 in a row).
//
// Between trials the state can change back. A trial that met the slow state kept mobilenet_v2
// int8 alone, at 0.035 ms, for the 2,000 calls of a benchmark that ran when the host was quiet
// again. So the way not taken is probed every few hundred calls, and shared runs are watched as
// they go; either can call the next trial early.
#pragma once

#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>

namespace minnow {

class ThreadsChoice {
 public:
  // Calls alone() or shared(); shared() returns false when it ran nothing, and alone() runs
  // then.
  template <class Alone, class Shared>
  void run(Alone&& alone, Shared&& shared) {
    if (settling_) {
      // The first call alone, so that each way has made its plans before any is timed.
      const auto now = std::chrono::steady_clock::now();
      if (calls_++ == 0) {
        first_ = now;
        return alone();
      }
      if (!shared()) alone();
      if (calls_ > kSettle && now - first_ >= kSettleTime) {
        settling_ = false;
        calls_ = 0;
      }
      return;
    }
    // A trial: kBlocks blocks of kBlock calls, alone, shared, alone, shared, ..., the first call
    // of each untimed (the first after a switch pays for moving data and waking threads).
    // Several blocks each way, so that a burst of load on the host during one does not decide.
    const int64_t call = calls_++;
    if (call >= trial_at_ && call < trial_at_ + kBlocks * kBlock) {
      const int64_t in_trial = call - trial_at_, block = in_trial / kBlock;
      const bool shared_turn = block % 2 == 1;
      const int64_t timed = in_trial % kBlock - 1;
      const uint64_t start = __rdtsc();
      if (!shared_turn || !shared()) alone();
      if (timed >= 0) ticks_[shared_turn][block / 2 * (kBlock - 1) + timed] = __rdtsc() - start;
      if (in_trial == kBlocks * kBlock - 1) {
        for (int way = 0; way < 2; ++way) trial_median_[way] = median(ticks_[way]);
        use_shared_ = trial_median_[1] < trial_median_[0];
        recent_count_ = 0;
        probe_at_ = call + 1 + kProbeEvery;
        early_ok_at_ = call + 1 + kEarlyTrialGap;
      }
      return;
    }
    if (call == trial_at_ + kBlocks * kBlock) {
      trial_at_ += trial_at_ == 0 ? kFirstTrialEvery : kTrialEvery;
    }
    // Between trials the way not taken can become the faster one: the host's state changes
    // (see the top). So every kProbeEvery calls a block of kBlock calls runs the other way (the
    // first untimed), and shared runs are also watched as they go: a probe faster than the last
    // calls, or shared runs slower than the last trial's alone, calls a trial early.
    if (call >= probe_at_) {
      const int64_t in_probe = call - probe_at_;
      const uint64_t start = __rdtsc();
      if (use_shared_ || !shared()) alone();
      if (in_probe > 0) probe_[in_probe - 1] = __rdtsc() - start;
      if (in_probe == kBlock - 1) {
        probe_at_ = call + 1 + kProbeEvery;
        if (recent_count_ >= kRecent && median(probe_) < median(recent_) && call >= early_ok_at_) {
          trial_at_ = call + 1;
        }
      }
      return;
    }
    const uint64_t start = __rdtsc();
    if (!use_shared_ || !shared()) alone();
    recent_[recent_count_++ % kRecent] = __rdtsc() - start;
    if (use_shared_ && recent_count_ % kRecent == 0 && call >= early_ok_at_ &&
        median(recent_) > trial_median_[0] + trial_median_[0] / 10) {
      trial_at_ = call + 1;
    }
  }

  // Whether the first calls are over: the next calls are a trial.
  bool settled() const { return !settling_; }
  // Whether the first trial is over too: a way has been chosen from timings.
  bool chosen() const { return !settling_ && calls_ >= kBlocks * kBlock; }

 private:
  // The first calls are not timed: they make plans, start threads and fill caches; and making
  // plans may have run OpenMP regions, for which the spin team stands aside for a while
  // (kernels/spin_team.h).
  static constexpr int64_t kSettle = 32;
  static constexpr auto kSettleTime = std::chrono::milliseconds(20);
  static constexpr int64_t kBlock = 5, kBlocks = 8;
  static constexpr int kTrials = kBlocks / 2 * (kBlock - 1);  // timed calls each way
  // The second trial comes soon after the first, in case the first met a burst of load; then
  // one every kTrialEvery calls.
  static constexpr int64_t kFirstTrialEvery = 256, kTrialEvery = 2048;

  // Probes of the way not taken: a block of kBlock calls (the first untimed) every kProbeEvery,
  // five calls in 389: in the worse way at most 2x slower, 1.3% more time. The chosen way's
  // last kRecent calls are timed too. Early trials come at least kEarlyTrialGap calls after the
  // last trial.
  static constexpr int64_t kProbeEvery = 384, kEarlyTrialGap = 256;
  static constexpr int kRecent = 16;

  template <size_t N>
  static uint64_t median(std::array<uint64_t, N> t) {
    std::nth_element(t.begin(), t.begin() + N / 2, t.end());
    return t[N / 2];
  }

  bool settling_ = true;
  std::chrono::steady_clock::time_point first_;
  int64_t calls_ = 0;     // while settling, then since it ended
  int64_t trial_at_ = 0;  // the call the next trial starts at
  bool use_shared_ = false;
  std::array<std::array<uint64_t, kTrials>, 2> ticks_{};  // [alone, shared][trial]
  std::array<uint64_t, 2> trial_median_{};                // the last trial's, [alone, shared]
  std::array<uint64_t, kRecent> recent_{};                // the chosen way's last calls
  int64_t recent_count_ = 0;
  std::array<uint64_t, kBlock - 1> probe_{};
  int64_t probe_at_ = 0, early_ok_at_ = 0;
};

}  // namespace minnow
