# Builds and runs tests/downstream/project against lowbit, either installed (find_package) or as
# a subdirectory. Invoked by CTest with LOWBIT_SOURCE, LOWBIT_BUILD, WORK, MODE and CXX.
file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message("${out}")
endfunction()

if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install ${LOWBIT_BUILD} --prefix ${prefix})
  foreach(f include/lowbit/lowbit.hpp share/cmake/lowbit/lowbitConfig.cmake
            share/cmake/lowbit/lowbitConfigVersion.cmake share/pkgconfig/lowbit.pc)
    if(NOT EXISTS ${prefix}/${f})
      message(FATAL_ERROR "install is missing ${f}")
    endif()
  endforeach()
  set(extra -DCMAKE_PREFIX_PATH=${prefix})
else()
  set(extra -DLOWBIT_SOURCE_DIR=${LOWBIT_SOURCE})
endif()
run(${CMAKE_COMMAND} -S ${LOWBIT_SOURCE}/tests/downstream/project -B ${WORK}/build
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release -DCONSUME=${MODE} ${extra})
run(${CMAKE_COMMAND} --build ${WORK}/build)
run(${WORK}/build/consumer)
