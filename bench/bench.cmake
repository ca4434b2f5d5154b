# bench/bench.cmake - registers the benchmark harness's smoke run as the ctest test
# `bench/quick` (bench/run --quick against this build's mars, about 20 s, at most 2 minutes),
# so `make test` keeps the harness from rotting: it fails when a run does not complete
# exactly, mars crashes or exits non-zero, or RSS is not flat under a blocked sink.
# Included from tests/tests.cmake:  include(${CMAKE_SOURCE_DIR}/bench/bench.cmake)
#
# Not registered in sanitizer builds: the figures mean nothing there, and ASan's allocator
# quarantine grows RSS by design, which the blocked-sink check would report as a leak.
# Data, helper binaries and results stay in the build dir, not in bench/results/.
if(NOT MARS_SANITIZE)
  add_test(NAME bench/quick COMMAND ${CMAKE_SOURCE_DIR}/bench/run --quick)
  set_tests_properties(bench/quick PROPERTIES
    TIMEOUT 300
    RUN_SERIAL TRUE
    ENVIRONMENT "MARS_BIN=$<TARGET_FILE:mars>;BENCH_RESULTS=${CMAKE_BINARY_DIR}/bench-results;BENCH_WORK=${CMAKE_BINARY_DIR}/bench-work")
endif()

# bench/iptables.sh's dump timer: the iptables source's readers, timed alone
add_executable(ipt_dump_bench ${CMAKE_SOURCE_DIR}/bench/ipt_dump.c)
target_link_libraries(ipt_dump_bench PRIVATE mars_core)
