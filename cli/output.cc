#include "output.h"

#include <algorithm>
#include <ostream>

namespace flovyn::cli {

std::string Cell(const nlohmann::json& v, size_t max) {
  std::string s = v.is_null() ? "-" : v.is_string() ? v.get<std::string>() : v.dump();
  for (auto& c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

void PrintTable(std::ostream& out, const Columns& columns, const nlohmann::json& items) {
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> width;
  for (const auto& [title, key] : columns) width.push_back(title.size());
  for (const auto& item : items) {
    std::vector<std::string> row;
    for (size_t c = 0; c < columns.size(); ++c) {
      row.push_back(Cell(item.contains(columns[c].second) ? item[columns[c].second] : nlohmann::json(nullptr)));
      width[c] = std::max(width[c], row.back().size());
    }
    rows.push_back(std::move(row));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t c = 0; c < cells.size(); ++c) {
      s += cells[c];
      if (c + 1 < cells.size()) s += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    out << s << "\n";
  };
  std::vector<std::string> header;
  for (const auto& [title, key] : columns) header.push_back(title);
  line(header);
  for (const auto& r : rows) line(r);
}

void PrintFields(std::ostream& out, const nlohmann::json& object, const Columns& fields) {
  size_t w = 0;
  for (const auto& [title, key] : fields) w = std::max(w, title.size());
  for (const auto& [title, key] : fields) {
    if (!object.contains(key)) continue;
    out << title << ":" << std::string(w - title.size() + 1, ' ') << Cell(object[key], 100000) << "\n";
  }
}

}  // namespace flovyn::cli
