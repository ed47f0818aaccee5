// The GRAPH section of a .mnw file: the graph's values, nodes and typed attributes as JSON.
// Initializers are not part of it; they live in the TENSORS section.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "minnow/graph.h"

namespace minnow::io {

nlohmann::json graph_to_json(const Graph& g);
// Checks the schema (every field's presence and type, dtype names, op names, attribute types)
// and builds the graph without initializers. Errors are prefixed with `where`. Structural checks
// (dangling names, order, arity) are Graph::validate()'s job.
Graph graph_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace minnow::io
