// Shared by the end-to-end CLI tests: running the minnow binary, the one-line user-error
// contract (exit code 2, one line naming the fault), and IDX file headers for test datasets.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

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

}  // namespace minnow::cli_test
