// TeamChoice: whether one layer runs faster shared with the spin team (kernels/spin_team.h) or
// on the calling thread alone, decided by timing both on this host, now.
//
// Neither answer holds for long on the shared dev host. It switches between two states: in one
// a cache line moves between the two cores in about 0.05 us, in the other in 0.4 us (a spin
// round trip; OpenMP's fork and join takes 0.5 and 1.1 us). mobilenet_v2 int8 at batch 1 took
// 0.028 ms shared and 0.035 ms alone in the first state, and 0.068 ms shared and 0.035 ms alone
// in the second. So every kTrialEvery calls a layer runs kTrials calls each way, alternating,
// and keeps the way with the lower median until the next trial.
#pragma once

#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace minnow::kernels {

class TeamChoice {
 public:
  // Calls alone() or shared(); shared() returns false when it ran nothing (the team declined),
  // and alone() runs then.
  template <class Alone, class Shared>
  void run(Alone&& alone, Shared&& shared) {
    const int64_t call = calls_++ % kTrialEvery;
    if (call >= 2 * kTrials) {
      if (!use_team_ || !shared()) alone();
      return;
    }
    const bool team = call % 2 == 1;
    const uint64_t start = __rdtsc();
    if (!team || !shared()) alone();
    ticks_[team][call / 2] = __rdtsc() - start;
    if (call == 2 * kTrials - 1) use_team_ = median(ticks_[1]) < median(ticks_[0]);
  }

 private:
  static constexpr int kTrials = 8;
  static constexpr int64_t kTrialEvery = 2048;

  static uint64_t median(std::array<uint64_t, kTrials> t) {
    std::nth_element(t.begin(), t.begin() + kTrials / 2, t.end());
    return t[kTrials / 2];
  }

  int64_t calls_ = 0;
  bool use_team_ = false;
  std::array<std::array<uint64_t, kTrials>, 2> ticks_{};  // [alone, shared][trial]
};

}  // namespace minnow::kernels
