#include "io/zlib_codec.h"

#include <zlib.h>

#include "minnow/error.h"

namespace minnow::io {

std::string zlib_deflate(const std::string& in, int level) {
  uLongf len = compressBound(in.size());
  std::string out(len, '\0');
  int rc = compress2(reinterpret_cast<Bytef*>(out.data()), &len,
                     reinterpret_cast<const Bytef*>(in.data()), in.size(), level);
  if (rc != Z_OK) throw Error("zlib compress2 failed with code " + std::to_string(rc));
  out.resize(len);
  return out;
}

std::optional<std::string> zlib_inflate(const unsigned char* in, size_t len, uint64_t inflated_len,
                                        std::string& out) {
  out.resize(inflated_len);
  uLongf dest_len = inflated_len;
  uLong src_len = len;
  int rc = uncompress2(reinterpret_cast<Bytef*>(out.data()), &dest_len, in, &src_len);
  if (rc == Z_OK && dest_len == inflated_len && src_len == len) return std::nullopt;
  out.clear();
  return "corrupt zlib data (" + std::string(rc == Z_OK ? "wrong length" : zError(rc)) + ")";
}

}  // namespace minnow::io
