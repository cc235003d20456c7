#include "cli.h"

#include <cstdlib>
#include <ostream>

#include "flovyn/http/client.h"
#include "flovyn/http/message.h"
#include "profile.h"

namespace flovyn::cli {

using nlohmann::json;

std::optional<std::string> Args::Get(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

std::optional<json> JsonOption(const Args& a, const std::string& name) {
  auto v = a.Get(name);
  if (!v) return std::nullopt;
  json j = json::parse(*v, nullptr, false);
  return j.is_discarded() ? json(*v) : j;
}

std::string Context::TenantPath(const std::string& rest) const {
  return "/api/tenants/" + http::UrlEncode(tenant) + rest;
}

Context::Result Context::Call(const std::string& method, const std::string& path, const json& body) const {
  http::ClientRequest req;
  req.method = method;
  req.url = server + path;
  req.timeout = std::chrono::milliseconds(timeout_ms);
  if (!api_key.empty()) req.headers.emplace_back("Authorization", "Bearer " + api_key);
  if (!body.is_null()) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body.dump();
  }
  Result r;
  auto res = http::Fetch(req);
  if (!res.ok()) {
    *err << "error: cannot reach " << server << ": " << res.status().message() << "\n";
    r.exit = kUnavailable;
    return r;
  }
  r.body = res->body.empty() ? json(nullptr) : json::parse(res->body, nullptr, false);
  if (res->status >= 200 && res->status < 300) return r;
  std::string message = "HTTP " + std::to_string(res->status);
  if (r.body.is_object() && r.body.contains("error")) {
    const json& e = r.body["error"];
    if (e.is_object() && e.contains("message")) message = e["message"].get<std::string>();
    if (e.is_string()) message = e.get<std::string>();
  }
  *err << "error: " << message << " (HTTP " << res->status << ")\n";
  r.exit = res->status == 404 ? kNotFound : res->status >= 500 ? kUnavailable : kRefused;
  return r;
}

int Show(Context& ctx, const Context::Result& r, const std::function<void()>& human) {
  if (r.exit != kOk) return r.exit;
  if (ctx.json_output) {
    *ctx.out << r.body.dump(2) << "\n";
  } else {
    human();
  }
  return kOk;
}

std::string PathArg(const Args& a, size_t i) { return http::UrlEncode(a.positional.at(i)); }

const std::vector<Option>& GlobalOptions() {
  static const std::vector<Option> all = {
      {"server", "server URL (FLOVYN_SERVER; default http://localhost:8000)"},
      {"api-key", "API key (FLOVYN_API_KEY)"},
      {"tenant", "tenant slug (FLOVYN_TENANT)"},
      {"profile", "profile in the config file (FLOVYN_PROFILE; default \"default\")"},
      {"config", "config file (FLOVYN_CONFIG; default ~/.config/flovyn/config.toml)"},
      {"output", "table (default) or json"},
      {"timeout-ms", "time each request may take (default 10000)"},
      {"help", "show help", true},
  };
  return all;
}

const std::vector<Command>& Commands() {
  static const std::vector<Command> all = [] {
    std::vector<Command> c;
    AddWorkflowCommands(c);
    AddAdminCommands(c);
    return c;
  }();
  return all;
}

namespace {

void PrintOptions(std::ostream& out, const std::vector<Option>& options) {
  for (const auto& o : options) {
    std::string left = "  --" + o.name + (o.flag ? "" : " <value>");
    out << left << std::string(left.size() < 28 ? 28 - left.size() : 1, ' ') << o.help << "\n";
  }
}

void OverallHelp(std::ostream& out, const std::string& group = "") {
  out << "Usage: flovyn [options] <command> [arguments]\n\nCommands:\n";
  for (const auto& c : Commands()) {
    if (!group.empty() && c.path.rfind(group + " ", 0) != 0) continue;
    std::string left = "  " + c.path + (c.usage.empty() ? "" : " " + c.usage);
    out << left << std::string(left.size() < 44 ? 44 - left.size() : 1, ' ') << c.summary << "\n";
  }
  out << "\nOptions for every command:\n";
  PrintOptions(out, GlobalOptions());
  out << "\nExit codes: 0 done, 1 refused by the server, 2 bad usage, 3 server unreachable or failing,\n"
         "4 not found, 5 the workflow did not complete (workflow result).\n"
         "`flovyn <command> --help` describes one command.\n";
}

void CommandHelp(std::ostream& out, const Command& c) {
  out << "Usage: flovyn " << c.path << (c.usage.empty() ? "" : " " + c.usage) << " [options]\n\n" << c.summary << "\n";
  if (!c.options.empty()) {
    out << "\nOptions:\n";
    PrintOptions(out, c.options);
  }
  out << "\nOptions for every command:\n";
  PrintOptions(out, GlobalOptions());
}

// Whether --name takes a value, from every command's and the global options.
std::optional<bool> IsFlag(const std::string& name) {
  for (const auto& o : GlobalOptions()) {
    if (o.name == name) return o.flag;
  }
  for (const auto& c : Commands()) {
    for (const auto& o : c.options) {
      if (o.name == name) return o.flag;
    }
  }
  return std::nullopt;
}

struct Parsed {
  std::vector<std::string> words;
  std::map<std::string, std::string> options;
  std::set<std::string> flags;
  std::string error;
};

Parsed Parse(const std::vector<std::string>& argv) {
  Parsed p;
  bool only_words = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (only_words || a.size() < 3 || a.rfind("--", 0) != 0) {
      if (a == "--") {
        only_words = true;
        continue;
      }
      p.words.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    auto eq = name.find('=');
    bool has_value = eq != std::string::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto flag = IsFlag(name);
    if (!flag) {
      p.error = "unknown option --" + name;
      return p;
    }
    if (*flag) {
      p.flags.insert(name);
    } else if (has_value) {
      p.options[name] = value;
    } else if (i + 1 < argv.size()) {
      p.options[name] = argv[++i];
    } else {
      p.error = "--" + name + " needs a value";
      return p;
    }
  }
  return p;
}

const Command* Resolve(const std::vector<std::string>& words, size_t& used) {
  for (size_t n = std::min<size_t>(words.size(), 2); n > 0; --n) {
    std::string path;
    for (size_t i = 0; i < n; ++i) path += (i ? " " : "") + words[i];
    for (const auto& c : Commands()) {
      if (c.path == path) {
        used = n;
        return &c;
      }
    }
  }
  return nullptr;
}

std::string FromEnv(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Flags, then the environment, then the profile, then the default.
std::optional<std::string> Configure(Context& ctx, const Parsed& p) {
  auto opt = [&p](const char* name) -> std::string {
    auto it = p.options.find(name);
    return it == p.options.end() ? "" : it->second;
  };
  std::map<std::string, Profile> profiles;
  if (auto e = LoadProfiles(ConfigPath(p.options.count("config") ? std::optional(opt("config")) : std::nullopt),
                            profiles)) {
    return e;
  }
  std::string name = !opt("profile").empty() ? opt("profile") : FromEnv("FLOVYN_PROFILE");
  if (!name.empty() && !profiles.count(name)) return "no profile '" + name + "' in the config file";
  Profile prof = profiles[name.empty() ? "default" : name];
  auto pick = [](const std::string& a, const std::string& b, const std::string& c, const std::string& d) {
    return !a.empty() ? a : !b.empty() ? b : !c.empty() ? c : d;
  };
  ctx.server = pick(opt("server"), FromEnv("FLOVYN_SERVER"), prof.server, "http://localhost:8000");
  while (!ctx.server.empty() && ctx.server.back() == '/') ctx.server.pop_back();
  ctx.api_key = pick(opt("api-key"), FromEnv("FLOVYN_API_KEY"), prof.api_key, "");
  ctx.tenant = pick(opt("tenant"), FromEnv("FLOVYN_TENANT"), prof.tenant, "");
  std::string output = opt("output");
  if (!output.empty() && output != "json" && output != "table") return "--output must be table or json";
  ctx.json_output = output == "json";
  if (!opt("timeout-ms").empty()) {
    char* end = nullptr;
    long ms = std::strtol(opt("timeout-ms").c_str(), &end, 10);
    if (*end != '\0' || ms < 1 || ms > 3600000) return "--timeout-ms must be 1 to 3600000";
    ctx.timeout_ms = static_cast<int>(ms);
  }
  return std::nullopt;
}

bool Allowed(const Command& c, const std::string& name) {
  for (const auto& o : GlobalOptions()) {
    if (o.name == name) return true;
  }
  for (const auto& o : c.options) {
    if (o.name == name) return true;
  }
  return false;
}

}  // namespace

int Main(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  Parsed p = Parse(argv);
  if (!p.error.empty()) {
    err << "error: " << p.error << "\n";
    return kUsage;
  }
  if (p.words.empty() || p.words[0] == "help") {
    OverallHelp(p.words.empty() && !p.flags.count("help") ? err : out, p.words.size() > 1 ? p.words[1] : "");
    return p.words.empty() && !p.flags.count("help") ? kUsage : kOk;
  }
  size_t used = 0;
  const Command* c = Resolve(p.words, used);
  if (c == nullptr || (used == 1 && c->path.find(' ') != std::string::npos)) {
    bool group = false;
    for (const auto& cmd : Commands()) group = group || cmd.path.rfind(p.words[0] + " ", 0) == 0;
    if (group && (p.flags.count("help") || p.words.size() == 1)) {
      OverallHelp(p.flags.count("help") ? out : err, p.words[0]);
      return p.flags.count("help") ? kOk : kUsage;
    }
    err << "error: unknown command '" << p.words[0] << (p.words.size() > 1 ? " " + p.words[1] : "")
        << "' (flovyn --help lists them)\n";
    return kUsage;
  }
  if (p.flags.count("help")) {
    CommandHelp(out, *c);
    return kOk;
  }
  for (const auto& [name, v] : p.options) {
    if (!Allowed(*c, name)) {
      err << "error: flovyn " << c->path << " has no option --" << name << "\n";
      return kUsage;
    }
  }
  for (const auto& name : p.flags) {
    if (!Allowed(*c, name)) {
      err << "error: flovyn " << c->path << " has no option --" << name << "\n";
      return kUsage;
    }
  }
  Args args{{p.words.begin() + static_cast<long>(used), p.words.end()}, p.options, p.flags};
  if (args.positional.size() < c->min_args || args.positional.size() > c->max_args) {
    err << "error: usage: flovyn " << c->path << " " << c->usage << "\n";
    return kUsage;
  }
  Context ctx;
  ctx.out = &out;
  ctx.err = &err;
  if (auto e = Configure(ctx, p)) {
    err << "error: " << *e << "\n";
    return kUsage;
  }
  if (c->needs_tenant && ctx.tenant.empty()) {
    err << "error: no tenant: pass --tenant, set FLOVYN_TENANT or add tenant to the profile\n";
    return kUsage;
  }
  return c->run(ctx, args);
}

std::string BashCompletion() {
  std::map<std::string, std::set<std::string>> verbs;
  std::set<std::string> options;
  for (const auto& o : GlobalOptions()) options.insert("--" + o.name);
  for (const auto& c : Commands()) {
    auto sp = c.path.find(' ');
    verbs[c.path.substr(0, sp)];
    if (sp != std::string::npos) verbs[c.path.substr(0, sp)].insert(c.path.substr(sp + 1));
    for (const auto& o : c.options) options.insert("--" + o.name);
  }
  std::string groups, cases, opts;
  for (const auto& [g, vs] : verbs) {
    groups += (groups.empty() ? "" : " ") + g;
    if (vs.empty()) continue;
    std::string list;
    for (const auto& v : vs) list += (list.empty() ? "" : " ") + v;
    cases.append("    ").append(g).append(") words=\"").append(list).append("\" ;;\n");
  }
  for (const auto& o : options) opts += (opts.empty() ? "" : " ") + o;
  return "# bash completion for flovyn: source <(flovyn completion bash)\n"
         "_flovyn() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} words=\"\" i group=\"\" n=0\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    case ${COMP_WORDS[i]} in --*) ;; *) n=$((n + 1)); [ $n -eq 1 ] && group=${COMP_WORDS[i]} ;; esac\n"
         "  done\n"
         "  if [[ $cur == --* ]]; then words=\"" +
         opts +
         "\"\n"
         "  elif [ $n -eq 0 ]; then words=\"" +
         groups +
         "\"\n"
         "  elif [ $n -eq 1 ]; then\n"
         "    case $group in\n" +
         cases +
         "    esac\n"
         "  fi\n"
         "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
         "}\n"
         "complete -F _flovyn flovyn\n";
}

}  // namespace flovyn::cli
