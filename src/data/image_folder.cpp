#include "data/image_folder.h"

#include "data/class_folder.h"
#include "data/image_decode.h"
#include "minnow/error.h"

namespace minnow::data {

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> ext = {".png", ".jpg", ".jpeg"};
  return ext;
}

Dataset read_image_folder(const std::string& dir, const ImageFolderOptions& o,
                          const std::vector<std::string>* known_classes) {
  if (o.resize_height < 0 || o.resize_width < 0 || (o.resize_height > 0) != (o.resize_width > 0) ||
      o.resize_height > kMaxImageSide || o.resize_width > kMaxImageSide) {
    throw Error("image resize " + std::to_string(o.resize_height) + "x" +
                std::to_string(o.resize_width) + " must be both 0 (keep) or both in [1, " +
                std::to_string(kMaxImageSide) + "]");
  }
  if (o.channels != 0 && o.channels != 1 && o.channels != 3) {
    throw Error("image channels must be 0 (detect), 1 or 3, got " + std::to_string(o.channels));
  }
  ClassFolder folder = list_class_folder(dir, image_extensions(), "PNG/JPEG images", known_classes);
  const auto n = static_cast<int64_t>(folder.paths.size());

  // Pass 1 reads only headers: the channel count and, without a resize, the common size.
  int channels = o.channels;
  int height = o.resize_height, width = o.resize_width;
  bool all_grey = true;
  std::string first_path;
  for (const std::string& path : folder.paths) {
    ImageInfo info = read_image_info(path);
    all_grey = all_grey && info.channels <= 2;
    if (o.resize_height > 0) continue;
    if (first_path.empty()) {
      first_path = path;
      height = info.height;
      width = info.width;
    } else if (info.height != height || info.width != width) {
      throw Error("image '" + path + "' is " + std::to_string(info.width) + "x" +
                  std::to_string(info.height) + " (WxH) but '" + first_path + "' is " +
                  std::to_string(width) + "x" + std::to_string(height) +
                  "; images must share one size, or give a resize (spec option ?resize=HxW)");
    }
  }
  if (channels == 0) channels = all_grey ? 1 : 3;

  Dataset d;
  d.x = Tensor(DType::kF32, {n, channels, height, width});
  d.y = Tensor(DType::kI64, {n});
  const int64_t plane = int64_t{height} * width;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<uint8_t> px = decode_image(folder.paths[i], channels, height, width);
    float* dst = d.x.f32() + i * channels * plane;
    // Interleaved HWC bytes to planar CHW floats; division gives the correctly rounded v/255.
    for (int c = 0; c < channels; ++c) {
      for (int64_t p = 0; p < plane; ++p) {
        dst[c * plane + p] = static_cast<float>(px[p * channels + c]) / 255.0f;
      }
    }
    d.y.data<int64_t>()[i] = folder.labels[i];
  }
  d.class_names = folder.class_names;
  d.num_classes = static_cast<int64_t>(folder.class_names.size());
  return d;
}

}  // namespace minnow::data
