// PNG/JPEG decoding (Debian libstb-dev's stb_image) and resizing (stb_image_resize).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace minnow::data {

// Largest accepted width or height: bounds memory for untrusted image files.
inline constexpr int kMaxImageSide = 1 << 14;

struct ImageInfo {
  int width = 0, height = 0, channels = 0;  // channels as stored: 1 grey, 2 grey+alpha, 3, 4
};

// Reads the header of the PNG/JPEG file at `path` (from its bytes, not its name). Throws
// minnow::Error naming the file when it is unreadable or not a decodable PNG/JPEG.
ImageInfo read_image_info(const std::string& path);

// Decodes `path` into `channels` (1 grey or 3 RGB; alpha is dropped) interleaved u8 pixels
// [height][width][channels], resized with a Mitchell filter to out_height x out_width when those
// are > 0 and differ from the stored size. Throws minnow::Error naming the file.
std::vector<uint8_t> decode_image(const std::string& path, int channels, int out_height,
                                  int out_width, ImageInfo* info = nullptr);

}  // namespace minnow::data
