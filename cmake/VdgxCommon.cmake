# Helpers shared by every component's CMakeLists.txt.

# vdgx_add_selftests(RUNNER target CLASSES a b c [LABELS l] [TIMEOUT s])
# Registers one ctest per class: `<runner> <class>` runs vdgx_<class>_test().
function(vdgx_add_selftests)
  cmake_parse_arguments(ARG "" "RUNNER;TIMEOUT" "CLASSES;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  foreach(cls ${ARG_CLASSES})
    add_test(NAME selftest.${cls} COMMAND ${ARG_RUNNER} ${cls})
    set_tests_properties(selftest.${cls} PROPERTIES TIMEOUT ${ARG_TIMEOUT}
      ENVIRONMENT "VDGX_SOURCE_DIR=${PROJECT_SOURCE_DIR};VDGX_BUILD_DIR=${PROJECT_BINARY_DIR}")
    if(ARG_LABELS)
      set_tests_properties(selftest.${cls} PROPERTIES LABELS "${ARG_LABELS}")
    endif()
  endforeach()
endfunction()
