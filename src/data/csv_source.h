// CSV files: one sample per row, numeric feature columns and one label column.
//
// Format: comma-separated, RFC 4180 quoting ("a,b" and "" inside quotes), LF or CRLF line ends,
// blank lines skipped. The first row is a header when any of its feature fields is not a number
// (a header is required to name the label column). The label column is the last one unless
// `label_column` names it (by header name, or a 0-based index). Features become f32 [N, F].
// Labels: when every label in every file is a non-negative integer, it is the class index
// (num_classes = max + 1, no class names); otherwise the distinct label strings of all files,
// sorted byte-wise, are the class names and a label is its name's index.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace minnow::data {

struct CsvTable {
  std::string path;
  std::vector<std::string> header;  // empty when the file has no header row
  int64_t rows = 0, features = 0;
  std::vector<float> x;             // rows * features, row-major
  std::vector<std::string> labels;  // one per row
};

// Parses one file. Throws minnow::Error naming the file and line for: a missing or empty file,
// a row with a different field count, an unterminated quote, a feature field that is not a
// finite number, an unknown label column, or no feature column.
CsvTable read_csv_table(const std::string& path, const std::string& label_column);

// Datasets of tables that share one label mapping (see the header comment). Throws
// minnow::Error when the tables differ in feature count.
std::vector<Dataset> csv_datasets(const std::vector<CsvTable>& tables);

}  // namespace minnow::data
