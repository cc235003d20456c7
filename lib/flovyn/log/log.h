// Process-wide logging on stdout through spdlog: one line per event, plain text or JSON.
// Configure once at startup, before threads start; logging itself is thread-safe.
#pragma once

#include <string>

#include <spdlog/spdlog.h>

namespace flovyn::log {

// Parses a RUST_LOG-style filter ("info", "warn,flovyn=debug") into the level that applies to
// Flovyn's own code: a "flovyn..." directive wins over the bare default.
spdlog::level::level_enum ParseLevel(const std::string& filter);

// format: "text" or "json".
void Init(const std::string& level_filter, const std::string& format);

}  // namespace flovyn::log
