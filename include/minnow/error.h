// minnow::Error — the one exception type for bad input and misuse.
//
// Its message names the thing at fault (file, node, tensor, flag) and what was expected.
// The CLI maps it to a one-line message and exit code 2; any other exception is an
// internal error (exit code 1).
#pragma once

#include <stdexcept>
#include <string>

namespace minnow {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace minnow
