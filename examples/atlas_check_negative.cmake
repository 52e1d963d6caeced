# The test examples.atlas_check_rejects_broken_output: lowbit-atlas-check must accept a good atlas
# output and reject copies of it broken in three ways, with exit status 1 (a crash does not count).
#   cmake -DCHECK=<lowbit-atlas-check> -DGOOD=<lowbit-atlas --out dir> -DWORK=<scratch dir> -P this file
foreach(var CHECK GOOD WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "pass -D${var}=...")
  endif()
endforeach()

function(check dir expect_ok)
  execute_process(COMMAND ${CHECK} ${dir} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(expect_ok AND NOT rc EQUAL 0)
    message(FATAL_ERROR "lowbit-atlas-check rejects the good output ${dir}:\n${err}")
  elseif(NOT expect_ok AND NOT rc EQUAL 1)
    message(FATAL_ERROR "lowbit-atlas-check does not reject the broken output ${dir} with exit status 1 (got ${rc})")
  endif()
  message(STATUS "${dir}: exit status ${rc}\n${out}${err}")
endfunction()

# A copy of the good output in WORK/<name>, with <file> read into <file>_text in the caller.
function(broken_copy name file)
  file(REMOVE_RECURSE ${WORK}/${name})
  file(MAKE_DIRECTORY ${WORK}/${name})
  foreach(f atlas.svg atlas.md atlas.csv)
    file(COPY_FILE ${GOOD}/${f} ${WORK}/${name}/${f})
  endforeach()
  file(READ ${GOOD}/${file} text)
  set(text "${text}" PARENT_SCOPE)
endfunction()

check(${GOOD} TRUE)

broken_copy(truncated-svg atlas.svg)
string(LENGTH "${text}" n)
math(EXPR half "${n} / 2")
string(SUBSTRING "${text}" 0 ${half} text)
file(WRITE ${WORK}/truncated-svg/atlas.svg "${text}")
check(${WORK}/truncated-svg FALSE)

broken_copy(missing-row atlas.csv)
string(REGEX REPLACE "\nLaplace,\"nvfp4\",rtn/mse,[^\n]*" "" text "${text}")
file(WRITE ${WORK}/missing-row/atlas.csv "${text}")
check(${WORK}/missing-row FALSE)

# The rotation no longer rescuing INT4 on the outlier-laden data.
broken_copy(no-rotation-gain atlas.csv)
string(REGEX REPLACE "(Outliers,\"int4_group<128>\",hadamard \\+ rtn/absmax,[0-9.]+,)[0-9.]+" "\\11.000" text "${text}")
file(WRITE ${WORK}/no-rotation-gain/atlas.csv "${text}")
check(${WORK}/no-rotation-gain FALSE)
