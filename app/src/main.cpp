#include "app_main.h"

int main(int argc, char** argv) { return flovyn::app::Main(argc, argv); }
