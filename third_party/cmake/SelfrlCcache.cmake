# Use ccache when present. The sloppiness settings let ccache cache translation units that
# use a precompiled header (the LibTorch PCH), which it refuses by default.
find_program(SELFRL_CCACHE ccache)
if(SELFRL_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      ${SELFRL_CCACHE})
  message(STATUS "selfrl: using ccache at ${SELFRL_CCACHE}")
endif()
