// libFuzzer target: the .mnw loader (container, JSON sections, tensors, graph checks) and
// building an inference session from what it accepts. Anything but minnow::Error escaping is a
// bug: libFuzzer reports it (uncaught exception, sanitizer error or crash).
#include <cstddef>
#include <cstdint>

#include "io/mnw.h"
#include "minnow/error.h"
#include "runtime/inference_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    minnow::io::MnwContents c = minnow::io::parse_mnw(data, size, "fuzz.mnw");
    minnow::InferenceSession session(std::move(c.graph));
  } catch (const minnow::Error&) {
    // A clear rejection is the expected outcome for malformed input.
  }
  return 0;
}
