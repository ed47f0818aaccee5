#include "ops/fused_activation.h"

#include "ops/op_util.h"

namespace minnow::ops {

FusedActivation FusedActivation::of(const Node& n) {
  FusedActivation a;
  const std::string act = n.attrs.get_string("activation", "");
  if (act == "relu" || act == "relu6") {
    a.on = true;
    a.lo = 0.0f;
    if (act == "relu6") a.hi = 6.0f;
  } else if (!act.empty()) {
    fail(n, "attribute activation must be \"\", \"relu\" or \"relu6\", got \"" + act + "\"");
  }
  return a;
}

}  // namespace minnow::ops
