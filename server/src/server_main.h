// flovyn-server's entry point as a function, so tests can add modules (fault injection).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "flovyn/metrics/catalogue.h"
#include "flovyn/runtime/module.h"

namespace flovyn::server {

using ModuleFactory = std::function<std::unique_ptr<runtime::Module>()>;

// docs/security.md: the role matrix with every REST route and gRPC method (policy.h).
std::string SecurityDocument();

// The server's own metric series: the engine's and its plugins' (docs/metrics.md).
std::vector<const metrics::MetricSpec*> MetricSpecs();

int Main(int argc, char** argv, const std::vector<ModuleFactory>& extra_modules = {});

}  // namespace flovyn::server
