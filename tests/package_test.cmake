# package_test.cmake — checks that an installed ipckit is usable from another
# project: installs the build tree into a fresh prefix, then configures, builds
# and runs tests/package_consumer against it with find_package(ipckit 0.1).
#
#   cmake -DBUILD_DIR=<ipckit build> -DSOURCE_DIR=<package_consumer>
#         -DWORK_DIR=<scratch dir> [-DSANITIZE=address,undefined] -P package_test.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var BUILD_DIR SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "package_test: pass -D${var}=...")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer-build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run_step what)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "package_test: ${what} failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

run_step("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

# Every piece of the package must be there.
foreach(f
    include/ipckit/ipckit.hpp
    bin/ipckit)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "package_test: ${f} was not installed into ${prefix}")
  endif()
endforeach()
file(GLOB_RECURSE libs "${prefix}/*/libipckit.a")
file(GLOB_RECURSE configs "${prefix}/*/cmake/ipckit/ipckitConfig.cmake")
file(GLOB_RECURSE versions "${prefix}/*/cmake/ipckit/ipckitConfigVersion.cmake")
if(NOT libs OR NOT configs OR NOT versions)
  message(FATAL_ERROR "package_test: libipckit.a, ipckitConfig.cmake or ipckitConfigVersion.cmake is missing from ${prefix}")
endif()

# A sanitizer build installs an instrumented library: the consumer needs the
# same runtime to link against it.
set(sanitize_flags)
if(SANITIZE)
  list(APPEND sanitize_flags
    "-DCMAKE_CXX_FLAGS=-fsanitize=${SANITIZE}"
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${SANITIZE}")
endif()

run_step("configuring the consumer" ${CMAKE_COMMAND}
  -S "${SOURCE_DIR}" -B "${consumer_build}" -G Ninja
  "-DCMAKE_PREFIX_PATH=${prefix}"
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
  ${sanitize_flags})
# The package must come from the fresh prefix, not from an older install.
file(STRINGS "${consumer_build}/CMakeCache.txt" found_dir REGEX "^ipckit_DIR:")
string(FIND "${found_dir}" "${prefix}/" at)
if(NOT at GREATER -1)
  message(FATAL_ERROR "package_test: the consumer found ipckit outside ${prefix}: ${found_dir}")
endif()
run_step("building the consumer" ${CMAKE_COMMAND} --build "${consumer_build}")
run_step("running the consumer" "${consumer_build}/app")
string(STRIP "${step_output}" result)
if(NOT result STREQUAL "OK")
  message(FATAL_ERROR "package_test: the consumer printed '${result}', expected 'OK'")
endif()
if(EXISTS "${consumer_build}/redis_app")
  run_step("running the Redis consumer" "${consumer_build}/redis_app")
  string(STRIP "${step_output}" result)
  if(NOT result STREQUAL "OK")
    message(FATAL_ERROR "package_test: the Redis consumer printed '${result}', expected 'OK'")
  endif()
endif()
message(STATUS "package_test: installed ipckit found, built against and run: OK")
