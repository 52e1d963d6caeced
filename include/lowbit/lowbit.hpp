// Umbrella header: everything public in lowbit.
#pragma once

#include "lowbit/core/bits.hpp"
#include "lowbit/core/buffer.hpp"
#include "lowbit/core/config.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/formats/catalog.hpp"
#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/convert.hpp"
#include "lowbit/formats/half.hpp"
#include "lowbit/formats/integer.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "lowbit/formats/rounding.hpp"
#include "lowbit/kernels/linear.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/quantizers/all.hpp"
#include "lowbit/schemes/all.hpp"
