#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <functional>

#include "io/atomic_file.h"
#include "io_test_util.h"
#include "minnow/error.h"

namespace minnow::io {
namespace {

using namespace testing;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

using WriteFn = void (*)(const std::string&, const std::string&);

// Both routes: the anonymous O_TMPFILE one and the named-temporary fallback.
class AtomicWrite : public ::testing::TestWithParam<WriteFn> {};

TEST_P(AtomicWrite, WritesAndReplacesLeavingNoTemporaryFile) {
  WriteFn write = GetParam();
  TempDir dir;
  std::string path = dir.file("out.bin");
  write(path, "first");
  EXPECT_EQ(read_file(path), "first");
  std::string big(3 << 20, 'x');
  big[12345] = '\0';
  write(path, big);
  EXPECT_EQ(read_file(path), big);
  write(path, "");
  EXPECT_EQ(read_file(path), "");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out.bin"});
}

TEST_P(AtomicWrite, ErrorsLeaveNothingBehind) {
  WriteFn write = GetParam();
  TempDir dir;
  std::string missing_dir = dir.file("no/such/dir/out.bin");
  std::string msg = error_of([&] { write(missing_dir, "data"); });
  EXPECT_NE(msg.find("cannot write '" + missing_dir + "'"), std::string::npos) << msg;
  ASSERT_EQ(mkdir(dir.file("sub").c_str(), 0755), 0);
  msg = error_of([&] { write(dir.file("sub"), "data"); });  // the target is a directory
  EXPECT_NE(msg.find("cannot write"), std::string::npos) << msg;
  EXPECT_EQ(dir.list(), std::vector<std::string>{"sub"});
}

// A write that fails midway (here: the file size limit, as a full disk would) leaves the old
// file exactly as it was and no temporary file.
TEST_P(AtomicWrite, FailedWriteKeepsTheOldFile) {
  WriteFn write = GetParam();
  TempDir dir;
  std::string path = dir.file("model.mnw");
  write(path, "old contents");
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore = {}, old_action;
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg = error_of([&] { write(path, std::string(1 << 20, 'n')); });
  setrlimit(RLIMIT_FSIZE, &saved);
  sigaction(SIGXFSZ, &old_action, nullptr);
  EXPECT_NE(msg.find("cannot write '" + path + "': write failed"), std::string::npos) << msg;
  EXPECT_EQ(read_file(path), "old contents");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.mnw"});
}

INSTANTIATE_TEST_SUITE_P(Routes, AtomicWrite,
                         ::testing::Values(&write_file_atomic,
                                           &detail::write_file_atomic_named_temp));

TEST(AtomicFile, RelativePathWithoutDirectory) {
  TempDir dir;
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(chdir(dir.path().c_str()), 0);
  write_file_atomic("plain.txt", "abc");
  std::string back = read_file("plain.txt");
  ASSERT_EQ(chdir(cwd), 0);
  EXPECT_EQ(back, "abc");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"plain.txt"});
}

TEST(AtomicFile, BadPathsAreErrors) {
  EXPECT_NE(error_of([] { write_file_atomic("", "x"); }).find("not a file name"),
            std::string::npos);
  EXPECT_NE(error_of([] { write_file_atomic("/tmp/", "x"); }).find("not a file name"),
            std::string::npos);
}

TEST(AtomicFile, ReadsFilesThatReportSizeZero) {
  // /proc files have st_size 0 but content: read_file reads to end of file.
  std::string status = read_file("/proc/self/status");
  EXPECT_NE(status.find("Name:"), std::string::npos);
}

TEST(AtomicFile, ReadErrorsNameTheFile) {
  TempDir dir;
  std::string missing = dir.file("missing.bin");
  EXPECT_NE(error_of([&] { read_file(missing); }).find("cannot read '" + missing + "'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_file(dir.path()); }).find("is a directory"), std::string::npos);
}

}  // namespace
}  // namespace minnow::io
