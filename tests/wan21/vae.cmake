# Wan-VAE decoder and the wan21 engine (included by tests/wan21/CMakeLists.txt).
if(TARGET vdgx-refcheck AND EXISTS ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21/manifest.json)
  add_test(NAME refcheck.wan21.vae
    COMMAND vdgx-refcheck wan21 ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21 --part vae)
  set_tests_properties(refcheck.wan21.vae PROPERTIES TIMEOUT 120)
endif()
