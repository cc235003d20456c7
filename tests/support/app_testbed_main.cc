// flovyn-app with the test-only plugin of testbed_module.h.
#include "app_main.h"
#include "testbed_module.h"

int main(int argc, char** argv) { return flovyn::app::Main(argc, argv, {flovyn::testing::MakeTestbedModule}); }
