#include "io/zlib_codec.h"

#include <zlib.h>

#include <algorithm>

#include "minnow/error.h"

namespace minnow::io {

std::string zlib_deflate(const std::string& in, int level, ZlibStrategy strategy,
                         const std::vector<size_t>& block_starts) {
  z_stream zs{};
  // compress2's parameters (32 KiB window, memLevel 8) with a chosen strategy.
  int rc =
      deflateInit2(&zs, level, Z_DEFLATED, MAX_WBITS, 8,
                   strategy == ZlibStrategy::kHuffmanOnly ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) throw Error("zlib deflateInit2 failed with code " + std::to_string(rc));
  std::vector<size_t> ends;
  for (size_t b : block_starts) {
    if (b > 0 && b < in.size() && (ends.empty() || b > ends.back())) ends.push_back(b);
  }
  ends.push_back(in.size());
  // deflateBound holds for one Z_FINISH call; each block flush may add a few bytes, and the
  // buffer grows should that not be enough.
  std::string out(deflateBound(&zs, in.size()) + 64 * ends.size(), '\0');
  // avail_in/avail_out are 32-bit: feed large buffers in pieces, as compress2 does.
  constexpr size_t kChunk = size_t{1} << 30;
  size_t at = 0;
  for (size_t k = 0; k < ends.size(); ++k) {
    for (;;) {
      if (zs.avail_in == 0 && at < ends[k]) {
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + at));
        zs.avail_in = static_cast<uInt>(std::min(ends[k] - at, kChunk));
        at += zs.avail_in;
      }
      if (zs.avail_out == 0) {
        const size_t used = zs.total_out;
        if (used == out.size()) out.resize(out.size() * 2);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + used);
        zs.avail_out = static_cast<uInt>(std::min(out.size() - used, kChunk));
      }
      const bool last_piece = at == ends[k];
      const int flush = !last_piece ? Z_NO_FLUSH : k + 1 == ends.size() ? Z_FINISH : Z_BLOCK;
      rc = deflate(&zs, flush);
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) break;
      // A block flush is complete once deflate leaves output space unused.
      if (flush == Z_BLOCK && zs.avail_in == 0 && zs.avail_out != 0) break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) break;
  }
  const size_t len = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw Error("zlib deflate failed with code " + std::to_string(rc));
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
