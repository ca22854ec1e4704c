# Wan-VAE decoder and the wan21 engine (included by tests/wan21/CMakeLists.txt).
if(TARGET vdgx-refcheck AND EXISTS ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21/manifest.json)
  add_test(NAME refcheck.wan21.vae
    COMMAND vdgx-refcheck wan21 ${PROJECT_SOURCE_DIR}/tests/data/reference/wan21 --part vae)
  set_tests_properties(refcheck.wan21.vae PROPERTIES TIMEOUT 120)
endif()

# End to end on the tiny model: broker + vdgx-worker --model wan21-tiny + client -> MP4 probed.
if(TARGET vdgx-broker AND TARGET vdgx-worker AND TARGET vdgx_client)
  add_executable(vdgx-wan21-e2e ${CMAKE_CURRENT_LIST_DIR}/test_wan21_e2e.c)
  target_link_libraries(vdgx-wan21-e2e PRIVATE vdgx_client vdgx_testproc PkgConfig::AV)
  add_dependencies(vdgx-wan21-e2e vdgx-broker vdgx-worker)
  if(TARGET vdgx-cli)
    add_dependencies(vdgx-wan21-e2e vdgx-cli)
  endif()
  add_test(NAME wan21.e2e.tiny COMMAND vdgx-wan21-e2e $<TARGET_FILE_DIR:vdgx-worker>)
  set_tests_properties(wan21.e2e.tiny PROPERTIES TIMEOUT 180)
endif()
