// When a schedule fires: a five-field cron expression (or an @hourly-style name) read in an IANA
// time zone, or a fixed interval. Daylight-saving transitions follow the zone's rules: a local
// time the clocks skip fires once at the first valid instant after the gap, and a local time
// that happens twice fires once, at its first occurrence.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>

#include <absl/time/time.h>

#include "flovyn/core/status.h"

namespace flovyn::plugins {

using Instant = std::chrono::sys_time<std::chrono::milliseconds>;

class CronExpression {
 public:
  // "m h dom mon dow" with *, lists, ranges, steps and names (JAN..DEC, SUN..SAT, 7 = Sunday),
  // or @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly. INVALID_ARGUMENT names
  // the field that does not parse.
  static StatusOr<CronExpression> Parse(const std::string& text);
  // The first minute of local time, after `after`, that matches, as an instant; nullopt when
  // none does within five years (such as "0 0 30 2 *").
  std::optional<Instant> Next(Instant after, const absl::TimeZone& zone) const;
  bool Matches(const absl::CivilMinute& m) const;

 private:
  bool DayMatches(const absl::CivilDay& d) const;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool any_day_ = false, any_weekday_ = false;
};

// A zone by IANA name ("Europe/Berlin", "UTC"); INVALID_ARGUMENT for a name the system's time
// zone database does not hold.
StatusOr<absl::TimeZone> LoadZone(const std::string& name);

// When a schedule fires next after `after`: cron in its zone, or every `interval` counted from
// `anchor`. Exactly one of `cron` and `interval` is set.
struct FireRule {
  std::optional<CronExpression> cron;
  absl::TimeZone zone = absl::UTCTimeZone();
  std::chrono::milliseconds interval{0};
  Instant anchor{};
  std::optional<Instant> Next(Instant after) const;
};

// The system clock, to the millisecond.
Instant InstantNow();

// Milliseconds since the epoch as RFC 3339 in UTC ("2026-03-29T01:00:00.000Z"), and back.
std::string FormatInstant(Instant t);
StatusOr<Instant> ParseInstant(const std::string& text);

}  // namespace flovyn::plugins
