# Fuzzing the checkpoint reader.
#
# The gtest in this folder (ReaderFuzzTest.cpp, deterministic seeded mutations) always builds and runs.
# ANVIL_FUZZ=ON adds `ckpt_reader_fuzzer`, a libFuzzer target (ckpt_reader_fuzzer.cc — not *.cpp, so the
# test glob leaves it alone), compiled by clang with ASan/UBSan together with the reader's sources, and a
# short smoke run `ckpt_reader_fuzz_smoke` (ctest label `fuzz`). It needs clang and libclang-rt-14-dev
# (install the runtime by name: --no-install-recommends leaves it out). With a GCC build the target is
# compiled by invoking clang++ directly.
option(ANVIL_FUZZ "Build the libFuzzer target for the checkpoint reader (needs clang + libclang-rt-14-dev)" OFF)
if(ANVIL_FUZZ)
  set(_fz_dir ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
  set(_fz_root ${PROJECT_SOURCE_DIR})
  file(GLOB _fz_core CONFIGURE_DEPENDS ${_fz_root}/framework/core/*.cpp ${_fz_root}/framework/tensor/*.cpp)
  list(FILTER _fz_core EXCLUDE REGEX "/framework/core/Threads\\.cpp$")  # OpenMP runtime: not used by the reader
  set(_fz_srcs ${_fz_dir}/ckpt_reader_fuzzer.cc
    ${_fz_root}/serialization/CheckpointReader.cpp ${_fz_root}/serialization/CheckpointError.cpp
    ${_fz_root}/serialization/Crc32.cpp ${_fz_root}/serialization/FileIo.cpp ${_fz_root}/serialization/TensorType.cpp
    ${_fz_core})
  set(_fz_flags -std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    add_executable(ckpt_reader_fuzzer ${_fz_srcs})
    target_include_directories(ckpt_reader_fuzzer PRIVATE ${_fz_root})
    target_compile_options(ckpt_reader_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
    target_link_options(ckpt_reader_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(ckpt_reader_fuzzer PRIVATE fmt::fmt ZLIB::ZLIB)
    set(_fz_exe $<TARGET_FILE:ckpt_reader_fuzzer>)
  else()
    find_program(ANVIL_CLANGXX NAMES clang++ clang++-14)
    if(NOT ANVIL_CLANGXX)
      message(FATAL_ERROR "ANVIL_FUZZ=ON needs clang++ (apt-get install clang libclang-rt-14-dev)")
    endif()
    set(_fz_exe ${PROJECT_BINARY_DIR}/ckpt_reader_fuzzer)
    add_custom_command(OUTPUT ${_fz_exe}
      COMMAND ${ANVIL_CLANGXX} ${_fz_flags} -I${_fz_root} ${_fz_srcs} -lfmt -lz -o ${_fz_exe}
      DEPENDS ${_fz_srcs}
      COMMENT "Building ckpt_reader_fuzzer with ${ANVIL_CLANGXX} (libFuzzer + ASan + UBSan)"
      VERBATIM)
    add_custom_target(ckpt_reader_fuzzer ALL DEPENDS ${_fz_exe})
  endif()
  file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz-corpus)
  add_test(NAME ckpt_reader_fuzz_smoke
    COMMAND ${_fz_exe} -runs=20000 -seed=1 -max_len=65536 -rss_limit_mb=2048
            ${PROJECT_BINARY_DIR}/fuzz-corpus ${ANVIL_FIXTURES_DIR}/mindspore)
  set_tests_properties(ckpt_reader_fuzz_smoke PROPERTIES LABELS "fuzz" TIMEOUT 300)
endif()
