#include <iostream>

int main() {
  std::cerr << "syncprobe: CLI not built yet\n";
  return 1;
}
