#include "flovyn/db/row.h"

#include <cstdlib>

#include <spdlog/spdlog.h>

namespace flovyn::db {

int Row::Col(const char* column) const {
  int c = result_.Column(column);
  if (c < 0) {
    spdlog::critical("a statement has no column '{}'", column);
    std::abort();
  }
  return c;
}

std::optional<int64_t> Row::OptInt(const char* column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

double Row::Double(const char* column) const { return std::strtod(Str(column).c_str(), nullptr); }

}  // namespace flovyn::db
