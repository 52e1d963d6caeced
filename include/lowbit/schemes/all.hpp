// Everything of the schemes layer.
#pragma once

#include "lowbit/schemes/gguf.hpp"
#include "lowbit/schemes/metrics.hpp"
#include "lowbit/schemes/packing.hpp"
#include "lowbit/schemes/qmatrix.hpp"
#include "lowbit/schemes/scale_rules.hpp"
#include "lowbit/schemes/scheme.hpp"
#include "lowbit/schemes/serialize.hpp"
