# Wan 2.1 DiT and samplers (included by tests/wan21/CMakeLists.txt).
# The reference vectors of the official code: the DiT forward and the sampling loops.
if(TARGET vdgx-refcheck AND EXISTS ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21/manifest.json)
  foreach(part dit sampling)
    add_test(NAME refcheck.wan21.${part}
      COMMAND vdgx-refcheck wan21 ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21 --part ${part})
    set_tests_properties(refcheck.wan21.${part} PROPERTIES TIMEOUT 120)
  endforeach()
endif()
