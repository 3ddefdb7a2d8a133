# Finds libselfrl's dependencies. On Debian they all come from packages that
# scripts/setup.sh installs; with SELFRL_CUDA=ON LibTorch comes from a PyTorch install.

if(SELFRL_CUDA AND NOT Torch_DIR)
  # The CUDA LibTorch ships inside the torch Python package.
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    execute_process(
      COMMAND ${Python3_EXECUTABLE} -c "import torch; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _selfrl_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _selfrl_torch_rc ERROR_QUIET)
    if(_selfrl_torch_rc EQUAL 0 AND _selfrl_torch_prefix)
      list(PREPEND CMAKE_PREFIX_PATH ${_selfrl_torch_prefix})
      message(STATUS "selfrl: CUDA LibTorch from ${_selfrl_torch_prefix}")
    endif()
  endif()
endif()

find_package(Torch REQUIRED)
if(SELFRL_CUDA)
  if(NOT TORCH_CUDA_LIBRARIES AND NOT TARGET torch_cuda)
    message(FATAL_ERROR
      "SELFRL_CUDA=ON but the LibTorch found at ${Torch_DIR} has no CUDA. Point Torch_DIR "
      "(or CMAKE_PREFIX_PATH) at a CUDA build, e.g. "
      "-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')")
  endif()
endif()

find_package(nlohmann_json 3.9 REQUIRED)
find_package(Threads REQUIRED)

# Tokenizers: PCRE2 (Unicode regexes of HF pre-tokenizers, with JIT) and sentencepiece.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
# Recipes.
find_package(yaml-cpp REQUIRED)
