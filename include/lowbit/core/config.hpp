// Compile-time configuration: library version and the instruction sets the SIMD paths may use.
// The ISA is decided by the consumer's compiler flags (-mavx2 -mfma -mf16c or -march=native);
// defining LOWBIT_NO_SIMD forces every entry point onto its scalar reference path. Where AVX-512
// VNNI and VL are compiled too (-mavx512vnni -mavx512vl, or -march=native on Ice Lake, Zen 4 and
// later), the AVX2 integer-dot GEMM kernels use 256-bit `vpdpbusd`; defining LOWBIT_NO_AVX512
// keeps them on AVX2 (with AVX-VNNI where that is compiled, see LOWBIT_HAS_AVX_VNNI).
#pragma once

#define LOWBIT_VERSION_MAJOR 0
#define LOWBIT_VERSION_MINOR 1
#define LOWBIT_VERSION_PATCH 0

#if !defined(LOWBIT_NO_SIMD) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define LOWBIT_HAS_AVX2 1
#else
#define LOWBIT_HAS_AVX2 0
#endif

#if LOWBIT_HAS_AVX2 && !defined(LOWBIT_NO_AVX512) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define LOWBIT_HAS_AVX512_VNNI 1
#else
#define LOWBIT_HAS_AVX512_VNNI 0
#endif

// AVX-VNNI, the VEX form of 256-bit `vpdpbusd` (-mavxvnni, or -march=native on Alder Lake and later
// Intel cores, Sapphire Rapids, Zen 5): where AVX-512 VNNI is not compiled (a machine without
// AVX-512, or LOWBIT_NO_AVX512), the AVX2 integer-dot kernels use it the same way, on their 16
// registers (the tile shapes stay those of AVX2). LOWBIT_NO_AVX_VNNI keeps them on `maddubs`.
#if LOWBIT_HAS_AVX2 && !LOWBIT_HAS_AVX512_VNNI && defined(__AVXVNNI__) && !defined(LOWBIT_NO_AVX_VNNI)
#define LOWBIT_HAS_AVX_VNNI 1
#else
#define LOWBIT_HAS_AVX_VNNI 0
#endif
// Either: the AVX2 integer-dot kernels multiply with 256-bit `vpdpbusd`.
#define LOWBIT_HAS_VNNI (LOWBIT_HAS_AVX512_VNNI || LOWBIT_HAS_AVX_VNNI)

// Where AVX-512 BW is compiled too (-mavx512bw, or -march=native on Skylake-X, Zen 4 and later),
// the LUT kernels of kernels/avx512/ and the float path's panel products run on 512-bit registers;
// LOWBIT_NO_AVX512 keeps them on AVX2.
#if LOWBIT_HAS_AVX2 && !defined(LOWBIT_NO_AVX512) && defined(__AVX512F__) && defined(__AVX512BW__)
#define LOWBIT_HAS_AVX512_BW 1
#else
#define LOWBIT_HAS_AVX512_BW 0
#endif

// Where VBMI is compiled beside AVX-512 BW and VNNI (Ice Lake, Zen 4 and later), both LUT kernels
// have byte-permute layouts and kernels (kernels/lut.hpp, kernels/ternary_lut.hpp), which
// linear_weights holds and runs; LOWBIT_NO_VBMI keeps them off (as on Skylake-X and Cascade Lake,
// which have BW and VNNI but not VBMI: the permute layouts then run on their scalar kernels).
#if LOWBIT_HAS_AVX512_BW && LOWBIT_HAS_AVX512_VNNI && defined(__AVX512VBMI__) && !defined(LOWBIT_NO_VBMI)
#define LOWBIT_HAS_AVX512_VBMI 1
#else
#define LOWBIT_HAS_AVX512_VBMI 0
#endif

// Forces inlining of small kernel helpers and lambdas whose registers must stay in registers.
#if defined(__GNUC__) || defined(__clang__)
#define LOWBIT_ALWAYS_INLINE __attribute__((always_inline))
#else
#define LOWBIT_ALWAYS_INLINE
#endif

// Fully unrolls the short loops over a kernel tile's rows, tokens and chunks so that their
// register arrays stay in registers (GCC does not unroll them at -O2).
#if defined(__clang__)
#define LOWBIT_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define LOWBIT_UNROLL _Pragma("GCC unroll 16")
#else
#define LOWBIT_UNROLL
#endif

// Ends an expression chain for the optimizer: the value counts as computed at this point and stays
// in a register. Without it GCC's reassociation rewrites a register-blocked kernel's running
// integer sums (acc += p0; acc += p1; ...) into trees over all the products, which no longer fit
// in the 16 vector registers and go through the stack (the int8 tiles ran 1.05-1.3x slower at
// N = 128; bench/README.md, run 8).
// The sums are exact integers, so the order of their additions does not change results.
#if defined(__GNUC__) || defined(__clang__)
#define LOWBIT_OPAQUE(v) __asm__("" : "+x"(v))
#else
#define LOWBIT_OPAQUE(v) (void)(v)
#endif

namespace lowbit {

// avx2_vnni: the AVX2 kernels, whose integer dot products use 256-bit `vpdpbusd` (AVX-512 VNNI, or
// AVX-VNNI where AVX-512 is not compiled).
// avx512bw: the AVX2 kernels, and the LUT kernels and the float path's panel products (from 4
// tokens) on 512-bit registers (kernels/avx512/).
// avx512_vnni: as avx2_vnni, and the LUT kernels, the int8 tiles and the float
// path's panel products on 512-bit registers.
enum class isa { scalar, avx2, avx2_vnni, avx512bw, avx512_vnni };

// The instruction set the library's dispatching entry points use in this translation unit.
inline constexpr isa compiled_isa = LOWBIT_HAS_AVX512_VNNI && LOWBIT_HAS_AVX512_BW ? isa::avx512_vnni
                                    : LOWBIT_HAS_AVX512_VNNI                       ? isa::avx2_vnni
                                    : LOWBIT_HAS_AVX512_BW                         ? isa::avx512bw
                                    : LOWBIT_HAS_AVX_VNNI                          ? isa::avx2_vnni
                                    : LOWBIT_HAS_AVX2                              ? isa::avx2
                                                                                   : isa::scalar;

constexpr const char* isa_name(isa i) noexcept {
  switch (i) {
  case isa::avx512_vnni: return "avx512bw+vnni";
  case isa::avx512bw: return "avx512bw";
  case isa::avx2_vnni: return "avx2+vnni";
  case isa::avx2: return "avx2";
  default: return "scalar";
  }
}

} // namespace lowbit
