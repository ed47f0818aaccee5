// Image folders: one sub-directory per class holding PNG/JPEG files (.png, .jpg, .jpeg in any
// case), decoded with stb_image into f32 [N, C, H, W] scaled to [0, 1].
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace minnow::data {

struct ImageFolderOptions {
  int resize_height = 0, resize_width = 0;  // > 0: resize every image to this; 0: keep sizes
  // 1 grey or 3 RGB; 0: 1 when every image is stored grey (with or without alpha), else 3.
  int channels = 0;
};

// Extensions image folders accept.
const std::vector<std::string>& image_extensions();

// Reads the class folder `dir` (see list_class_folder for `known_classes`). Classes are the
// sub-directory names in byte order; samples are listed class by class, by file name. Throws
// minnow::Error naming the folder, class or file for: no classes, an empty class, an unreadable
// or undecodable image, and images of different sizes without a resize.
Dataset read_image_folder(const std::string& dir, const ImageFolderOptions& options,
                          const std::vector<std::string>* known_classes = nullptr);

}  // namespace minnow::data
