#include "minnow/zoo.h"

#include <cstdio>
#include <string>

#include "minnow/error.h"
#include "zoo/builders.h"

namespace minnow::zoo {
namespace {

std::string num_str(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

struct Row {
  ZooEntry entry;
  Graph (*build)(const ZooOptions&);
};

const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {{"lenet5", "LeNet-5: conv6@5x5-pool-conv16@5x5-pool-fc120-fc84-fc (61,706 params at 28x28)"},
       build_lenet5},
      {{"lenet300", "LeNet-300-100: MLP 784-300-100-10 with ReLU (266,610 params)"},
       build_lenet300},
      {{"mlp", "MLP with --hidden sizes (default 256,128) and optional dropout"}, build_mlp},
      {{"mobilenet_v1",
        "MobileNetV1, CIFAR layout: 3x3 stem (stride 1 under 64 px), 13 depthwise-separable "
        "blocks 64..1024"},
       build_mobilenet_v1},
      {{"mobilenet_v2",
        "MobileNetV2, small-input: stride-1 stem 16, 6 inverted residuals to 64, head 128"},
       build_mobilenet_v2},
      {{"mobilenet_v3_small", "MobileNetV3-Small with SE and HardSwish; stride-1 stem under 64 px"},
       build_mobilenet_v3_small},
      {{"squeezenet", "SqueezeNet 1.1 fire modules; stride-1 stem and padded pools under 64 px"},
       build_squeezenet},
      {{"shufflenet_v2",
        "ShuffleNetV2 x0.5 (48/96/192): channel split + shuffle; no stem downsampling under 64 px"},
       build_shufflenet_v2},
      {{"resnet8", "MLPerf Tiny ResNet-8: 16/32/64 filters, 3 residual stacks"}, build_resnet8},
      {{"ds_cnn", "MLPerf Tiny KWS DS-CNN: conv 10x4/2 64, 4 depthwise-separable blocks"},
       build_ds_cnn},
      {{"lstm_classifier",
        "Text: embedding 64 -> bidirectional LSTM 64 (masked by lengths) -> final states + time "
        "mean -> fc"},
       build_lstm_classifier},
      {{"gru_classifier",
        "Text: embedding 64 -> bidirectional GRU 64 (masked by lengths) -> final states + time "
        "mean -> fc"},
       build_gru_classifier},
      {{"transformer_classifier",
        "Text: embedding + learned positions (d_model 64), 2 post-norm encoder layers (4 heads, "
        "FF 128, padding mask), mean pool -> fc"},
       build_transformer_classifier},
  };
  return kRows;
}

}  // namespace

const std::vector<ZooEntry>& entries() {
  static const std::vector<ZooEntry> kEntries = [] {
    std::vector<ZooEntry> e;
    for (const Row& r : rows()) e.push_back(r.entry);
    return e;
  }();
  return kEntries;
}

bool has(const std::string& name) {
  for (const Row& r : rows()) {
    if (r.entry.name == name) return true;
  }
  return false;
}

Graph build(const std::string& name, const ZooOptions& opt) {
  if (opt.classes < 2) throw Error("--classes must be at least 2");
  if (!(opt.width > 0.0) || opt.width > 64.0) {
    throw Error("--width must be in (0, 64], got " + num_str(opt.width));
  }
  if (!(opt.dropout >= 0.0 && opt.dropout < 1.0)) {
    throw Error("--dropout must be in [0, 1), got " + num_str(opt.dropout));
  }
  for (const Row& r : rows()) {
    if (r.entry.name == name) return r.build(opt);
  }
  std::string known;
  for (const Row& r : rows()) known += (known.empty() ? "" : ", ") + r.entry.name;
  throw Error("unknown model '" + name + "' (known: " + known + ")");
}

}  // namespace minnow::zoo
