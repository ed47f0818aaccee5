// One builder function per zoo architecture; zoo.cpp holds the name table.
#pragma once

#include "minnow/zoo.h"

namespace minnow::zoo {

Graph build_lenet5(const ZooOptions& opt);
Graph build_lenet300(const ZooOptions& opt);
Graph build_mlp(const ZooOptions& opt);
Graph build_mobilenet_v1(const ZooOptions& opt);
Graph build_mobilenet_v2(const ZooOptions& opt);
Graph build_mobilenet_v3_small(const ZooOptions& opt);
Graph build_squeezenet(const ZooOptions& opt);
Graph build_shufflenet_v2(const ZooOptions& opt);
Graph build_resnet8(const ZooOptions& opt);
Graph build_ds_cnn(const ZooOptions& opt);
Graph build_lstm_classifier(const ZooOptions& opt);
Graph build_gru_classifier(const ZooOptions& opt);
Graph build_transformer_classifier(const ZooOptions& opt);

}  // namespace minnow::zoo
