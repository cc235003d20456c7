// flovyn-server with the test-only plugin of testbed_module.h.
#include "server_main.h"
#include "testbed_module.h"

int main(int argc, char** argv) { return flovyn::server::Main(argc, argv, {flovyn::testing::MakeTestbedModule}); }
