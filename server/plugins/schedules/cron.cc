#include "cron.h"

#include <array>
#include <cctype>
#include <vector>

#include <absl/strings/str_split.h>
#include <absl/time/civil_time.h>

namespace flovyn::plugins {

namespace {

struct Field {
  const char* name;
  int lo, hi;
  std::array<const char*, 12> names;  // for months (1..12) and weekdays (0..6)
  int names_base;
};

constexpr Field kMinute{"minute", 0, 59, {}, 0};
constexpr Field kHour{"hour", 0, 23, {}, 0};
constexpr Field kDay{"day of month", 1, 31, {}, 0};
constexpr Field kMonth{
    "month", 1, 12, {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}, 1};
constexpr Field kWeekday{"day of week", 0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, 0};

std::optional<int> Number(const std::string& s, const Field& f) {
  if (s.empty() || s.size() > 3) return std::nullopt;
  std::string upper;
  for (char c : s) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < f.names.size(); ++i) {
    if (f.names[i] != nullptr && upper == f.names[i]) return static_cast<int>(i) + f.names_base;
  }
  int v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < f.lo || v > f.hi) return std::nullopt;
  return v;
}

// One field into its set of values; `any` when it is "*" (or "*/1").
template <size_t N>
Status ParseField(const std::string& text, const Field& f, std::bitset<N>& out, bool& any) {
  auto bad = [&] { return InvalidArgument("cron: the " + std::string(f.name) + " field '" + text + "' is not valid"); };
  any = text == "*" || text == "*/1" || text == "?";
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  for (std::string& part : parts) {
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string::npos) {
      auto s = Number(part.substr(slash + 1), Field{f.name, 1, 59, {}, 0});
      if (!s) return bad();
      step = *s;
      part = part.substr(0, slash);
    }
    int lo = 0, hi = 0;
    if (part == "*" || part == "?") {
      lo = f.lo;
      hi = f.hi == 7 ? 6 : f.hi;
    } else if (auto dash = part.find('-'); dash != std::string::npos) {
      auto a = Number(part.substr(0, dash), f);
      auto b = Number(part.substr(dash + 1), f);
      if (!a || !b || *a > *b) return bad();
      lo = *a;
      hi = *b;
    } else {
      auto a = Number(part, f);
      if (!a) return bad();
      lo = *a;
      hi = step > 1 ? f.hi : *a;  // "5/15": from 5 to the end in steps of 15
    }
    for (int v = lo; v <= hi; v += step) out.set(static_cast<size_t>(f.hi == 7 ? v % 7 : v));
  }
  return Status::Ok();
}

std::string Alias(const std::string& text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return text;
}

int SundayFirst(absl::Weekday w) {
  switch (w) {
    case absl::Weekday::sunday:
      return 0;
    case absl::Weekday::monday:
      return 1;
    case absl::Weekday::tuesday:
      return 2;
    case absl::Weekday::wednesday:
      return 3;
    case absl::Weekday::thursday:
      return 4;
    case absl::Weekday::friday:
      return 5;
    case absl::Weekday::saturday:
      return 6;
  }
  return 0;
}

Instant ToInstant(absl::Time t) { return Instant(std::chrono::milliseconds(absl::ToUnixMillis(t))); }
absl::Time FromInstant(Instant t) { return absl::FromUnixMillis(t.time_since_epoch().count()); }

}  // namespace

StatusOr<CronExpression> CronExpression::Parse(const std::string& raw) {
  if (raw.size() > 200) return InvalidArgument("cron: the expression is longer than 200 characters");
  std::string text = Alias(raw);
  if (!text.empty() && text[0] == '@') return InvalidArgument("cron: unknown name '" + raw + "'");
  std::vector<std::string> fields = absl::StrSplit(text, ' ', absl::SkipEmpty());
  if (fields.size() != 5) {
    return InvalidArgument("cron: expected 5 fields (minute hour day-of-month month day-of-week), got " +
                           std::to_string(fields.size()));
  }
  CronExpression c;
  bool any = false;
  if (Status s = ParseField(fields[0], kMinute, c.minutes_, any); !s.ok()) return s;
  if (Status s = ParseField(fields[1], kHour, c.hours_, any); !s.ok()) return s;
  if (Status s = ParseField(fields[2], kDay, c.days_, c.any_day_); !s.ok()) return s;
  if (Status s = ParseField(fields[3], kMonth, c.months_, any); !s.ok()) return s;
  if (Status s = ParseField(fields[4], kWeekday, c.weekdays_, c.any_weekday_); !s.ok()) return s;
  return c;
}

bool CronExpression::DayMatches(const absl::CivilDay& d) const {
  bool dom = days_.test(static_cast<size_t>(d.day()));
  bool dow = weekdays_.test(static_cast<size_t>(SundayFirst(absl::GetWeekday(d))));
  // Classic cron: when both are restricted, either one matching is enough.
  if (any_day_) return dow;
  if (any_weekday_) return dom;
  return dom || dow;
}

bool CronExpression::Matches(const absl::CivilMinute& m) const {
  return months_.test(static_cast<size_t>(m.month())) && DayMatches(absl::CivilDay(m)) &&
         hours_.test(static_cast<size_t>(m.hour())) && minutes_.test(static_cast<size_t>(m.minute()));
}

std::optional<Instant> CronExpression::Next(Instant after, const absl::TimeZone& zone) const {
  absl::Time t = FromInstant(after);
  absl::CivilMinute c = absl::CivilMinute(zone.At(t).cs) + 1;
  const auto last_year = c.year() + 5;
  while (c.year() <= last_year) {
    if (!months_.test(static_cast<size_t>(c.month()))) {
      c = absl::CivilMinute(absl::CivilMonth(c) + 1);
    } else if (!DayMatches(absl::CivilDay(c))) {
      c = absl::CivilMinute(absl::CivilDay(c) + 1);
    } else if (!hours_.test(static_cast<size_t>(c.hour()))) {
      c = absl::CivilMinute(absl::CivilHour(c) + 1);
    } else if (!minutes_.test(static_cast<size_t>(c.minute()))) {
      c += 1;
    } else {
      absl::TimeZone::TimeInfo info = zone.At(absl::CivilSecond(c));
      // Skipped (the clocks jumped over it): the first instant after the gap. Repeated: the
      // first occurrence only. Either may be at or before `after`: then look further.
      absl::Time at = info.kind == absl::TimeZone::TimeInfo::SKIPPED ? info.trans : info.pre;
      if (at > t) return ToInstant(at);
      c += 1;
    }
  }
  return std::nullopt;
}

StatusOr<absl::TimeZone> LoadZone(const std::string& name) {
  bool plain = !name.empty() && name.size() <= 64 && name.find("..") == std::string::npos && name[0] != '/';
  for (char ch : name) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '_' || ch == '-' || ch == '+')) {
      plain = false;
    }
  }
  absl::TimeZone zone;
  if (!plain || !absl::LoadTimeZone(name, &zone)) {
    return InvalidArgument("unknown time zone '" + name.substr(0, 64) + "' (an IANA name such as Europe/Berlin)");
  }
  return zone;
}

std::optional<Instant> FireRule::Next(Instant after) const {
  if (cron) return cron->Next(after, zone);
  if (interval.count() <= 0) return std::nullopt;
  if (after < anchor) return anchor;
  auto periods = (after - anchor) / interval + 1;
  return anchor + periods * interval;
}

Instant InstantNow() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

std::string FormatInstant(Instant t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromInstant(t), absl::UTCTimeZone());
}

StatusOr<Instant> ParseInstant(const std::string& text) {
  absl::Time t;
  std::string err;
  if (text.size() > 64 || !absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return InvalidArgument("'" + text.substr(0, 64) + "' is not an RFC 3339 time (2026-11-28T09:00:00Z)");
  }
  return ToInstant(t);
}

}  // namespace flovyn::plugins
