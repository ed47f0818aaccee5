// LaneWorkers: threads that run an inference session's parallel lanes (inference_session.h).
//
// Each lane is a thread of its own with OpenMP limited to one thread, not a member of an OpenMP
// team: kernels inside a lane then run exactly as on a one-thread machine. Inside an OpenMP
// parallel region instead, oneDNN 2.6's int8 convolutions with a source zero point and padding
// computed wrong outputs when two ran at once (each with its own primitive, memory and
// scratchpad); as separate threads they agree with a serial run.
//
// The caller's thread is lane 0; the others wait on a condition variable between runs, so a
// run costs no thread creation.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/spin_team.h"

namespace minnow {

// OpenMP limited to one thread, and the spin team (kernels/spin_team.h) off, on this thread for
// the scope: how lane 0 runs on the caller's thread, and an InferenceSession's one-thread runs.
class OneThread {
 public:
  OneThread();
  ~OneThread();
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int threads_;
  kernels::SpinTeamOff team_off_;
};

class LaneWorkers {
 public:
  LaneWorkers() = default;
  LaneWorkers(const LaneWorkers&) = delete;
  LaneWorkers& operator=(const LaneWorkers&) = delete;
  ~LaneWorkers();

  // Calls job(lane) once on each of `lanes` threads (lane 0 on the caller's), each with OpenMP
  // limited to one thread, and returns when all are done. Rethrows the first exception a lane
  // threw. Allocates nothing after the first run with as many lanes.
  template <class Job>
  void run(int lanes, Job& job) {
    run_erased(
        lanes, [](void* j, int lane) { (*static_cast<Job*>(j))(lane); }, &job);
  }

 private:
  using Erased = void (*)(void* job, int lane);
  void run_erased(int lanes, Erased call, void* job);
  void work(int lane);

  std::vector<std::thread> threads_;  // lanes 1, 2, ...
  std::mutex mu_;
  std::condition_variable start_, done_;
  Erased call_ = nullptr;
  void* job_ = nullptr;
  int64_t generation_ = 0;  // counts runs; a worker joins each one once
  int active_ = 0;          // lanes of the current run (workers with lane < active_ take part)
  int pending_ = 0;         // workers of the current run not finished yet
  bool stopping_ = false;
  std::exception_ptr failure_;
};

}  // namespace minnow
