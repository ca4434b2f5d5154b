# Every tests/{unit,runtime,backend}/**.c is one cmocka executable and one ctest test,
# named after its path (unit/core/test_cfg). tests/support/ holds shared test code
# (the capture sink, helpers). tests/integration/*.sh drive the mars binary.
file(GLOB_RECURSE MARS_TEST_SUPPORT CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/support/*.c)
add_library(mars_test_support STATIC ${MARS_TEST_SUPPORT})
target_include_directories(mars_test_support PUBLIC ${CMAKE_SOURCE_DIR}/tests/support)
target_link_libraries(mars_test_support PUBLIC mars_core PkgConfig::CMOCKA)

file(GLOB_RECURSE MARS_TESTS CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/unit/*.c
     ${CMAKE_SOURCE_DIR}/tests/runtime/*.c
     ${CMAKE_SOURCE_DIR}/tests/backend/*.c)
foreach(src ${MARS_TESTS})
  file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR}/tests ${src})
  string(REGEX REPLACE "\\.c$" "" name ${rel})
  string(REPLACE "/" "_" target "t_${name}")
  add_executable(${target} ${src})
  target_link_libraries(${target} PRIVATE mars_test_support)
  add_test(NAME ${name} COMMAND ${target})
  set_tests_properties(${name} PROPERTIES TIMEOUT 120
    ENVIRONMENT "MARS_SRC=${CMAKE_SOURCE_DIR};MARS_BIN=$<TARGET_FILE:mars>")
  # The ev backend suites run once per backend: <name> on libevent, <name>@io_uring.
  if(rel MATCHES "^backend/")
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "MARS_IO_BACKEND=libevent")
    add_test(NAME ${name}@io_uring COMMAND ${target})
    set_tests_properties(${name}@io_uring PROPERTIES TIMEOUT 120
      ENVIRONMENT "MARS_SRC=${CMAKE_SOURCE_DIR};MARS_BIN=$<TARGET_FILE:mars>;MARS_IO_BACKEND=io_uring")
  endif()
  # The JSON escaper's vector paths once more each with the better ones hidden.
  if(rel STREQUAL "unit/core/test_json_escape.c")
    foreach(cap avx2 none)
      add_test(NAME ${name}@${cap} COMMAND ${target})
      set_tests_properties(${name}@${cap} PROPERTIES TIMEOUT 120
        ENVIRONMENT "MARS_TEST_HOOKS=simd=${cap}")
    endforeach()
  endif()
  # The optional io_uring features once more with the kernel's hidden (the fallbacks).
  if(rel STREQUAL "backend/test_ev_features.c")
    add_test(NAME ${name}@io_uring-nofeatures COMMAND ${target})
    set_tests_properties(${name}@io_uring-nofeatures PROPERTIES TIMEOUT 120
      ENVIRONMENT "MARS_IO_BACKEND=io_uring;MARS_TEST_HOOKS=uring_fail=features")
  endif()
endforeach()

file(GLOB MARS_ITESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/*.sh)
foreach(script ${MARS_ITESTS})
  get_filename_component(base ${script} NAME_WE)
  add_test(NAME integration/${base} COMMAND bash ${script})
  set_tests_properties(integration/${base} PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77
    ENVIRONMENT "MARS_SRC=${CMAKE_SOURCE_DIR};MARS_BIN=$<TARGET_FILE:mars>")
  # cpack (dpkg-shlibdeps over every library mars links) takes about 40 s on its own
  # disk_buffer spools and replays 300,000 lines through a Python Elasticsearch fake
  # node_agent runs the whole node agent for 60 s, then waits for a Eureka heartbeat (30 s)
  if(base STREQUAL "package" OR base STREQUAL "disk_buffer" OR base STREQUAL "node_agent")
    set_tests_properties(integration/${base} PROPERTIES TIMEOUT 400)
  endif()
endforeach()

# the bench harness in --quick mode, so it cannot rot (not in sanitizer builds)
include(${CMAKE_SOURCE_DIR}/bench/bench.cmake)

# The include layering of src/ (docs/architecture.md): no folder reaches up or sideways.
add_test(NAME lint/layers COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/check-layers.sh)

# mock-kafka: librdkafka's mock cluster on loopback, the Kafka peer of the kafka tests
add_executable(mock-kafka ${CMAKE_SOURCE_DIR}/tests/tools/mock_kafka.c)
target_link_libraries(mock-kafka PRIVATE PkgConfig::RDKAFKA)
