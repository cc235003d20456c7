// flovyn-app's entry point as a function, so tests can add modules (fault injection).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "flovyn/runtime/module.h"

namespace flovyn::app {

using ModuleFactory = std::function<std::unique_ptr<runtime::Module>()>;

int Main(int argc, char** argv, const std::vector<ModuleFactory>& extra_modules = {});

}  // namespace flovyn::app
