# Wan 2.1 DiT and samplers (included by tests/wan21/CMakeLists.txt).
add_executable(vdgx-wan21-dit-selftest ${CMAKE_CURRENT_LIST_DIR}/wan21_dit_selftest.c)
target_link_libraries(vdgx-wan21-dit-selftest PRIVATE vdgx_wan21)
vdgx_add_selftests(RUNNER vdgx-wan21-dit-selftest CLASSES wan21_rng wan21_sched wan21_dit)

# The reference vectors of the official code: the DiT forward and the sampling loops.
if(TARGET vdgx-refcheck AND EXISTS ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21/manifest.json)
  foreach(part dit sampling)
    add_test(NAME refcheck.wan21.${part}
      COMMAND vdgx-refcheck wan21 ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21 --part ${part})
    set_tests_properties(refcheck.wan21.${part} PROPERTIES TIMEOUT 120)
  endforeach()
endif()
