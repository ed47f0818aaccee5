#include "progress.h"

#include <unistd.h>

#include <cstdio>
#include <string>

namespace minnow::cli {
namespace {

std::string format_eta(double seconds) {
  int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d:%02d", s / 60, s % 60);
  return buf;
}

}  // namespace

ProgressPrinter::ProgressPrinter()
    : tty_(isatty(STDERR_FILENO) != 0), last_(std::chrono::steady_clock::now()) {}

void ProgressPrinter::on_step(const TrainProgress& p) {
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  bool last_step = p.step == p.steps_per_epoch;
  // A terminal redraws ~10 times a second; a log gets a line every 10 s so it stays readable.
  if (since < (tty_ ? 0.1 : 10.0) && !(tty_ && last_step)) return;
  last_ = now;
  if (tty_) {
    const int width = 24;
    int filled = static_cast<int>(width * p.step / std::max<int64_t>(1, p.steps_per_epoch));
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld loss %.4f acc %.4f %.0f img/s ETA %s  ",
                 static_cast<long long>(p.epoch), static_cast<long long>(p.epochs), bar.c_str(),
                 static_cast<long long>(p.step), static_cast<long long>(p.steps_per_epoch), p.loss,
                 p.accuracy, p.images_per_second, format_eta(p.eta_seconds).c_str());
  } else {
    std::fprintf(stderr, "epoch %lld/%lld step %lld/%lld loss %.4f acc %.4f %.0f img/s ETA %s\n",
                 static_cast<long long>(p.epoch), static_cast<long long>(p.epochs),
                 static_cast<long long>(p.step), static_cast<long long>(p.steps_per_epoch), p.loss,
                 p.accuracy, p.images_per_second, format_eta(p.eta_seconds).c_str());
  }
  std::fflush(stderr);
}

void ProgressPrinter::on_epoch(const EpochSummary& e) {
  if (tty_) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "epoch %lld: train loss %.4f acc %.4f", static_cast<long long>(e.epoch),
               e.train_loss, e.train_acc);
  if (e.val_acc >= 0) std::fprintf(stderr, " | val loss %.4f acc %.4f", e.val_loss, e.val_acc);
  std::fprintf(stderr, " | lr %.3g | %.1f s\n", e.lr, e.seconds);
  std::fflush(stderr);
}

}  // namespace minnow::cli
