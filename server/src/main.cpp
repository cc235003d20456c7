#include "server_main.h"

int main(int argc, char** argv) { return flovyn::server::Main(argc, argv); }
