// One builder function per zoo architecture; zoo.cpp holds the name table.
#pragma once

#include "minnow/zoo.h"

namespace minnow::zoo {

Graph build_lenet5(const ZooOptions& opt);
Graph build_lenet300(const ZooOptions& opt);
Graph build_mlp(const ZooOptions& opt);

}  // namespace minnow::zoo
