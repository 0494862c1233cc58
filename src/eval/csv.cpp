#include "eval/csv.h"

#include <algorithm>

#include "util/error.h"

namespace lorafit::eval {

size_t CsvTable::column(std::string_view name) const {
  const auto it = std::find(header.begin(), header.end(), name);
  if (it == header.end())
    throw Error("{} line 1: no column '{}' in the header ({}); the file needs it", what, name, fmt::join(header, ","));
  return static_cast<size_t>(it - header.begin());
}

bool CsvTable::has(std::string_view name) const {
  return std::find(header.begin(), header.end(), name) != header.end();
}

CsvTable parse_csv(std::string_view s, const std::string& what) {
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);  // UTF-8 BOM
  CsvTable t;
  t.what = what;
  std::vector<CsvRow> records;
  CsvRow cur;
  std::string field;
  int line = 1;
  cur.line = 1;
  bool quoted = false, any = false;
  auto end_field = [&] {
    cur.cells.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    end_field();
    if (!(cur.cells.size() == 1 && cur.cells[0].empty())) records.push_back(std::move(cur));  // skip blank lines
    cur = CsvRow{};
    cur.line = line;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    any = true;
    if (quoted) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      ++line;
      end_record();
      any = false;
    } else {
      field += c;
    }
  }
  if (quoted) throw Error("{} line {}: a quoted field is never closed; close it with \"", what, cur.line);
  if (any) end_record();
  if (records.empty()) throw Error("{}: the file is empty; it needs a header row", what);
  t.header = std::move(records.front().cells);
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].cells.size() != t.header.size())
      throw Error("{} line {}: {} fields, but the header has {}; quote fields that contain commas", what,
                  records[r].line, records[r].cells.size(), t.header.size());
    t.rows.push_back(std::move(records[r]));
  }
  return t;
}

}  // namespace lorafit::eval
