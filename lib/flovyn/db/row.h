// One row of a result, read by column name: statements name their columns (`AS created_at`)
// and mapping code says which it wants, so adding or reordering a column cannot shift another.
// A name the statement does not have is a bug in the program, and aborts.
#pragma once

#include <optional>
#include <string>

#include "flovyn/db/pool.h"

namespace flovyn::db {

class Row {
 public:
  Row(const Result& result, int row) : result_(result), row_(row) {}
  std::string Str(const char* column) const { return std::string(result_.Get(row_, Col(column))); }
  std::optional<std::string> Opt(const char* column) const { return result_.GetOpt(row_, Col(column)); }
  int64_t Int(const char* column) const { return result_.GetInt(row_, Col(column)); }
  std::optional<int64_t> OptInt(const char* column) const;
  double Double(const char* column) const;
  bool Bool(const char* column) const { return result_.Get(row_, Col(column)) == "t"; }
  bool IsNull(const char* column) const { return result_.IsNull(row_, Col(column)); }

 private:
  int Col(const char* column) const;
  const Result& result_;
  int row_;
};

}  // namespace flovyn::db
