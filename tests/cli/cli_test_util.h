// Shared by the end-to-end CLI tests: running the minnow binary, the one-line user-error
// contract (exit code 2, one line naming the fault), and IDX files for test datasets.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "core/rng.h"

namespace minnow::cli_test {

struct CliResult {
  int code = -1;
  std::string out;  // stdout + stderr
};

// Runs `minnow ARGS` (MINNOW_CLI_PATH) and captures its output and exit code.
inline CliResult run_cli(const std::string& args) {
  const std::string cmd = std::string(MINNOW_CLI_PATH) + " " + args + " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// A user error: exit code 2 and exactly one line mentioning `needle`.
inline void expect_user_error(const std::string& args, const std::string& needle) {
  const CliResult r = run_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.out;
}

// Big-endian u32, as IDX headers store their magic and dimensions.
inline void write_be32(std::ofstream& f, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24),
                              static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  f.write(reinterpret_cast<const char*>(b), 4);
}

// The headers of an IDX image file (n images of rows x cols bytes) and its label file.
inline void write_idx_headers(std::ofstream& images, std::ofstream& labels, uint32_t n,
                              uint32_t rows, uint32_t cols) {
  write_be32(images, 0x00000803);
  write_be32(images, n);
  write_be32(images, rows);
  write_be32(images, cols);
  write_be32(labels, 0x00000801);
  write_be32(labels, n);
}

// A test suite's scratch directory, for suites that build their inputs once: the derived
// suite's SetUpTestSuite calls make_dir(tag) before writing into it. `Suite` is the deriving
// class, so that every suite has a directory of its own.
template <class Suite>
class ScratchSuite : public ::testing::Test {
 protected:
  static void make_dir(const std::string& tag) {
    dir_ = std::filesystem::temp_directory_path() /
           ("minnow_cli_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static std::string path(const std::string& name) { return (dir_ / name).string(); }
  static std::string data() { return path("data"); }
  static nlohmann::json report(const std::string& name) {
    std::ifstream f(path(name));
    return nlohmann::json::parse(f);
  }
  static inline std::filesystem::path dir_;
};

// A tiny MNIST-format dataset in `dir` (train-* and t10k-* IDX files): 12x12 images, class k
// (of 4) has a bright row at 3k+1 over dark noise.
inline void write_row_dataset(const std::filesystem::path& dir, int n_train, int n_test,
                              uint64_t seed) {
  std::filesystem::create_directories(dir);
  Rng rng(seed);
  for (auto [prefix, n] : {std::pair{"train", n_train}, std::pair{"t10k", n_test}}) {
    std::ofstream img(dir / (std::string(prefix) + "-images-idx3-ubyte"), std::ios::binary);
    std::ofstream lab(dir / (std::string(prefix) + "-labels-idx1-ubyte"), std::ios::binary);
    write_idx_headers(img, lab, static_cast<uint32_t>(n), 12, 12);
    for (int i = 0; i < n; ++i) {
      const int k = static_cast<int>(rng.below(4));
      for (int p = 0; p < 144; ++p) {
        const bool bright = p / 12 == 3 * k + 1;
        img.put(static_cast<char>(bright ? 200 + rng.below(50) : rng.below(40)));
      }
      lab.put(static_cast<char>(k));
    }
  }
}

}  // namespace minnow::cli_test
