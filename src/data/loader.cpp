#include "data/loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "core/rng.h"
#include "data/permutation.h"
#include "minnow/error.h"

namespace minnow::data {

BatchLoader::BatchLoader(const Dataset& data, int64_t batch_size, bool shuffle, Normalization norm,
                         AugmentOptions aug, uint64_t seed, bool prefetch)
    : data_(data),
      batch_size_(batch_size),
      shuffle_(shuffle),
      aug_(aug),
      seed_(seed),
      prefetch_(prefetch) {
  auto fail = [](const std::string& msg) { throw Error("BatchLoader: " + msg); };
  if (batch_size <= 0) fail("batch size " + std::to_string(batch_size) + " must be positive");
  tokens_ = data.x.defined() && data.x.dtype() == DType::kI64;
  if (tokens_) {
    if (data.x.rank() != 2 || !data.lengths.defined() || data.lengths.dtype() != DType::kI64 ||
        data.lengths.shape() != Shape{data.x.dim(0)}) {
      fail("token-id dataset must have i64 x [N, L] and i64 lengths [N], got x " +
           shape_str(data.x.shape()) + " and " +
           (data.lengths.defined() ? std::string(dtype_name(data.lengths.dtype())) + " lengths " +
                                         shape_str(data.lengths.shape())
                                   : std::string("no lengths")));
    }
    if (!norm.mean.empty() || !norm.std.empty()) {
      fail("token ids (i64 x) take no normalization; pass an empty Normalization");
    }
    if (aug.any()) fail("token ids (i64 x) take no augmentation (shift/hflip)");
  } else if (!data.x.defined() || data.x.dtype() != DType::kF32 || data.x.rank() < 2) {
    fail("dataset x must be an f32 tensor [N, ...] with rank >= 2 or i64 token ids [N, L], got " +
         (data.x.defined()
              ? std::string(dtype_name(data.x.dtype())) + " " + shape_str(data.x.shape())
              : std::string("no tensor")));
  }
  n_ = data.x.dim(0);
  if (!data.y.defined() || data.y.dtype() != DType::kI64 || data.y.rank() != 1 ||
      data.y.dim(0) != n_) {
    fail("dataset y must be an i64 tensor [" + std::to_string(n_) + "], got " +
         (data.y.defined()
              ? std::string(dtype_name(data.y.dtype())) + " " + shape_str(data.y.shape())
              : std::string("no tensor")));
  }
  const Shape sample = data.sample_shape();
  channels_ = tokens_ ? 1 : num_channels(sample);
  inner_ = channels_ ? shape_numel(sample) / channels_ : 0;

  if (norm.mean.empty() && norm.std.empty()) {
    mean_.assign(channels_, 0.0f);
    inv_std_.assign(channels_, 1.0f);
    identity_norm_ = true;
  } else {
    if (static_cast<int64_t>(norm.mean.size()) != channels_ ||
        static_cast<int64_t>(norm.std.size()) != channels_) {
      fail("normalization has " + std::to_string(norm.mean.size()) + " means and " +
           std::to_string(norm.std.size()) + " stds, but samples " + shape_str(sample) + " have " +
           std::to_string(channels_) + " channels");
    }
    for (int64_t c = 0; c < channels_; ++c) {
      if (!(norm.std[c] > 0.0f) || !std::isfinite(norm.std[c]) || !std::isfinite(norm.mean[c])) {
        fail("normalization of channel " + std::to_string(c) + " has mean " +
             std::to_string(norm.mean[c]) + " and std " + std::to_string(norm.std[c]) +
             "; expected finite values and std > 0");
      }
      mean_.push_back(norm.mean[c]);
      // Multiplying by 1/std instead of dividing keeps the fused copy loop cheap.
      inv_std_.push_back(1.0f / norm.std[c]);
    }
  }
  if (aug.shift < 0) fail("augmentation shift " + std::to_string(aug.shift) + " is negative");
  if (aug.any()) {
    if (sample.size() != 3) {
      fail("augmentation (shift/hflip) needs image samples [C, H, W], got " + shape_str(sample));
    }
    height_ = sample[1];
    width_ = sample[2];
  }

  const int64_t rows = std::min(batch_size, n_);
  for (Slot& s : slots_) {
    s.x_shape = data.x.shape();
    s.x_shape[0] = rows;
    s.y_shape = {rows};
    s.x = Tensor(data.x.dtype(), s.x_shape);
    s.y = Tensor(DType::kI64, s.y_shape);
    if (tokens_) s.lengths = Tensor(DType::kI64, s.y_shape);
    s.size = rows;
  }
  order_.reserve(static_cast<size_t>(n_));
  if (prefetch_) worker_ = std::thread(&BatchLoader::worker_loop, this);
}

BatchLoader::~BatchLoader() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  // The worker finishes at most the one batch it is filling, then sees stop_.
  worker_.join();
}

int64_t BatchLoader::batches_per_epoch() const { return (n_ + batch_size_ - 1) / batch_size_; }

void BatchLoader::start_epoch(int64_t epoch) {
  if (epoch < 0) throw Error("BatchLoader: epoch " + std::to_string(epoch) + " is negative");
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  if (prefetch_) {
    lock.lock();
    // A batch of the previous epoch may be in flight: it reads order_ and writes a slot.
    pending_ = -1;
    cv_.wait(lock, [&] { return !busy_; });
  }
  epoch_ = epoch;
  if (shuffle_) {
    Rng rng = Rng::derive(seed_, static_cast<uint64_t>(epoch));
    random_permutation(n_, rng, order_);
  } else {
    order_.resize(static_cast<size_t>(n_));
    std::iota(order_.begin(), order_.end(), int64_t{0});
  }
  cursor_ = 0;
  ready_[0] = ready_[1] = -1;
  error_ = nullptr;
  if (prefetch_ && batches_per_epoch() > 0) {
    pending_ = 0;
    lock.unlock();
    cv_.notify_all();
  }
}

bool BatchLoader::next(Batch& out) {
  if (epoch_ < 0) throw Error("BatchLoader: next() called before start_epoch()");
  const int64_t k = cursor_;
  if (k >= batches_per_epoch()) return false;
  Slot& slot = slots_[k % 2];
  if (prefetch_) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ready_[k % 2] == k || error_; });
    if (error_) std::rethrow_exception(error_);
    ready_[k % 2] = -1;
    // The other slot held batch k-1, which the caller released by calling next() again.
    if (k + 1 < batches_per_epoch()) {
      pending_ = k + 1;
      lock.unlock();
      cv_.notify_all();
    }
  } else {
    fill(slot, k);
  }
  out.x = slot.x;
  out.y = slot.y;
  out.lengths = slot.lengths;
  out.size = slot.size;
  cursor_ = k + 1;
  return true;
}

void BatchLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || pending_ >= 0; });
    if (stop_) return;
    const int64_t k = pending_;
    pending_ = -1;
    busy_ = true;
    lock.unlock();
    std::exception_ptr err;
    try {
      fill(slots_[k % 2], k);
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    busy_ = false;
    if (err) {
      error_ = err;
    } else {
      ready_[k % 2] = k;
    }
    cv_.notify_all();
  }
}

void BatchLoader::fill(Slot& slot, int64_t batch_index) {
  const int64_t begin = batch_index * batch_size_;
  const int64_t count = std::min(batch_size_, n_ - begin);
  if (slot.size != count) {
    // Shrinking for the partial last batch (and growing back) stays within the capacity.
    slot.x_shape[0] = count;
    slot.y_shape[0] = count;
    slot.x.resize(slot.x_shape);
    slot.y.resize(slot.y_shape);
    if (tokens_) slot.lengths.resize(slot.y_shape);
    slot.size = count;
  }
  const int64_t sample_numel = channels_ * inner_;
  if (tokens_) {
    const int64_t* ids = data_.x.data<int64_t>();
    const int64_t* labels = data_.y.data<int64_t>();
    const int64_t* lengths = data_.lengths.data<int64_t>();
    for (int64_t j = 0; j < count; ++j) {
      const int64_t idx = order_[begin + j];
      slot.y.data<int64_t>()[j] = labels[idx];
      slot.lengths.data<int64_t>()[j] = lengths[idx];
      std::memcpy(slot.x.data<int64_t>() + j * sample_numel, ids + idx * sample_numel,
                  static_cast<size_t>(sample_numel) * sizeof(int64_t));
    }
    return;
  }
  const float* src = data_.x.f32();
  const int64_t* labels = data_.y.data<int64_t>();
  float* dst = slot.x.f32();
  int64_t* dst_y = slot.y.data<int64_t>();
  const float* mean = mean_.data();
  const float* inv_std = inv_std_.data();
  for (int64_t j = 0; j < count; ++j) {
    const int64_t idx = order_[begin + j];
    dst_y[j] = labels[idx];
    const float* in = src + idx * sample_numel;
    float* out = dst + j * sample_numel;
    if (aug_.any()) {
      Rng rng = Rng::derive(seed_, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(idx) + 1);
      AugmentParams p = draw_augment(aug_, rng);
      augment_normalize(in, out, channels_, height_, width_, p, mean, inv_std);
    } else if (identity_norm_) {
      std::memcpy(out, in, static_cast<size_t>(sample_numel) * sizeof(float));
    } else {
      for (int64_t c = 0; c < channels_; ++c) {
        const float m = mean[c], s = inv_std[c];
        const float* a = in + c * inner_;
        float* b = out + c * inner_;
        for (int64_t i = 0; i < inner_; ++i) b[i] = (a[i] - m) * s;
      }
    }
  }
}

}  // namespace minnow::data
