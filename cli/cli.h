// The `flovyn` command line: a table of commands over the server's REST API, each with its
// usage, options and --help, parsed the same way; profiles pick the server and credentials.
// Exit codes (docs/cli.md): 0 done, 1 the server refused (4xx), 2 bad usage, 3 the server could
// not be reached or failed (5xx), 4 not found, 5 `workflow result`: the workflow did not
// complete. Single-threaded.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flovyn::cli {

enum Exit { kOk = 0, kRefused = 1, kUsage = 2, kUnavailable = 3, kNotFound = 4, kNotCompleted = 5 };

struct Option {
  std::string name;  // without the dashes
  std::string help;
  bool flag = false;  // takes no value
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  std::set<std::string> flags;
  std::optional<std::string> Get(const std::string& name) const;
  bool Has(const std::string& flag) const { return flags.count(flag) > 0; }
};

// Where requests go and how answers are printed.
struct Context {
  std::string server, api_key, tenant;
  bool json_output = false;
  int timeout_ms = 10000;
  std::ostream* out;
  std::ostream* err;

  // One REST call; on success `body` holds the parsed answer. Otherwise the error is printed
  // ("error: <message> (HTTP <status>)") and the exit code returned.
  struct Result {
    int exit = kOk;
    nlohmann::json body;
  };
  Result Call(const std::string& method, const std::string& path, const nlohmann::json& body = nullptr) const;
  // Paths under /api/tenants/<tenant>/.
  std::string TenantPath(const std::string& rest) const;
};

struct Command {
  std::string path;  // "workflow list"
  std::string usage;  // "<id> [<name>]"
  size_t min_args = 0, max_args = 0;
  std::string summary;
  std::vector<Option> options;
  std::function<int(Context&, const Args&)> run;
  bool needs_tenant = true;  // a tenant-scoped path: --tenant (or the profile's) is required
};

// Prints a JSON answer as JSON (--output json), or with `human` for people; an error's exit
// code otherwise (the error was printed by Call).
int Show(Context& ctx, const Context::Result& r, const std::function<void()>& human);
// Positional argument `i`, percent-encoded for a path segment.
std::string PathArg(const Args& a, size_t i = 0);

// Every command; the order is the help's.
const std::vector<Command>& Commands();
void AddWorkflowCommands(std::vector<Command>& all);
void AddAdminCommands(std::vector<Command>& all);

// The options every command takes (server, credentials, output).
const std::vector<Option>& GlobalOptions();

// Runs the command line; returns the exit code.
int Main(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err);

// A JSON value from an option ("--input '{\"a\":1}'"); plain text that is not JSON becomes a
// string. nullopt when absent.
std::optional<nlohmann::json> JsonOption(const Args& a, const std::string& name);

// The bash completion script.
std::string BashCompletion();

}  // namespace flovyn::cli
