// ONNX import: an ONNX model file (opsets 11-17) becomes a minnow Graph (DESIGN.md §1: one
// graph; an imported model is trained, compressed, saved and run like a zoo model).
//
// Each ONNX node maps onto minnow ops (sometimes several, e.g. LSTM with its layout
// transposes); shape-only subgraphs (Shape -> Gather -> Concat -> Reshape, as PyTorch emits
// around Flatten/Reshape) are evaluated at import when the shapes they read are static.
// Initializers become graph initializers (float ones trainable). A model with unsupported ops
// fails with one minnow::Error that lists every unsupported op and the nodes using it.
#pragma once

#include <cstddef>
#include <string>

#include "minnow/graph.h"

namespace minnow::onnx {

struct ImportOptions {
  // The batch (first) dimension of every graph input becomes symbolic (kDynamic) when it is
  // symbolic in the file (dim_param) — and also when it is concrete but this is set.
  bool dynamic_batch = false;
};

Graph import_onnx_file(const std::string& path, const ImportOptions& opts = {});
// `origin` names the model in error messages.
Graph import_onnx_bytes(const void* data, size_t size, const std::string& origin,
                        const ImportOptions& opts = {});

}  // namespace minnow::onnx
