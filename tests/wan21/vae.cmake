# Wan-VAE decoder and the wan21 engine (included by tests/wan21/CMakeLists.txt).
if(TARGET vdgx-refcheck AND EXISTS ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21/manifest.json)
  add_test(NAME refcheck.wan21.vae
    COMMAND vdgx-refcheck wan21 ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21 --part vae)
  set_tests_properties(refcheck.wan21.vae PROPERTIES TIMEOUT 120)
endif()

add_executable(vdgx-wan21-vae-selftest ${CMAKE_CURRENT_LIST_DIR}/wan21_vae_selftest.c)
target_link_libraries(vdgx-wan21-vae-selftest PRIVATE vdgx_wan21)
vdgx_add_selftests(RUNNER vdgx-wan21-vae-selftest CLASSES wan21_vae wan21_engine)
