// Whole-file reads and crash-safe writes (DESIGN.md §7: bad input never writes a half file).
#pragma once

#include <string>

namespace minnow::io {

// Writes `bytes` to `path` so that `path` afterwards holds either its old contents or all of
// `bytes`, never a mix, even if the process dies midway: the data goes to a temporary file in the
// same directory, is fsync'ed, and is renamed over `path`. Throws minnow::Error naming `path` on
// failure, leaving the old file untouched and no temporary file behind.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Reads a whole file. Throws minnow::Error naming the file if it is missing, a directory or
// unreadable.
std::string read_file(const std::string& path);

namespace detail {
// The route write_file_atomic falls back to where O_TMPFILE or /proc is unavailable: a named
// temporary file, which a killed process may leave behind (never the target half-written).
// Exposed so that tests exercise it on machines that have O_TMPFILE.
void write_file_atomic_named_temp(const std::string& path, const std::string& bytes);
}  // namespace detail

}  // namespace minnow::io
