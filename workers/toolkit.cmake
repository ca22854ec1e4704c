# The model toolkit between kernels/ and the engines: workers/nn (layers, attention, rotary,
# KV cache, weight sources and layout maps), workers/sample (noise, flow-matching schedules
# and solvers, guidance loop), workers/text (tokenizer, T5 encoders). One static library,
# vdgx_toolkit; included by workers/ and by any folder that builds an engine on its own.
if(NOT TARGET vdgx_toolkit AND TARGET vdgx_kernels)
  file(GLOB VDGX_TOOLKIT_SOURCES CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_LIST_DIR}/nn/*.c ${CMAKE_CURRENT_LIST_DIR}/sample/*.c
       ${CMAKE_CURRENT_LIST_DIR}/text/*.c ${CMAKE_CURRENT_LIST_DIR}/text/*.cc)
  add_library(vdgx_toolkit STATIC ${VDGX_TOOLKIT_SOURCES})
  # torch's randn is reproduced with explicit fmaf only: no compiler contraction there.
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/sample/vdgx_torchrng.c
                              PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
  target_include_directories(vdgx_toolkit PUBLIC ${CMAKE_CURRENT_LIST_DIR}/nn
                             ${CMAKE_CURRENT_LIST_DIR}/sample ${CMAKE_CURRENT_LIST_DIR}/text)
  target_link_libraries(vdgx_toolkit PUBLIC vdgx_kernels PkgConfig::SPM PkgConfig::JANSSON m)
endif()
