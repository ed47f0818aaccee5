#include "minnow/zoo.h"

#include "minnow/error.h"
#include "zoo/builders.h"

namespace minnow::zoo {
namespace {

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
  for (const Row& r : rows()) {
    if (r.entry.name == name) return r.build(opt);
  }
  std::string known;
  for (const Row& r : rows()) known += (known.empty() ? "" : ", ") + r.entry.name;
  throw Error("unknown model '" + name + "' (known: " + known + ")");
}

}  // namespace minnow::zoo
