// Compile-time configuration: library version and the instruction sets the SIMD paths may use.
// The ISA is decided by the consumer's compiler flags (-mavx2 -mfma -mf16c or -march=native);
// defining LOWBIT_NO_SIMD forces every entry point onto its scalar reference path.
#pragma once

#define LOWBIT_VERSION_MAJOR 0
#define LOWBIT_VERSION_MINOR 1
#define LOWBIT_VERSION_PATCH 0

#if !defined(LOWBIT_NO_SIMD) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define LOWBIT_HAS_AVX2 1
#else
#define LOWBIT_HAS_AVX2 0
#endif

namespace lowbit {

enum class isa { scalar, avx2 };

// The instruction set the library's dispatching entry points use in this translation unit.
inline constexpr isa compiled_isa = LOWBIT_HAS_AVX2 ? isa::avx2 : isa::scalar;

constexpr const char* isa_name(isa i) noexcept { return i == isa::avx2 ? "avx2" : "scalar"; }

} // namespace lowbit
