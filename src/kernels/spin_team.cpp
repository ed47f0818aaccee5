#include "kernels/spin_team.h"

#include <immintrin.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace minnow::kernels {
namespace {

using Body = void (*)(void* context, int64_t block, int thread);

// How long a helper spins after its last layer before it sleeps. Long enough to span the gaps
// between the layers of one inference and between back-to-back inferences; short enough that an
// idle session does not keep a core busy.
constexpr auto kSpin = std::chrono::microseconds(200);

// How long after an OpenMP parallel region the team stands aside: libgomp's workers spin for
// about 300,000 pause instructions (a few milliseconds) before they sleep.
constexpr auto kOpenMpQuiet = std::chrono::milliseconds(10);

thread_local bool team_off = false;  // SpinTeamOff

// Set by note_openmp_team; cleared by the first caller that finds it kOpenMpQuiet old.
std::atomic<bool> openmp_recent{false};
std::atomic<int64_t> openmp_last_ns{0};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Whether OpenMP ran a parallel region in the last kOpenMpQuiet. Reads the clock only while
// it did.
bool openmp_active() {
  if (!openmp_recent.load(std::memory_order_relaxed)) return false;
  const int64_t quiet = std::chrono::duration_cast<std::chrono::nanoseconds>(kOpenMpQuiet).count();
  if (now_ns() - openmp_last_ns.load(std::memory_order_relaxed) < quiet) return true;
  openmp_recent.store(false, std::memory_order_relaxed);
  return false;
}

class Team {
 public:
  ~Team() {
    stop_.store(true, std::memory_order_seq_cst);
    {
      std::lock_guard<std::mutex> lock(mu_);
      wake_.notify_all();
    }
    for (std::thread& t : helpers_) t.join();
  }

  bool run(int threads, int64_t blocks, Body body, void* context) {
    if (team_off || blocks >= (int64_t{1} << 31) || openmp_active() ||
        busy_.exchange(true, std::memory_order_acquire)) {
      return false;
    }
    while (static_cast<int>(helpers_.size()) < threads - 1) {
      const int index = static_cast<int>(helpers_.size()) + 1;
      helpers_.emplace_back([this, index, seen = generation_] { help(index, seen); });
    }
    // The other slot may still be read by a helper that has not yet seen this generation; this
    // one was last used two generations ago, and every helper of that one has finished.
    const uint32_t generation = ++generation_;
    jobs_[generation & 1] = Job{body, context, blocks, threads};
    word_.store(uint64_t{generation} << 32, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0 &&
        !wake_sent_.exchange(true, std::memory_order_acq_rel)) {
      std::lock_guard<std::mutex> lock(mu_);
      wake_.notify_all();
    }
    int64_t block = 0;
    while (claim(generation, blocks, &block)) body(context, block, 0);
    // Blocks a helper has claimed are still running while it counts itself in flight.
    while (in_flight_.load(std::memory_order_seq_cst) != 0) _mm_pause();
    busy_.store(false, std::memory_order_release);
    return true;
  }

 private:
  struct Job {
    Body body = nullptr;
    void* context = nullptr;
    int64_t blocks = 0;
    int threads = 0;
  };

  // Takes the next block of generation `generation`, if that is still the current layer and it
  // has one left.
  bool claim(uint32_t generation, int64_t blocks, int64_t* block) {
    uint64_t word = word_.load(std::memory_order_acquire);
    for (;;) {
      if (static_cast<uint32_t>(word >> 32) != generation) return false;
      const auto next = static_cast<int64_t>(word & 0xffffffffu);
      if (next >= blocks) return false;
      if (word_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        *block = next;
        return true;
      }
    }
  }

  uint32_t current_generation() const {
    return static_cast<uint32_t>(word_.load(std::memory_order_seq_cst) >> 32);
  }

  void help(int index, uint32_t seen) {
    auto idle_since = std::chrono::steady_clock::now();
    for (uint32_t spins = 0;; ++spins) {  // (unsigned: it wraps in a long-lived process)
      if (stop_.load(std::memory_order_relaxed)) return;
      if (static_cast<uint32_t>(word_.load(std::memory_order_acquire) >> 32) == seen) {
        _mm_pause();
        if ((spins & 63) == 0 && (std::chrono::steady_clock::now() - idle_since > kSpin ||
                                  openmp_recent.load(std::memory_order_relaxed))) {
          sleep_until_new(seen);
          idle_since = std::chrono::steady_clock::now();
        }
        continue;
      }
      // Counted in flight before reading the generation, so the caller of any later layer waits
      // for this helper before it reuses the job slot read below.
      in_flight_.fetch_add(1, std::memory_order_seq_cst);
      const uint32_t generation = current_generation();
      const Job& job = jobs_[generation & 1];
      if (index < job.threads) {
        int64_t block = 0;
        while (claim(generation, job.blocks, &block)) job.body(job.context, block, index);
      }
      in_flight_.fetch_sub(1, std::memory_order_release);
      seen = generation;
      idle_since = std::chrono::steady_clock::now();
    }
  }

  void sleep_until_new(uint32_t seen) {
    std::unique_lock<std::mutex> lock(mu_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    wake_.wait(lock, [&] { return stop_.load() || current_generation() != seen; });
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    wake_sent_.store(false, std::memory_order_release);
  }

  // The current layer: its generation (high 32 bits) and its next unclaimed block (low 32).
  std::atomic<uint64_t> word_{0};
  Job jobs_[2];              // by generation parity
  uint32_t generation_ = 0;  // the caller's count of layers (under busy_)
  std::atomic<int> in_flight_{0};
  std::atomic<bool> busy_{false};  // a caller owns the team
  std::atomic<bool> stop_{false};
  std::vector<std::thread> helpers_;  // threads 1, 2, ...
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> wake_sent_{false};
};

}  // namespace

SpinTeamOff::SpinTeamOff() : was_(team_off) { team_off = true; }
SpinTeamOff::~SpinTeamOff() { team_off = was_; }

void note_openmp_team() {
  if (omp_get_max_threads() <= 1 || omp_in_parallel()) return;
  openmp_last_ns.store(now_ns(), std::memory_order_relaxed);
  if (!openmp_recent.load(std::memory_order_relaxed)) {
    openmp_recent.store(true, std::memory_order_relaxed);
  }
}

bool spin_team_run(int threads, int64_t blocks, Body body, void* context) {
  static Team team;
  return team.run(threads, blocks, body, context);
}

}  // namespace minnow::kernels
