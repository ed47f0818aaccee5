// Training progress on stderr: a redrawn bar on a terminal, periodic plain lines otherwise.
#pragma once

#include <chrono>

#include "train/trainer.h"

namespace minnow::cli {

class ProgressPrinter {
 public:
  ProgressPrinter();
  void on_step(const TrainProgress& p);
  void on_epoch(const EpochSummary& e);

 private:
  bool tty_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace minnow::cli
