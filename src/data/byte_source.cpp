#include "data/byte_source.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "minnow/error.h"

namespace minnow::data {

namespace {
constexpr size_t kChunk = size_t{1} << 18;  // compressed bytes per fread
}  // namespace

struct ByteSource::Inflater {
  z_stream zs{};
  std::vector<uint8_t> in = std::vector<uint8_t>(kChunk);
  bool initialized = false;
  bool member_done = false;  // the current gzip member has ended (Z_STREAM_END)
  ~Inflater() {
    if (initialized) inflateEnd(&zs);
  }
};

ByteSource::ByteSource(const std::string& path) : path_(path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail("is a directory, expected a file");
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) fail(std::string("cannot open: ") + std::strerror(errno));
  uint8_t magic[2] = {0, 0};
  size_t got = std::fread(magic, 1, 2, file_);
  if (std::ferror(file_)) fail(std::string("read error: ") + std::strerror(errno));
  gzip_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (::fseeko(file_, 0, SEEK_END) != 0) fail("cannot seek (not a regular file?)");
  plain_left_ = static_cast<int64_t>(::ftello(file_));
  if (plain_left_ < 0 || ::fseeko(file_, 0, SEEK_SET) != 0) {
    fail("cannot seek (not a regular file?)");
  }
  file_size_ = plain_left_;
  if (gzip_) {
    z_ = std::make_unique<Inflater>();
    // 16 + MAX_WBITS: accept the gzip wrapper only (raw zlib streams are not gzip files).
    if (inflateInit2(&z_->zs, 16 + MAX_WBITS) != Z_OK) fail("cannot initialize zlib");
    z_->initialized = true;
  }
}

ByteSource::~ByteSource() {
  if (file_) std::fclose(file_);
}

void ByteSource::fail(const std::string& what) const {
  throw Error("file '" + path_ + "': " + what);
}

int64_t ByteSource::remaining_hint() const { return gzip_ ? -1 : plain_left_; }

size_t ByteSource::read(void* dst, size_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  return gzip_ ? read_gzip(out, n) : read_plain(out, n);
}

size_t ByteSource::read_plain(uint8_t* dst, size_t n) {
  size_t got = std::fread(dst, 1, n, file_);
  if (got < n && std::ferror(file_)) fail(std::string("read error: ") + std::strerror(errno));
  plain_left_ -= static_cast<int64_t>(got);
  return got;
}

size_t ByteSource::refill() {
  z_stream& zs = z_->zs;
  // Keep unconsumed input: move it to the front before appending.
  if (zs.avail_in > 0 && zs.next_in != z_->in.data()) {
    std::memmove(z_->in.data(), zs.next_in, zs.avail_in);
  }
  size_t room = z_->in.size() - zs.avail_in;
  size_t got = std::fread(z_->in.data() + zs.avail_in, 1, room, file_);
  if (got < room && std::ferror(file_)) fail(std::string("read error: ") + std::strerror(errno));
  zs.next_in = z_->in.data();
  zs.avail_in += static_cast<uInt>(got);
  return got;
}

size_t ByteSource::read_gzip(uint8_t* dst, size_t n) {
  z_stream& zs = z_->zs;
  size_t done = 0;
  while (done < n) {
    if (z_->member_done) {
      // Another member may follow (concatenated .gz files); anything else is garbage.
      if (zs.avail_in < 2) refill();
      if (zs.avail_in == 0) break;  // clean end of the data
      if (zs.avail_in < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b) {
        fail("trailing garbage after the gzip stream");
      }
      if (inflateReset(&zs) != Z_OK) fail("cannot reset zlib");
      z_->member_done = false;
    }
    if (zs.avail_in == 0 && refill() == 0)
      fail("gzip stream is truncated (unexpected end of file)");
    size_t want = std::min<size_t>(n - done, UINT_MAX);
    zs.next_out = dst + done;
    zs.avail_out = static_cast<uInt>(want);
    int rc = inflate(&zs, Z_NO_FLUSH);
    done += want - zs.avail_out;
    if (rc == Z_STREAM_END) {
      z_->member_done = true;
    } else if (rc == Z_BUF_ERROR) {
      // No progress was possible: zlib needs more input; the refill above reports EOF.
      if (zs.avail_in > 0) fail("corrupt gzip data");
    } else if (rc != Z_OK) {
      fail(std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "zlib error") + ")");
    }
  }
  return done;
}

}  // namespace minnow::data
