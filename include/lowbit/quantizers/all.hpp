// Everything of the quantizer-policies layer.
#pragma once

#include "lowbit/quantizers/calibration.hpp"
#include "lowbit/quantizers/hadamard.hpp"
#include "lowbit/quantizers/pipeline.hpp"
#include "lowbit/quantizers/quest.hpp"
#include "lowbit/quantizers/rtn.hpp"
#include "lowbit/quantizers/scale_search.hpp"
#include "lowbit/quantizers/smoothquant.hpp"
