# DIFFLAB_SANITIZE ("address;undefined") and DIFFLAB_FUZZ: flags for every target defined after
# this point (the PCH, libdifflab, the engine, runner, plugins, tests and their fixtures).
# Torch, yaml-cpp and the other system libraries stay uninstrumented.
if(DIFFLAB_FUZZ AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "DIFFLAB_FUZZ=ON needs clang's libFuzzer, not ${CMAKE_CXX_COMPILER_ID}: "
    "configure a fresh build folder with -DCMAKE_CXX_COMPILER=clang++ "
    "(Debian 12: apt-get install clang libclang-rt-14-dev), or use scripts/fuzz.sh")
endif()

# UBSan's vptr and function checks stay on: they compare type names, so they hold across the
# hidden-visibility plugin libraries that Boost.DLL opens (no false reports in the suite).
if(DIFFLAB_SANITIZE)
  list(JOIN DIFFLAB_SANITIZE "," _difflab_sanitizers)
  add_compile_options(-fsanitize=${_difflab_sanitizers} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_difflab_sanitizers})
endif()

if(DIFFLAB_FUZZ)
  # Coverage feedback from all of our code, not only the fuzz target's own file; the fuzz target
  # alone links libFuzzer (-fsanitize=fuzzer), the other executables keep their main().
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
