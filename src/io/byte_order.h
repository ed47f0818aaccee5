// Little-endian encoding helpers shared by the file formats (.mnw and .npy are little-endian on
// disk whatever the host is, so a file written on x86 loads on a big-endian board and back).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace minnow::io {

inline constexpr bool kHostIsLittleEndian = std::endian::native == std::endian::little;

template <class T>
T byteswap_int(T v) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  for (size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
  std::memcpy(&v, b, sizeof(T));
  return v;
}

// Reads an unsigned little-endian integer from unaligned memory.
template <class T>
T load_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return kHostIsLittleEndian ? v : byteswap_int(v);
}

template <class T>
void append_le(std::string& out, T v) {
  if (!kHostIsLittleEndian) v = byteswap_int(v);
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

template <class T>
void store_le(char* p, T v) {
  if (!kHostIsLittleEndian) v = byteswap_int(v);
  std::memcpy(p, &v, sizeof(T));
}

// Copies `count` elements of `elem_size` bytes between host order and little-endian (the same
// operation both ways). A plain memcpy on little-endian hosts.
inline void copy_le_elements(void* dst, const void* src, size_t count, size_t elem_size) {
  std::memcpy(dst, src, count * elem_size);
  if (kHostIsLittleEndian || elem_size == 1) return;
  auto* d = static_cast<unsigned char*>(dst);
  for (size_t i = 0; i < count; ++i, d += elem_size) {
    for (size_t k = 0; k < elem_size / 2; ++k) std::swap(d[k], d[elem_size - 1 - k]);
  }
}

}  // namespace minnow::io
