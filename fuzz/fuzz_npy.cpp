// libFuzzer target: the .npy reader. Anything but minnow::Error escaping is a bug.
#include <cstddef>
#include <cstdint>

#include "io/npy.h"
#include "minnow/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    minnow::Tensor t = minnow::io::parse_npy(data, size, "fuzz.npy");
    // Whatever is accepted must serialize and read back to the same shape.
    std::string bytes = minnow::io::serialize_npy(t);
    minnow::Tensor u = minnow::io::parse_npy(bytes.data(), bytes.size(), "round trip");
    if (u.shape() != t.shape() || u.dtype() != t.dtype()) __builtin_trap();
  } catch (const minnow::Error&) {
  }
  return 0;
}
