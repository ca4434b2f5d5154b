# libFuzzer targets, built only when the compiler is clang: tests/fuzz/fuzz_*.c, each
# linked against an instrumented copy of mars_core (so coverage guides the fuzzer into the
# code under test) with ASan and UBSan. ctest runs each for 20 s (fuzz/<name>), starting
# from the seeds in tests/fuzz/corpus/<name>; inputs it finds go to the build directory,
# never into the source tree. Crashes are written as crash-* in the build directory.
# Included from the top-level CMakeLists.txt after tests/tests.cmake.
if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(MARS_FUZZ_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -g)
  add_library(mars_core_fuzz STATIC ${MARS_CORE_SOURCES})
  add_dependencies(mars_core_fuzz mars_proto)
  get_target_property(mars_fuzz_libs mars_core LINK_LIBRARIES)
  get_target_property(mars_fuzz_defs mars_core COMPILE_DEFINITIONS)
  target_include_directories(mars_core_fuzz PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(mars_core_fuzz PUBLIC ${mars_fuzz_libs})
  if(mars_fuzz_defs)
    target_compile_definitions(mars_core_fuzz PUBLIC ${mars_fuzz_defs})
  endif()
  target_compile_options(mars_core_fuzz PRIVATE -fsanitize=fuzzer-no-link ${MARS_FUZZ_FLAGS})

  file(GLOB MARS_FUZZERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
  add_custom_target(fuzzers) # `make test-fuzz` builds this: every target below
  foreach(src ${MARS_FUZZERS})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    add_dependencies(fuzzers ${name})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${MARS_FUZZ_FLAGS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer ${MARS_FUZZ_FLAGS})
    target_link_libraries(${name} PRIVATE mars_core_fuzz)
    set(work ${CMAKE_BINARY_DIR}/fuzz-corpus/${name})
    file(MAKE_DIRECTORY ${work})
    add_test(NAME fuzz/${name}
             COMMAND ${name} -max_total_time=20 -timeout=10 -rss_limit_mb=2048
                     -print_final_stats=1 ${work} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name}
             WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(fuzz/${name} PROPERTIES TIMEOUT 120
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endforeach()
endif()
