// libFuzzer target: the ONNX importer (protobuf parsing, tensor decoding, import-time folding,
// every converter) and building an inference session from what it accepts; small accepted
// models are also run once on zero inputs. Anything but minnow::Error escaping is a bug.
#include <cstddef>
#include <cstdint>
#include <map>

#include "minnow/error.h"
#include "onnx/onnx_import.h"
#include "runtime/inference_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    minnow::Graph g = minnow::onnx::import_onnx_bytes(data, size, "fuzz.onnx");
    minnow::InferenceSession session(g);
    std::map<std::string, minnow::Tensor> feeds;
    int64_t total = 0;
    for (const minnow::ValueInfo& v : g.inputs) {
      minnow::Shape s = v.shape;
      if (!s.empty() && s[0] == minnow::kDynamic) s[0] = 1;
      const int64_t n = minnow::shape_numel(s);
      if (n < 0) return 0;
      total += n;
      if (total > (1 << 16)) return 0;  // keep each input fast
      feeds[v.name] = minnow::Tensor(v.dtype, s);
    }
    session.run(feeds);
  } catch (const minnow::Error&) {
    // A clear rejection is the expected outcome for malformed input.
  }
  return 0;
}
