// Eigen interop gives exactly the results of the span API, for any storage order.
#include "lowbit/eigen.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

namespace {

using namespace lowbit;

TEST(eigen, row_major_column_major_and_blocks_agree_with_the_span_api) {
  Eigen::MatrixXf col_major = Eigen::MatrixXf::Random(12, 96); // column-major
  const row_matrix rm = col_major;
  const std::vector<float> flat(rm.data(), rm.data() + rm.size());
  const auto want = dequantize(quantize<mxfp4>(flat, 12, 96));

  const row_matrix from_col = dequantize_matrix(quantize<mxfp4>(col_major));
  const row_matrix from_row = dequantize_matrix(quantize<mxfp4>(rm));
  EXPECT_EQ(std::vector<float>(from_col.data(), from_col.data() + from_col.size()), want);
  EXPECT_EQ(std::vector<float>(from_row.data(), from_row.data() + from_row.size()), want);
  EXPECT_TRUE(fake_quant<mxfp4>(col_major).isApprox(from_col, 0.0f));

  // A strided block (every row of a wider matrix, first 64 columns).
  const row_matrix wide = row_matrix::Random(5, 200);
  const row_matrix block = wide.leftCols(64);
  const row_matrix a = dequantize_matrix(quantize<nvfp4>(wide.leftCols(64)));
  const row_matrix b = dequantize_matrix(quantize<nvfp4>(block));
  EXPECT_TRUE(a == b);
}

TEST(eigen, bad_input_still_throws) {
  row_matrix w = row_matrix::Zero(2, 32);
  w(1, 3) = std::numeric_limits<float>::infinity();
  EXPECT_THROW((void)quantize<int4_group<32>>(w), lowbit::invalid_argument);
}

} // namespace
