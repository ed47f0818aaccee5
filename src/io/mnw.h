// The .mnw model file (docs/mnw.md): a versioned, checksummed container for a graph, its
// weights (64-byte aligned, so a file can be memory-mapped), free-form metadata and, in
// checkpoints, optimizer and trainer state.
//
// A model file is untrusted input: loading validates every field and throws minnow::Error
// naming the file and the field at fault; it never crashes or allocates more than the file
// justifies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "minnow/graph.h"
#include "minnow/tensor.h"

namespace minnow::io {

inline constexpr uint32_t kMnwVersion = 1;

struct MnwContents {
  Graph graph;  // nodes, inputs, outputs, initializers (+trainable)
  nlohmann::json metadata = nlohmann::json::object();  // normalization, class names, training info
  std::map<std::string, Tensor> optimizer_state;       // checkpoints only: e.g. "adam.m/<param>"
  nlohmann::json trainer_state = nlohmann::json::object();  // checkpoints only: epoch, step, rng
};

// The file's bytes. Throws minnow::Error if the contents could not be loaded back: a graph that
// fails Graph::validate(), undefined tensors, bad quantization parameters, metadata or trainer
// state that is not a JSON object, strings that are not UTF-8.
std::string serialize_mnw(const MnwContents& c);
// serialize_mnw + write_file_atomic.
void save_mnw(const std::string& path, const MnwContents& c);
// read_file + parse_mnw.
MnwContents load_mnw(const std::string& path);
// decode_mnw, then check_mnw_graph. `label` (usually the path) prefixes error messages.
MnwContents parse_mnw(const void* data, size_t size, const std::string& label);

// Checks the container (magic, version, checksums, section bounds), the JSON schemas and every
// tensor, and builds the contents; does not check the graph's structure or shapes.
MnwContents decode_mnw(const void* data, size_t size, const std::string& label);
// Graph::validate() and Graph::infer_shapes(), with errors prefixed by `label`.
void check_mnw_graph(const Graph& g, const std::string& label);

}  // namespace minnow::io
