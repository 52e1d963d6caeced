// A downstream program: encodes and decodes through the installed (or vendored) headers and
// exits non-zero if the results are wrong.
#include <lowbit/lowbit.hpp>

#include <cstdio>
#include <vector>

int main() {
  const std::vector<float> x = {0.3f, -1.7f, 448.0f, 1000.0f};
  std::vector<lowbit::fp8_e4m3::storage> codes(x.size());
  lowbit::encode_span<lowbit::fp8_e4m3>(std::span<const float>(x), std::span(codes));
  std::vector<float> y(x.size());
  lowbit::decode_span<lowbit::fp8_e4m3>(std::span<const std::uint8_t>(codes), std::span(y));
  const bool ok = y[0] == 0.3125f && y[1] == -1.75f && y[2] == 448.0f && y[3] == 448.0f;
  std::printf("consumer: %g %g %g %g -> %s\n", y[0], y[1], y[2], y[3], ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
