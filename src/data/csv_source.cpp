#include "data/csv_source.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "io/atomic_file.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

struct Row {
  std::vector<std::string> fields;
  int64_t line = 0;  // 1-based line where the row starts
};

std::vector<Row> parse_rows(const std::string& path, const std::string& text) {
  std::vector<Row> rows;
  Row row;
  std::string field;
  bool in_quotes = false, quoted = false, any = false;
  int64_t line = 1;
  row.line = 1;
  auto end_field = [&] {
    row.fields.push_back(std::move(field));
    field.clear();
    quoted = false;
  };
  auto end_row = [&] {
    end_field();
    // A line that is empty (or only whitespace) is skipped, not a row with one empty field.
    const bool blank = row.fields.size() == 1 && !any &&
                       row.fields[0].find_first_not_of(" \t") == std::string::npos;
    if (!blank) rows.push_back(std::move(row));
    row = Row{};
    row.line = line;
    any = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
    } else if (c == '"' && field.find_first_not_of(" \t") == std::string::npos && !quoted) {
      in_quotes = quoted = any = true;
      field.clear();
    } else if (c == ',') {
      any = true;
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++line;
      end_row();
    } else {
      field.push_back(c);
    }
  }
  if (in_quotes) {
    throw Error("CSV file '" + path + "': the quote opened in the row at line " +
                std::to_string(row.line) + " is never closed");
  }
  if (!field.empty() || !row.fields.empty() || any) end_row();
  return rows;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool parse_number(const std::string& raw, float* out) {
  const std::string s = trim(raw);
  if (s.empty()) return false;
  double v = 0;
  const char* first = s.data() + (s[0] == '+' ? 1 : 0);
  auto [ptr, ec] = std::from_chars(first, s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return false;
  *out = static_cast<float>(v);
  return std::isfinite(*out);
}

bool is_class_index(const std::string& raw) {
  const std::string s = trim(raw);
  return !s.empty() && s.size() <= 9 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

CsvTable read_csv_table(const std::string& path, const std::string& label_column) {
  std::vector<Row> rows = parse_rows(path, io::read_file(path));
  auto fail = [&](int64_t line, const std::string& msg) -> Error {
    return Error("CSV file '" + path + "'" + (line > 0 ? ", line " + std::to_string(line) : "") +
                 ": " + msg);
  };
  if (rows.empty()) throw fail(0, "holds no rows; expected numeric feature columns and a label");
  const size_t cols = rows[0].fields.size();
  if (cols < 2) {
    throw fail(rows[0].line, "has " + std::to_string(cols) +
                                 " column; expected at least one feature column and a label");
  }
  for (const Row& r : rows) {
    if (r.fields.size() != cols) {
      throw fail(r.line, std::to_string(r.fields.size()) + " fields, but the first row has " +
                             std::to_string(cols));
    }
  }

  // The label column by name needs the header, which needs to know the label column: decide the
  // header first from all columns but a numeric label spec / the last one, then resolve.
  size_t label = cols - 1;
  bool by_name = false;
  if (!label_column.empty()) {
    if (is_class_index(label_column)) {
      label = std::stoul(label_column);
      if (label >= cols) {
        throw fail(
            0, "label column " + label_column + " is outside [0, " + std::to_string(cols) + ")");
      }
    } else {
      by_name = true;
    }
  }
  CsvTable t;
  t.path = path;
  size_t first_data = 0;
  bool header = by_name;
  if (!header) {
    float v;
    for (size_t c = 0; c < cols && !header; ++c) {
      if (c != label && !parse_number(rows[0].fields[c], &v)) header = true;
    }
  }
  if (header) {
    for (const std::string& f : rows[0].fields) t.header.push_back(trim(f));
    first_data = 1;
    if (by_name) {
      auto it = std::find(t.header.begin(), t.header.end(), label_column);
      if (it == t.header.end()) {
        std::string names;
        for (const std::string& h : t.header) names += (names.empty() ? "" : ", ") + h;
        throw fail(rows[0].line,
                   "no column named '" + label_column + "' in the header (" + names + ")");
      }
      label = static_cast<size_t>(it - t.header.begin());
    }
  }
  t.features = static_cast<int64_t>(cols) - 1;
  t.rows = static_cast<int64_t>(rows.size() - first_data);
  if (t.rows == 0) throw fail(0, "has a header but no data rows");
  t.x.reserve(static_cast<size_t>(t.rows * t.features));
  t.labels.reserve(static_cast<size_t>(t.rows));
  for (size_t r = first_data; r < rows.size(); ++r) {
    for (size_t c = 0; c < cols; ++c) {
      const std::string& f = rows[r].fields[c];
      if (c == label) {
        t.labels.push_back(trim(f));
        if (t.labels.back().empty()) throw fail(rows[r].line, "the label field is empty");
        continue;
      }
      float v = 0;
      if (!parse_number(f, &v)) {
        throw fail(rows[r].line, "column " + std::to_string(c + 1) +
                                     (header ? " ('" + t.header[c] + "')" : std::string()) +
                                     " holds '" + f + "', expected a finite number");
      }
      t.x.push_back(v);
    }
  }
  return t;
}

std::vector<Dataset> csv_datasets(const std::vector<CsvTable>& tables) {
  bool numeric = true;
  std::map<std::string, int64_t> names;
  for (const CsvTable& t : tables) {
    if (t.features != tables[0].features) {
      throw Error("CSV file '" + t.path + "' has " + std::to_string(t.features) +
                  " feature columns but '" + tables[0].path + "' has " +
                  std::to_string(tables[0].features));
    }
    for (const std::string& l : t.labels) {
      numeric = numeric && is_class_index(l);
      names.emplace(l, 0);
    }
  }
  std::vector<std::string> class_names;
  for (auto& [name, index] : names) {
    index = static_cast<int64_t>(class_names.size());
    class_names.push_back(name);
  }
  int64_t num_classes = numeric ? 0 : static_cast<int64_t>(class_names.size());
  std::vector<Dataset> out;
  for (const CsvTable& t : tables) {
    Dataset d;
    d.x = Tensor(DType::kF32, {t.rows, t.features});
    std::copy(t.x.begin(), t.x.end(), d.x.f32());
    d.y = Tensor(DType::kI64, {t.rows});
    for (int64_t i = 0; i < t.rows; ++i) {
      const std::string& l = t.labels[static_cast<size_t>(i)];
      const int64_t y = numeric ? std::stoll(l) : names.at(l);
      d.y.data<int64_t>()[i] = y;
      if (numeric) num_classes = std::max(num_classes, y + 1);
    }
    out.push_back(std::move(d));
  }
  for (Dataset& d : out) {
    d.num_classes = num_classes;
    if (!numeric) d.class_names = class_names;
  }
  return out;
}

}  // namespace minnow::data
