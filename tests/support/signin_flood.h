// A password-guessing flood against a running console, and what it did to the console: the
// test of bounded sign-in (small scale) and bench/abuse/run (full scale) share this driver.
// Each guess uses a random email and, with BETTER_AUTH_TRUST_HOST on, a random client address
// (X-Forwarded-For), so neither throttle stops it and only the bounded hashing pool does.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "app_harness.h"

namespace flovyn::testing {

struct FloodOptions {
  double per_second = 40;  // guesses started per second (open loop)
  std::chrono::seconds duration{20};
  std::string email, password;  // a real account, signed in once midway
};

struct FloodResult {
  int sent = 0;
  std::map<int, int> statuses;                               // HTTP status -> count (0: no answer)
  double live_p50_ms = 0, live_p99_ms = 0, live_max_ms = 0;  // GET /api/health/live during the flood
  long rss_peak_kb = 0;                                      // the console's VmHWM at the end
  long rss_end_kb = 0;                                       // its VmRSS at the end
  bool signed_in = false;                                    // the real account got in (retrying on 429 as told)
  double sign_in_ms = 0;                                     // from the first try to the session
  int sign_in_tries = 0;
};

// Runs the flood against `app` (the console) while probing its liveness; `pid` is its process.
FloodResult RunSignInFlood(int app_port, int pid, const FloodOptions& o);

// Liveness probes and memory with no flood, for the reference row.
FloodResult Quiet(int app_port, int pid, std::chrono::seconds duration);

// VmRSS or VmHWM of a process, in kB.
long ProcessKb(int pid, const char* field);

}  // namespace flovyn::testing
