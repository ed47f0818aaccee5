// Rng: a small, fast, portable random generator (xoshiro256** seeded by splitmix64).
//
// std::mt19937 is portable but the std distributions are not, so runs would not repeat across
// standard libraries; every distribution minnow uses is written here.
#pragma once

#include <cmath>
#include <cstdint>

namespace minnow {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  // Independent stream for (seed, a, b): used to derive per-epoch / per-step generators so that
  // resuming from a checkpoint replays exactly the same random numbers.
  static Rng derive(uint64_t seed, uint64_t a, uint64_t b = 0) {
    return Rng(mix(mix(seed) ^ (a * 0x9E3779B97F4A7C15ull) ^ mix(b + 0x632BE59BD9B4E019ull)));
  }

  void reseed(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& w : s_) w = mix(x += 0x9E3779B97F4A7C15ull);
  }
  uint64_t next_u64() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in [0, 1) with 24 random bits (exactly representable in float).
  float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n ? next_u64() % n : 0; }
  // Standard normal (Box-Muller, one value per call).
  float normal() {
    double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace minnow
