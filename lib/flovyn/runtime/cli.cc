#include "flovyn/runtime/cli.h"

#include <cstdio>

#include "flovyn/log/log.h"
#include "flovyn/metrics/catalogue.h"

namespace flovyn::runtime {

Command ParseCommand(int argc, char** argv) {
  Command c;
  int i = 1;
  if (i < argc && argv[i][0] != '-') {
    std::string verb = argv[i++];
    if (verb == "migrate") {
      c.kind = Command::kMigrate;
    } else if (verb == "serve") {
      c.kind = Command::kServe;
    } else {
      c.config_flags.push_back(verb);  // reported as an unexpected argument by config::Load
    }
  }
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--status" && c.kind == Command::kMigrate) {
      c.kind = Command::kMigrateStatus;
    } else if (a == "--print-config") {
      c.kind = Command::kPrintConfig;
    } else if (a == "--help" || a == "-h") {
      c.kind = Command::kHelp;
    } else if (a == "--config-reference") {
      c.kind = Command::kConfigReference;
    } else if (a == "--metrics-catalogue") {
      c.kind = Command::kMetricsCatalogue;
    } else if (a == "--version" || a == "-V") {
      c.kind = Command::kVersion;
    } else {
      c.config_flags.push_back(a);
    }
  }
  return c;
}

int Main(int argc, char** argv, const config::Schema& schema, const ProgramHooks& hooks) {
  Command cmd = ParseCommand(argc, argv);
  if (cmd.kind == Command::kHelp) {
    std::printf("%s\nSettings (environment variable, or --key=value):\n%s", hooks.usage.c_str(),
                schema.ToMarkdown().c_str());
    return 0;
  }
  if (cmd.kind == Command::kConfigReference) {
    std::printf("## %s\n\n%s", schema.program().c_str(), schema.ToMarkdown().c_str());
    return 0;
  }
  if (cmd.kind == Command::kMetricsCatalogue) {
    std::fputs(metrics::CatalogueMarkdown(hooks.metrics).c_str(), stdout);
    return 0;
  }
  for (const auto& flag : cmd.config_flags) {
    auto doc = hooks.documents.find(flag);
    if (doc != hooks.documents.end()) {
      std::fputs(doc->second().c_str(), stdout);
      return 0;
    }
  }
  if (cmd.kind == Command::kVersion) {
    std::printf("%s %s\n", schema.program().c_str(), hooks.version.c_str());
    return 0;
  }
  auto values = config::Load(schema, {cmd.config_flags, config::ProcessEnvironment()});
  if (!values.ok()) {
    std::fprintf(stderr, "%s: %s\n", schema.program().c_str(), values.status().message().c_str());
    return 2;
  }
  if (cmd.kind == Command::kPrintConfig) {
    std::fputs(values->Print().c_str(), stdout);
    return 0;
  }
  log::Init(values->String("rust_log"), values->String("log_format"));
  return hooks.run(cmd, *values);
}

}  // namespace flovyn::runtime
