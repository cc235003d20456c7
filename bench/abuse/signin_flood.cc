// Sign-in flood benchmark (prints figures; not a test): a console with its server and
// PostgreSQL (FLOVYN_TEST_SERVICES, started durable by bench/abuse/run), flooded with
// password guesses from random emails and addresses, side by side with a quiet reference run
// and with the hashing bound lifted. One fresh console per row (its peak RSS is its own).
// Usage: bench_signin_flood [seconds per flood, default 20]
#include "signin_flood.h"

#include <cstdio>
#include <cstdlib>

using namespace flovyn::testing;

namespace {

struct Row {
  const char* name;
  double rate;  // 0: no flood
  std::map<std::string, std::string> env;
};

}  // namespace

int main(int argc, char** argv) {
  int seconds = argc > 1 ? std::atoi(argv[1]) : 20;
  std::vector<Row> rows = {
      {"quiet (reference)", 0, {}},
      {"40/s, bounded (defaults)", 40, {}},
      {"150/s, bounded (defaults)", 150, {}},
      {"150/s, bound lifted (16 threads, queue 1024)",
       150,
       {{"AUTH__HASH_THREADS", "16"}, {"AUTH__HASH_QUEUE", "1024"}}},
  };
  std::printf("| run | guesses | answers | live p50 ms | live p99 ms | live max ms | RSS peak MB | right password |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const auto& row : rows) {
    std::map<std::string, std::string> env = row.env;
    env["BETTER_AUTH_TRUST_HOST"] = "true";
    ConsoleStack stack({.app_env = env});
    ConsoleClient browser(stack.app().port());
    if (!browser.SignUp("ada@example.com", "correct-horse-1", "Acme", "acme")) {
      std::fprintf(stderr, "sign-up failed\n");
      return 1;
    }
    int pid = stack.app().process().pid();
    FloodResult r = row.rate == 0 ? Quiet(stack.app().port(), pid, std::chrono::seconds(seconds))
                                  : RunSignInFlood(stack.app().port(), pid,
                                                   {.per_second = row.rate,
                                                    .duration = std::chrono::seconds(seconds),
                                                    .email = "ada@example.com",
                                                    .password = "correct-horse-1"});
    std::string answers;
    for (auto [code, n] : r.statuses)
      answers += (answers.empty() ? "" : ", ") + std::to_string(n) + "×" + std::to_string(code);
    char signin[96] = "–";
    if (row.rate > 0) {
      std::snprintf(signin, sizeof signin, "%s, %d tries, %.1f s", r.signed_in ? "in" : "NOT IN", r.sign_in_tries,
                    r.sign_in_ms / 1000);
    }
    std::printf("| %s | %d | %s | %.1f | %.1f | %.1f | %.0f | %s |\n", row.name, r.sent,
                answers.empty() ? "–" : answers.c_str(), r.live_p50_ms, r.live_p99_ms, r.live_max_ms,
                static_cast<double>(r.rss_peak_kb) / 1024, signin);
    std::fflush(stdout);
  }
  return 0;
}
