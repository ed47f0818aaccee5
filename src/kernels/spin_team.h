// SpinTeam: helper threads that share out the blocks of one small layer with the caller, for
// layers too small to pay an OpenMP parallel region.
//
// Forking and joining an OpenMP team costs about 0.5 us on the 2-core dev host (1 us with a
// dynamic schedule), as much as a whole int8 layer of mobilenet_v2 at batch 1, so those layers
// ran on one thread. A helper that spins on one shared word between layers takes a new layer in
// about 0.05 us. The caller never waits for a helper to arrive: blocks are claimed one at a time
// from that word, so a helper that is descheduled (on a shared host one core is often busy)
// leaves its blocks to the caller, and the caller waits only for blocks a helper has begun.
// After 200 us without work a helper sleeps until the next layer.
//
// One team per process; a caller that finds it busy with another thread's layer is told so and
// runs the layer by itself.
//
// The team stands aside while OpenMP is in use. OpenMP's own workers also spin between parallel
// regions (for milliseconds), and with both spinning on a 2-core machine one of them waits for
// a scheduler time slice: resnet8 int8 at batch 1, whose 3x3 layers run on oneDNN, went from a
// p99 of 0.03 ms to 0.66 ms. So for 10 ms after an OpenMP region (note_openmp_team) the team
// declines layers and its helpers sleep.
#pragma once

#include <cstdint>

namespace minnow::kernels {

// Calls body(block, thread) for every block in [0, blocks), on the calling thread (thread 0)
// and on up to threads - 1 helpers (threads 1, 2, ...), and returns when all blocks are done.
// Returns false, having called nothing, when the team is in use by another thread, stands aside
// for OpenMP or is off on this thread (SpinTeamOff). body must not throw.
bool spin_team_run(int threads, int64_t blocks,
                   void (*body)(void* context, int64_t block, int thread), void* context);

// While one exists, spin_team_run on this thread declines every layer (an InferenceSession's
// runs on one thread: runtime/threads_choice.h).
class SpinTeamOff {
 public:
  SpinTeamOff();
  ~SpinTeamOff();
  SpinTeamOff(const SpinTeamOff&) = delete;
  SpinTeamOff& operator=(const SpinTeamOff&) = delete;

 private:
  bool was_;
};

// Called before a call that may start an OpenMP parallel region (a oneDNN primitive or
// dnnl_sgemm); notes one unless OpenMP is limited to one thread here or already inside a region.
void note_openmp_team();

template <class F>
bool spin_team_run(int threads, int64_t blocks, F& body) {
  return spin_team_run(
      threads, blocks,
      [](void* f, int64_t block, int thread) { (*static_cast<F*>(f))(block, thread); }, &body);
}

}  // namespace minnow::kernels
