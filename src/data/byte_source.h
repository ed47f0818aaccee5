// ByteSource: sequential reads from a file that may be gzip-compressed.
//
// Compression is detected from the gzip magic bytes, never from the file name, so a renamed
// file still reads correctly. Concatenated gzip members are read as one stream (what gzip -d
// does); anything else after the last member is an error, as is a stream that ends early.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace minnow::data {

class ByteSource {
 public:
  // Throws minnow::Error naming `path` when the file cannot be opened.
  explicit ByteSource(const std::string& path);
  ~ByteSource();
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  // Reads up to `n` bytes; returns fewer only at the end of the (decompressed) data.
  // Throws minnow::Error naming the file for read errors and corrupt or truncated gzip data.
  size_t read(void* dst, size_t n);

  bool gzip() const { return gzip_; }
  const std::string& path() const { return path_; }
  // Bytes left in an uncompressed file (known without reading it); -1 for gzip.
  int64_t remaining_hint() const;
  // Size of the file on disk (compressed size for gzip).
  int64_t file_size() const { return file_size_; }

 private:
  size_t read_plain(uint8_t* dst, size_t n);
  size_t read_gzip(uint8_t* dst, size_t n);
  size_t refill();  // more compressed input; returns bytes added (0 at end of file)
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  std::FILE* file_ = nullptr;
  bool gzip_ = false;
  int64_t plain_left_ = 0;
  int64_t file_size_ = 0;
  // zlib state lives behind a pointer so that this header does not pull in zlib.h.
  struct Inflater;
  std::unique_ptr<Inflater> z_;
};

}  // namespace minnow::data
