#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <system_error>

#include "minnow/error.h"

namespace minnow::io {
namespace {

std::string sys_message(int err) { return std::error_code(err, std::generic_category()).message(); }

[[noreturn]] void fail_write(const std::string& path, const std::string& what, int err) {
  throw Error("cannot write '" + path + "': " + what + (err ? ": " + sys_message(err) : ""));
}

// Closes on scope exit so that every error path releases the descriptor.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Returns the errno of a failed close (0 on success): on some file systems (NFS) close is
  // where a delayed write error is reported.
  int close() {
    int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// Returns 0 or the errno of the failed write/fsync.
int write_all_and_sync(int fd, const std::string& bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    size_t chunk = left < (size_t{1} << 30) ? left : (size_t{1} << 30);
    ssize_t n = ::write(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    p += n;
    left -= static_cast<size_t>(n);
  }
  return ::fsync(fd) == 0 ? 0 : errno;
}

struct PathParts {
  std::string dir;  // "." when the path has no directory part
  std::string base;
};

PathParts split_path(const std::string& path) {
  if (path.empty() || path.back() == '/') fail_write(path, "not a file name", 0);
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// A fresh hidden name next to the target. Names are unique per process by a counter and across
// processes by the pid; O_EXCL / EEXIST retries cover stale leftovers.
std::string temp_name(const PathParts& parts) {
  static std::atomic<uint64_t> counter{0};
  uint64_t tick =
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::string base = parts.base.substr(0, 120);  // stays under NAME_MAX with the suffix
  std::string name = "." + base + ".tmp-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter.fetch_add(1)) + "-" + std::to_string(tick % 1000000);
  return parts.dir == "/" ? "/" + name : parts.dir + "/" + name;
}

void sync_directory(const std::string& dir) {
  // Makes the rename itself durable. Some file systems refuse fsync on directories; the data is
  // already safe and the rename atomic, so a failure here is not worth failing the write for.
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void rename_into_place(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail_write(path, "cannot rename the temporary file into place", err);
  }
}

// Writes through a named temporary file: the portable route.
void write_via_named_temp(const std::string& path, const PathParts& parts,
                          const std::string& bytes) {
  std::string tmp;
  int raw_fd = -1;
  for (int attempt = 0; attempt < 100 && raw_fd < 0; ++attempt) {
    tmp = temp_name(parts);
    raw_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (raw_fd < 0 && errno != EEXIST) {
      fail_write(path, "cannot create a file in directory '" + parts.dir + "'", errno);
    }
  }
  if (raw_fd < 0) fail_write(path, "no free temporary file name", EEXIST);
  FileDescriptor fd(raw_fd);
  int err = write_all_and_sync(fd.get(), bytes);
  int close_err = fd.close();
  if (err == 0) err = close_err;
  if (err != 0) {
    ::unlink(tmp.c_str());
    fail_write(path, "write failed", err);
  }
  rename_into_place(tmp, path);
  sync_directory(parts.dir);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  PathParts parts = split_path(path);
  // Preferred route: an anonymous file (O_TMPFILE) that only gets a name once it is complete,
  // so a process killed while writing leaves no temporary file behind at all.
  int raw_fd = ::open(parts.dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
  if (raw_fd < 0) {
    int err = errno;
    // Kernels or file systems without O_TMPFILE report one of these.
    if (err == EOPNOTSUPP || err == EISDIR || err == EINVAL) {
      write_via_named_temp(path, parts, bytes);
      return;
    }
    fail_write(path, "cannot create a file in directory '" + parts.dir + "'", err);
  }
  FileDescriptor fd(raw_fd);
  if (int err = write_all_and_sync(fd.get(), bytes)) fail_write(path, "write failed", err);
  // linkat cannot replace an existing file, so the complete file gets a temporary name first and
  // is then renamed over the target.
  std::string proc_path = "/proc/self/fd/" + std::to_string(fd.get());
  std::string tmp;
  bool linked = false;
  for (int attempt = 0; attempt < 100 && !linked; ++attempt) {
    tmp = temp_name(parts);
    if (::linkat(AT_FDCWD, proc_path.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      linked = true;
    } else if (errno != EEXIST) {
      break;
    }
  }
  if (!linked) {
    // No /proc (chroot, some containers): write again through a named temporary file.
    fd.close();
    write_via_named_temp(path, parts, bytes);
    return;
  }
  if (int err = fd.close()) {
    ::unlink(tmp.c_str());
    fail_write(path, "write failed", err);
  }
  rename_into_place(tmp, path);
  sync_directory(parts.dir);
}

namespace detail {
void write_file_atomic_named_temp(const std::string& path, const std::string& bytes) {
  write_via_named_temp(path, split_path(path), bytes);
}
}  // namespace detail

std::string read_file(const std::string& path) {
  int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw_fd < 0) throw Error("cannot read '" + path + "': " + sys_message(errno));
  FileDescriptor fd(raw_fd);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw Error("cannot read '" + path + "': " + sys_message(errno));
  if (S_ISDIR(st.st_mode)) throw Error("cannot read '" + path + "': it is a directory");
  // Reads straight into the buffer sized by st_size, then on to end of file: pipes and /proc
  // files report 0, and a file may grow while it is read.
  std::string out(S_ISREG(st.st_mode) && st.st_size > 0 ? static_cast<size_t>(st.st_size) : 0,
                  '\0');
  size_t filled = 0;
  for (;;) {
    if (filled == out.size()) out.resize(out.size() + (size_t{1} << 16));
    ssize_t n = ::read(fd.get(), out.data() + filled, out.size() - filled);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot read '" + path + "': " + sys_message(errno));
    }
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  out.resize(filled);
  return out;
}

}  // namespace minnow::io
