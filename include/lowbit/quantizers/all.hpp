// Everything of the quantizer-policies layer.
#pragma once

#include "lowbit/quantizers/calibration.hpp"
#include "lowbit/quantizers/hadamard.hpp"
#include "lowbit/quantizers/pipeline.hpp"
#include "lowbit/quantizers/quest.hpp"
#include "lowbit/quantizers/rtn.hpp"
#include "lowbit/quantizers/scale_search.hpp"
#include "lowbit/quantizers/smoothquant.hpp"

// GPTQ needs Eigen 3.4 (on the include path, e.g. through the Eigen3::Eigen target).
#if __has_include(<Eigen/Dense>)
#include "lowbit/quantizers/gptq.hpp"
#endif
