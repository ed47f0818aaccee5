#include "data/image_decode.h"

#include <cstring>

#include "io/atomic_file.h"
#include "minnow/error.h"

// The single translation unit holding stb's implementations. PNG and JPEG only: less untrusted
// parsing code. Third-party code: its warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS (1 << 14)
#include <stb/stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#include <stb/stb_image_resize.h>
#pragma GCC diagnostic pop

namespace minnow::data {
namespace {

static_assert(kMaxImageSide == STBI_MAX_DIMENSIONS);

std::string read_bytes(const std::string& path) {
  std::string bytes = io::read_file(path);
  if (bytes.size() > (size_t{1} << 30)) {
    throw Error("image file '" + path + "' is larger than 1 GiB");
  }
  return bytes;
}

const stbi_uc* as_uc(const std::string& s) { return reinterpret_cast<const stbi_uc*>(s.data()); }

[[noreturn]] void fail_decode(const std::string& path) {
  const char* why = stbi_failure_reason();
  throw Error("image file '" + path + "' cannot be decoded as PNG or JPEG (" +
              (why ? why : "unknown reason") + ")");
}

}  // namespace

ImageInfo read_image_info(const std::string& path) {
  const std::string bytes = read_bytes(path);
  ImageInfo info;
  if (!stbi_info_from_memory(as_uc(bytes), static_cast<int>(bytes.size()), &info.width,
                             &info.height, &info.channels)) {
    fail_decode(path);
  }
  if (info.width > kMaxImageSide || info.height > kMaxImageSide) {
    throw Error("image file '" + path + "' is " + std::to_string(info.width) + "x" +
                std::to_string(info.height) + ", larger than the limit " +
                std::to_string(kMaxImageSide) + " per side");
  }
  return info;
}

std::vector<uint8_t> decode_image(const std::string& path, int channels, int out_height,
                                  int out_width, ImageInfo* info_out) {
  if (channels != 1 && channels != 3) {
    throw Error("decode_image: channels must be 1 or 3, got " + std::to_string(channels));
  }
  const std::string bytes = read_bytes(path);
  ImageInfo info;
  stbi_uc* px = stbi_load_from_memory(as_uc(bytes), static_cast<int>(bytes.size()), &info.width,
                                      &info.height, &info.channels, channels);
  if (!px) fail_decode(path);
  if (info_out) *info_out = info;
  const size_t in_size = static_cast<size_t>(info.width) * info.height * channels;
  std::vector<uint8_t> out;
  if (out_height <= 0 || out_width <= 0 || (out_height == info.height && out_width == info.width)) {
    out.assign(px, px + in_size);
  } else {
    out.resize(static_cast<size_t>(out_width) * out_height * channels);
    const int ok = stbir_resize_uint8(px, info.width, info.height, 0, out.data(), out_width,
                                      out_height, 0, channels);
    if (!ok) {
      stbi_image_free(px);
      throw Error("image file '" + path + "' could not be resized to " +
                  std::to_string(out_height) + "x" + std::to_string(out_width));
    }
  }
  stbi_image_free(px);
  return out;
}

}  // namespace minnow::data
