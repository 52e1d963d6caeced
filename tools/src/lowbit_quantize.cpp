// lowbit-quantize: quantize the weights of a .safetensors checkpoint (see tools/README.md).
#include "lowbit_tools/quantize.hpp"

#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return lowbit::tools::quantize_main(args, std::cout, std::cerr, ::isatty(STDOUT_FILENO) != 0);
}
