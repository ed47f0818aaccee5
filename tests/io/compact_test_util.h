// Helpers shared by the compact tensor tests (test_mnw_compact.cpp, test_mnw_compact_entropy.cpp):
// a one-Linear model around a weight, test weights, the index entry a file gives a tensor, and
// files whose compact entry and payload were rewritten by hand (checksums stay valid).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "io/mnw.h"
#include "io_test_util.h"

namespace minnow::io::testing {

// A valid one-Linear model whose weight is `w` ([out, in]).
MnwContents linear_model(const Tensor& w);

// Weights with the given fraction of zeros and, when `values` > 0, drawn from that many
// distinct non-zero values.
Tensor weights(Shape shape, double zero_fraction, int values, uint64_t seed,
               DType dtype = DType::kF32);

// The index entry of tensor `name` in section `kind` (kTensors or kOptimizer) of a file.
nlohmann::json tensor_entry(const std::string& file, const std::string& name,
                            uint32_t kind = kTensors);

// The message of the error decoding `bytes` raises, or "(no error)".
std::string error_of(const std::string& bytes);

#define EXPECT_MNW_ERROR(bytes, needle)                                                    \
  do {                                                                                     \
    std::string msg_ = ::minnow::io::testing::error_of(bytes);                             \
    EXPECT_NE(msg_.find(needle), std::string::npos) << "message: " << msg_;                \
    EXPECT_EQ(msg_.rfind("model.mnw: ", 0), 0u) << "not prefixed with the file: " << msg_; \
  } while (0)

using Mutation = std::function<void(nlohmann::json&, std::string&)>;
// The file of linear_model(w) with the entry of "w" and its stored bytes rewritten.
std::string mutated(const Tensor& w, const Mutation& mutate);
// A mutation that replaces the entry's "compact" object and the payload.
Mutation hand_made(nlohmann::json spec, std::string payload);

// The weight "w" of a decoded file.
Tensor decoded_w(const std::string& file);

void append_f32(std::string& s, float v);

}  // namespace minnow::io::testing
