// Type lists of the library's scalar formats, for code that iterates over all of them (the demo,
// the atlas, tests and benchmarks): for_each_format<element_formats>([]<class F>() { ... }).
#pragma once

#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/integer.hpp"
#include "lowbit/formats/minifloat.hpp"

namespace lowbit {

template <class... Fs>
struct format_list {
  static constexpr std::size_t size = sizeof...(Fs);
};

// Calls f.template operator()<F>() for each format F of the list, in order.
template <class List, class Fn>
constexpr void for_each_format(Fn&& f) {
  [&]<class... Fs>(format_list<Fs...>*) { (f.template operator()<Fs>(), ...); }(static_cast<List*>(nullptr));
}

using minifloat_element_formats =
    format_list<fp8_e4m3, fp8_e5m2, fp8_e4m3fnuz, fp8_e5m2fnuz, fp6_e3m2, fp6_e2m3, fp4_e2m1, fp4_e1m2, fp4_e3m0>;
using scale_formats = format_list<e8m0, ue4m3, ue5m3>;
using integer_formats = format_list<int2, int3, int4, int5, int6, int7, int8, uint2, uint3, uint4, uint5, uint6, uint7,
                                    uint8, int2_sym, int3_sym, int4_sym, int8_sym>;
using codebook_formats = format_list<nf4, fp4_bnb, iq4nl, ternary, midrise<4>, midrise<2>, midrise<1>>;

// Every 8-bit-or-narrower format, the set the demo and atlas tabulate.
using all_scalar_formats =
    format_list<fp8_e4m3, fp8_e5m2, fp8_e4m3fnuz, fp8_e5m2fnuz, fp6_e3m2, fp6_e2m3, fp4_e2m1, fp4_e1m2, fp4_e3m0, e8m0,
                ue4m3, ue5m3, int8, int6, int5, int4, int3, int2, uint8, uint4, int8_sym, int4_sym, int3_sym, int2_sym,
                nf4, fp4_bnb, iq4nl, ternary, midrise<4>, midrise<2>, midrise<1>>;

} // namespace lowbit
