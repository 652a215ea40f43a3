# difflab_add_plugin(<target> SOURCES <file>...)
#
# Builds one plugin library: a MODULE that links libdifflab and exports only its entry point.
# In the difflab tree it lands in the build's plugin folder; out of tree, in the caller's
# build folder, ready for `runner --plugin-dir <that folder>`.
function(difflab_add_plugin target)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "difflab_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  set_property(GLOBAL APPEND PROPERTY DIFFLAB_PLUGIN_TARGETS ${target})
  if(TARGET difflab::difflab)
    target_link_libraries(${target} PRIVATE difflab::difflab)
  else()
    target_link_libraries(${target} PRIVATE difflab)
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "difflab_${target}"
    CXX_STANDARD 17
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED DIFFLAB_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${DIFFLAB_PLUGIN_OUTPUT_DIR})
  endif()
  if(TARGET difflab_pch)
    target_precompile_headers(${target} REUSE_FROM difflab_pch)
  endif()
  if(DEFINED DIFFLAB_INSTALL_PLUGIN_DIR)
    # Installed plugins find libdifflab two folders up (lib/difflab/plugins -> lib).
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "$ORIGIN/../..")
    install(TARGETS ${target} LIBRARY DESTINATION ${DIFFLAB_INSTALL_PLUGIN_DIR})
  endif()
endfunction()
