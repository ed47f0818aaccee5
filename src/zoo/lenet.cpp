// LeNet-5 (LeCun et al. 1998, modern ReLU/max-pool form), LeNet-300-100 and a configurable MLP.
#include "minnow/builder.h"
#include "minnow/error.h"
#include "zoo/builders.h"

namespace minnow::zoo {

Graph build_lenet5(const ZooOptions& opt) {
  if (opt.input_shape.size() != 3)
    throw Error("lenet5 needs image input [C,H,W], got " + shape_str(opt.input_shape));
  GraphBuilder b("lenet5", opt.seed);
  Shape in = {kDynamic};
  in.insert(in.end(), opt.input_shape.begin(), opt.input_shape.end());
  std::string x = b.input("input", in);
  ConvOptions pad2;
  pad2.pad = 2;
  x = b.max_pool(b.relu(b.conv2d(x, 6, 5, pad2, "conv1")), 2, 0, 0, "pool1");
  x = b.max_pool(b.relu(b.conv2d(x, 16, 5, {}, "conv2")), 2, 0, 0, "pool2");
  x = b.flatten(x, 1, "flatten");
  x = b.relu(b.linear(x, 120, true, "fc1"));
  x = b.relu(b.linear(x, 84, true, "fc2"));
  x = b.linear(x, opt.classes, true, "logits");
  b.output(x);
  return b.build();
}

Graph build_mlp_named(const std::string& name, const ZooOptions& opt,
                      const std::vector<int64_t>& hidden) {
  GraphBuilder b(name, opt.seed);
  Shape in = {kDynamic};
  in.insert(in.end(), opt.input_shape.begin(), opt.input_shape.end());
  std::string x = b.input("input", in);
  if (in.size() > 2) x = b.flatten(x, 1, "flatten");
  for (size_t i = 0; i < hidden.size(); ++i) {
    if (hidden[i] <= 0) throw Error("mlp hidden sizes must be positive");
    x = b.relu(b.linear(x, hidden[i], true, "fc" + std::to_string(i + 1)));
    if (opt.dropout > 0) x = b.dropout(x, opt.dropout, "dropout" + std::to_string(i + 1));
  }
  x = b.linear(x, opt.classes, true, "logits");
  b.output(x);
  return b.build();
}

Graph build_lenet300(const ZooOptions& opt) { return build_mlp_named("lenet300", opt, {300, 100}); }

Graph build_mlp(const ZooOptions& opt) { return build_mlp_named("mlp", opt, opt.hidden); }

}  // namespace minnow::zoo
