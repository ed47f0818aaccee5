// BatchLoader: shuffled, normalized, augmented mini-batches, optionally prepared one batch ahead
// on a background thread. Token-id datasets (i64 x [N, L] with lengths) pass through unchanged:
// ids are not normalized or augmented.
//
// Determinism: the order of epoch e is a Fisher-Yates permutation drawn from
// Rng::derive(seed, e); the augmentation of dataset sample i in epoch e is drawn from
// Rng::derive(seed, e, i + 1) (+1 keeps sample 0 off the permutation's stream). Neither depends
// on the batch size, on prefetching or on thread timing, so training can resume bit-for-bit at
// any epoch boundary.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/normalize.h"

namespace minnow::data {

struct Batch {
  Tensor x;        // f32 [size, ...sample shape], or i64 [size, L] token ids
  Tensor y;        // i64 [size]
  Tensor lengths;  // i64 [size] for token-id datasets; undefined otherwise
  int64_t size = 0;
};

class BatchLoader {
 public:
  // The loader does not copy `data`; it must outlive the loader. `norm` is per channel (see
  // num_channels()) or empty for none. Augmentation needs image samples [C, H, W]. An i64 x
  // (token ids) must be [N, L] with i64 lengths [N] and takes neither normalization nor
  // augmentation. Throws minnow::Error for an invalid dataset, batch size, normalization or
  // augmentation.
  BatchLoader(const Dataset& data, int64_t batch_size, bool shuffle, Normalization norm,
              AugmentOptions aug, uint64_t seed, bool prefetch = true);
  ~BatchLoader();  // joins the worker thread cleanly, also mid-epoch
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Starts (or restarts) epoch `epoch` from its first batch.
  void start_epoch(int64_t epoch);
  // Fills the next batch (normalized, augmented); false at the end of the epoch. The returned
  // tensors stay valid until the next call of next() or start_epoch(). The last batch may be
  // partial (size < batch_size, tensors shaped accordingly). Throws minnow::Error when no
  // epoch was started.
  bool next(Batch& out);
  int64_t batches_per_epoch() const;

  int64_t batch_size() const { return batch_size_; }
  // Dataset indices of the current epoch, in batch order (valid after start_epoch).
  const std::vector<int64_t>& epoch_order() const { return order_; }

 private:
  // Two sets of preallocated batch tensors: the trainer reads one while the worker fills the
  // other. Their shape vectors are kept too, so that resizing for a partial batch allocates
  // nothing.
  struct Slot {
    Tensor x, y, lengths;  // lengths only for token-id datasets
    Shape x_shape, y_shape;
    int64_t size = 0;
  };

  void fill(Slot& slot, int64_t batch_index);  // reads order_, data_; writes slot only
  void worker_loop();
  void wait_idle(std::unique_lock<std::mutex>& lock);

  const Dataset& data_;
  const int64_t batch_size_;
  const bool shuffle_;
  const AugmentOptions aug_;
  const uint64_t seed_;
  const bool prefetch_;
  int64_t n_ = 0, channels_ = 0, inner_ = 0, height_ = 0, width_ = 0;
  bool tokens_ = false;  // i64 token ids: copied verbatim with their lengths
  std::vector<float> mean_, inv_std_;
  bool identity_norm_ = false;

  std::vector<int64_t> order_;
  int64_t epoch_ = -1;
  int64_t cursor_ = 0;  // next batch index handed to the caller
  Slot slots_[2];

  // Worker protocol (all guarded by mu_): next() posts `pending_` (a batch index for slot
  // pending_ % 2); the worker sets `busy_` while filling and `ready_[slot]` when done.
  // start_epoch() waits until the worker is idle before touching order_ or the slots.
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t pending_ = -1;
  int64_t ready_[2] = {-1, -1};
  bool busy_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread worker_;
};

}  // namespace minnow::data
