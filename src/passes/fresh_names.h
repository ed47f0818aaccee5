// Names for what a rewrite pass adds to a graph: value and node names not yet used, so that a
// pass never captures or shadows an existing value (imported graphs name things freely).
#pragma once

#include <set>
#include <string>

#include "minnow/graph.h"

namespace minnow {

class FreshNames {
 public:
  explicit FreshNames(const Graph& g);
  // `base`, or `base.2`, `base.3`, ... : the first not used by any value; reserves it.
  std::string value(const std::string& base);
  // The same for node names.
  std::string node(const std::string& base);

 private:
  std::set<std::string> values_, nodes_;
};

}  // namespace minnow
