#include "runtime/lane_workers.h"

#include <omp.h>

namespace minnow {

OneThread::OneThread() : threads_(omp_get_max_threads()) { omp_set_num_threads(1); }
OneThread::~OneThread() { omp_set_num_threads(threads_); }

LaneWorkers::~LaneWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  start_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void LaneWorkers::run_erased(int lanes, Erased call, void* job) {
  while (static_cast<int>(threads_.size()) < lanes - 1) {
    const int lane = static_cast<int>(threads_.size()) + 1;
    threads_.emplace_back([this, lane] { work(lane); });
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    call_ = call;
    job_ = job;
    active_ = lanes;
    pending_ = lanes - 1;
    failure_ = nullptr;
    ++generation_;
  }
  start_.notify_all();
  // Lane 0 on this thread, with OpenMP at one thread for the duration.
  std::exception_ptr mine;
  try {
    OneThread one;
    call(job, 0);
  } catch (...) {
    mine = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
  if (mine) std::rethrow_exception(mine);
  if (failure_) std::rethrow_exception(failure_);
}

void LaneWorkers::work(int lane) {
  omp_set_num_threads(1);  // this thread's own OpenMP setting
  int64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    if (lane >= active_) continue;  // not part of this run
    const Erased call = call_;
    void* job = job_;
    lock.unlock();
    std::exception_ptr failure;
    try {
      call(job, lane);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    if (failure && !failure_) failure_ = failure;
    if (--pending_ == 0) done_.notify_one();
  }
}

}  // namespace minnow
