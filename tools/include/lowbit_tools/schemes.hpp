// The schemes the tools know by name: the command-line alias of each (e.g. "int4_g128") and its
// type. for_each_scheme visits every one at compile time; with_scheme turns a runtime name into
// a template instantiation. An alias names exactly one scheme and no two share a scheme_name.
#pragma once

#include "lowbit/schemes/scheme.hpp"

#include <string_view>

namespace lowbit::tools {

// Calls f.template operator()<S>(alias) for every named scheme, in the order --list-schemes prints.
template <class F>
void for_each_scheme(F&& f) {
  using namespace lowbit;
  f.template operator()<mxfp4>("mxfp4");
  f.template operator()<mxfp6_e2m3>("mxfp6_e2m3");
  f.template operator()<mxfp6_e3m2>("mxfp6_e3m2");
  f.template operator()<mxfp8_e4m3>("mxfp8_e4m3");
  f.template operator()<mxfp8_e5m2>("mxfp8_e5m2");
  f.template operator()<mxint8>("mxint8");
  f.template operator()<nvfp4>("nvfp4");
  f.template operator()<int_sym<2, 64>>("int2_g64");
  f.template operator()<int_sym<3, 128>>("int3_g128");
  f.template operator()<int4_group<32>>("int4_g32");
  f.template operator()<int4_group<64>>("int4_g64");
  f.template operator()<int4_group<128>>("int4_g128");
  f.template operator()<int_asym<4, 128>>("int4_asym_g128");
  f.template operator()<int8_group<128>>("int8_g128");
  f.template operator()<int_sym<8, 128, fp16, granularity::row>>("int8_row");
  f.template operator()<nf4_scheme<64>>("nf4");
  f.template operator()<nf4_dq>("nf4_dq");
  f.template operator()<nf4_dq_bnb>("nf4_dq_bnb");
  f.template operator()<iq4_nl>("iq4_nl");
  f.template operator()<ternary_absmean>("ternary");
  f.template operator()<ternary_absmean_base3>("ternary_base3");
}

// Calls f.template operator()<S>() for the scheme named `alias`; false if there is none.
template <class F>
bool with_scheme(std::string_view alias, F&& f) {
  bool found = false;
  for_each_scheme([&]<class S>(std::string_view name) {
    if (!found && name == alias) {
      found = true;
      f.template operator()<S>();
    }
  });
  return found;
}

} // namespace lowbit::tools
