// RFC 4180 CSV as the DISC-Law-Eval files use it (pandas.read_csv defaults): a header row,
// fields quoted with "..." where they hold commas, quotes ("") or newlines.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lorafit::eval {

struct CsvRow {
  std::vector<std::string> cells;
  int line = 0;  // 1-based line where the record starts
};

struct CsvTable {
  std::string what;  // the file, for messages
  std::vector<std::string> header;
  std::vector<CsvRow> rows;
  // Index of a header column; throws Error "<file>: no column '<name>' ..." when absent.
  size_t column(std::string_view name) const;
  bool has(std::string_view name) const;
};

// Throws Error naming `what` and the line for an unterminated quote or a row whose field
// count differs from the header's.
CsvTable parse_csv(std::string_view text, const std::string& what);

}  // namespace lorafit::eval
