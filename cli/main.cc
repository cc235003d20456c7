// flovyn: the command line for a Flovyn server (cli.h).
#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return flovyn::cli::Main(args, std::cout, std::cerr);
}
