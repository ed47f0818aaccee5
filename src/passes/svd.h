// Thin singular value decomposition of a small dense matrix in double precision (one-sided
// Jacobi), for low-rank factorization of layer weights. Sizes are those of small-network layers
// (hundreds to a few thousand per side); no LAPACK needed.
#pragma once

#include <cstdint>
#include <vector>

namespace minnow {

struct Svd {
  int64_t rows = 0, cols = 0, k = 0;  // k = min(rows, cols)
  std::vector<double> u;              // rows x k, row-major, orthonormal columns
  std::vector<double> s;              // k singular values, descending, >= 0
  std::vector<double> vt;             // k x cols, row-major, orthonormal rows
};

// a = u * diag(s) * vt for the row-major rows x cols matrix `a`. Throws minnow::Error for
// non-finite entries or a size that does not match.
Svd svd(const std::vector<double>& a, int64_t rows, int64_t cols);

}  // namespace minnow
