// A test-only plugin for either program:
// - GET /api/testbed/sleep?ms=N answers 200 after N milliseconds (requests that stay in flight);
// - a plugin migration that fails, after creating a table, when the table
//   `fail_testbed_migration` exists (a failed migration must leave no trace).
#pragma once

#include <memory>

#include "flovyn/runtime/module.h"

namespace flovyn::testing {

std::unique_ptr<runtime::Module> MakeTestbedModule();

}  // namespace flovyn::testing
