# One precompiled LibTorch header (built for the library) is reused by every other target.
# GCC only accepts a PCH compiled with the same code-model flags, so targets that reuse it are
# compiled with -fPIC like the shared library (objects built -fPIC link fine into PIE programs).
function(selfrl_reuse_pch target)
  if(NOT SELFRL_USE_PCH)
    return()
  endif()
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
  target_compile_options(${target} PRIVATE -fPIC)
  target_precompile_headers(${target} REUSE_FROM selfrl)
endfunction()
