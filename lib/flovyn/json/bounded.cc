#include "flovyn/json/bounded.h"

namespace flovyn::json_input {

namespace {
// Thrown from the parser callback to stop at the first level past the bound.
struct TooDeep {};
}  // namespace

StatusOr<nlohmann::json> Parse(std::string_view text, std::string_view field, const Bounds& bounds) {
  if (text.size() > bounds.max_bytes) {
    return InvalidArgument(std::string(field) + " exceeds the limit json_max_bytes (" +
                           std::to_string(bounds.max_bytes) + " bytes)");
  }
  // nlohmann's parser keeps its own stack (no recursion); the callback sees each container as it
  // opens, at its depth, so a deep document is refused after reading `max_depth` levels.
  auto limit = [max = bounds.max_depth](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        static_cast<size_t>(depth) >= max) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit);
  } catch (const TooDeep&) {
    return InvalidArgument(std::string(field) + " nests deeper than the limit json_max_depth (" +
                           std::to_string(bounds.max_depth) + ")");
  } catch (const nlohmann::json::exception&) {
    return InvalidArgument(std::string(field) + " is not valid JSON");
  }
}

}  // namespace flovyn::json_input
