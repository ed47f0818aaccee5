#include "passes/svd.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "minnow/error.h"

namespace minnow {
namespace {

// One-sided Jacobi (Hestenes) on an m x n matrix with n <= m, stored column by column:
// rotations of column pairs until all columns are mutually orthogonal. Then the column norms are
// the singular values, the normalized columns U, and the accumulated rotations V. Accurate to
// working precision even for small singular values (unlike an eigen-decomposition of A^T A).
void jacobi(std::vector<double>& g, std::vector<double>& v, int64_t m, int64_t n) {
  const double eps = 1e-15;
  const int max_sweeps = 60;
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    bool rotated = false;
    for (int64_t p = 0; p + 1 < n; ++p) {
      double* gp = g.data() + p * m;
      for (int64_t q = p + 1; q < n; ++q) {
        double* gq = g.data() + q * m;
        double alpha = 0, beta = 0, gamma = 0;
        for (int64_t i = 0; i < m; ++i) {
          alpha += gp[i] * gp[i];
          beta += gq[i] * gq[i];
          gamma += gp[i] * gq[i];
        }
        if (gamma == 0 || std::fabs(gamma) <= eps * std::sqrt(alpha * beta)) continue;
        rotated = true;
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
        const double c = 1 / std::sqrt(1 + t * t), s = c * t;
        for (int64_t i = 0; i < m; ++i) {
          const double a = gp[i], b = gq[i];
          gp[i] = c * a - s * b;
          gq[i] = s * a + c * b;
        }
        double* vp = v.data() + p * n;
        double* vq = v.data() + q * n;
        for (int64_t i = 0; i < n; ++i) {
          const double a = vp[i], b = vq[i];
          vp[i] = c * a - s * b;
          vq[i] = s * a + c * b;
        }
      }
    }
    if (!rotated) return;
  }
}

}  // namespace

Svd svd(const std::vector<double>& a, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0 || static_cast<int64_t>(a.size()) != rows * cols) {
    throw Error("svd: matrix of " + std::to_string(a.size()) + " values is not " +
                std::to_string(rows) + " x " + std::to_string(cols));
  }
  for (double x : a) {
    if (!std::isfinite(x)) throw Error("svd: the matrix has a non-finite entry");
  }
  // Work on B = A (m = rows) or B = A^T (m = cols), whichever has fewer columns: the cost is
  // quadratic in the column count.
  const bool transposed = cols > rows;
  const int64_t m = transposed ? cols : rows, n = transposed ? rows : cols;
  std::vector<double> g(static_cast<size_t>(m * n));  // column j of B at g[j*m]
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const double x = a[r * cols + c];
      if (transposed) {
        g[r * m + c] = x;  // B = A^T: column r of B is row r of A
      } else {
        g[c * m + r] = x;
      }
    }
  }
  std::vector<double> v(static_cast<size_t>(n * n), 0.0);  // column j of V at v[j*n]
  for (int64_t j = 0; j < n; ++j) v[j * n + j] = 1;
  jacobi(g, v, m, n);

  std::vector<double> norms(n);
  for (int64_t j = 0; j < n; ++j) {
    double s = 0;
    for (int64_t i = 0; i < m; ++i) s += g[j * m + i] * g[j * m + i];
    norms[j] = std::sqrt(s);
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return norms[x] > norms[y]; });
  // B = Ub S Vb^T with Ub = normalized columns of g, Vb = v. For A = B^T: U = Vb, V = Ub.
  Svd out;
  out.rows = rows;
  out.cols = cols;
  out.k = n;
  out.s.resize(n);
  out.u.assign(static_cast<size_t>(rows * n), 0.0);
  out.vt.assign(static_cast<size_t>(n * cols), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t j = order[k];
    const double s = norms[j];
    out.s[k] = s;
    // A zero singular value leaves its column of Ub zero: it contributes nothing to A.
    const double inv = s > 0 ? 1 / s : 0;
    for (int64_t i = 0; i < m; ++i) {
      const double ub = g[j * m + i] * inv;
      if (transposed) {
        out.vt[k * cols + i] = ub;
      } else {
        out.u[i * n + k] = ub;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const double vb = v[j * n + i];
      if (transposed) {
        out.u[i * n + k] = vb;
      } else {
        out.vt[k * cols + i] = vb;
      }
    }
  }
  return out;
}

}  // namespace minnow
