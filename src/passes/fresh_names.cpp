#include "passes/fresh_names.h"

namespace minnow {
namespace {

std::string reserve(std::set<std::string>& used, const std::string& base) {
  std::string name = base;
  for (int i = 2; used.count(name); ++i) name = base + "." + std::to_string(i);
  used.insert(name);
  return name;
}

}  // namespace

FreshNames::FreshNames(const Graph& g) {
  for (const auto& [name, init] : g.initializers) values_.insert(name);
  for (const Node& n : g.nodes) {
    values_.insert(n.inputs.begin(), n.inputs.end());
    values_.insert(n.outputs.begin(), n.outputs.end());
    nodes_.insert(n.name);
  }
  for (const ValueInfo& v : g.inputs) values_.insert(v.name);
  for (const ValueInfo& v : g.outputs) values_.insert(v.name);
}

std::string FreshNames::value(const std::string& base) { return reserve(values_, base); }
std::string FreshNames::node(const std::string& base) { return reserve(nodes_, base); }

}  // namespace minnow
