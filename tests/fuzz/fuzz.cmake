# libFuzzer targets for the sans-I/O parsers. Built only with clang. The
# sources under test are compiled into each target so libFuzzer sees their
# coverage. Each target also gets a short deterministic smoke run in ctest;
# run them for real with e.g. ./fuzz_ws -max_total_time=60.
if(CMAKE_C_COMPILER_ID MATCHES Clang)
  find_package(ZLIB REQUIRED)
  set(NF_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer -g)
  set(NF_FUZZ_SRC_http ${PROJECT_SOURCE_DIR}/src/http/http.c
      ${PROJECT_SOURCE_DIR}/src/ws/pmd.c ${PROJECT_SOURCE_DIR}/src/ws/utf8.c
      ${PROJECT_SOURCE_DIR}/src/ws/frame.c)
  set(NF_FUZZ_SRC_ws ${PROJECT_SOURCE_DIR}/src/ws/frame.c
      ${PROJECT_SOURCE_DIR}/src/ws/utf8.c ${PROJECT_SOURCE_DIR}/src/ws/decoder.c
      ${PROJECT_SOURCE_DIR}/src/ws/encoder.c ${PROJECT_SOURCE_DIR}/src/ws/pmd.c)
  foreach(t http ws)
    add_executable(fuzz_${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${t}.c ${NF_FUZZ_SRC_${t}})
    target_include_directories(fuzz_${t} PRIVATE ${PROJECT_SOURCE_DIR}/include)
    target_compile_definitions(fuzz_${t} PRIVATE _GNU_SOURCE)
    target_compile_options(fuzz_${t} PRIVATE ${NF_FUZZ_FLAGS})
    target_link_options(fuzz_${t} PRIVATE ${NF_FUZZ_FLAGS})
    target_link_libraries(fuzz_${t} PRIVATE ZLIB::ZLIB)
    add_test(NAME fuzz_${t}.smoke COMMAND fuzz_${t} -runs=20000 -seed=1 -max_len=4096)
    set_tests_properties(fuzz_${t}.smoke PROPERTIES TIMEOUT 120)
  endforeach()
  # Hixie-76 framing and keys (MD5 from libcrypto)
  find_package(OpenSSL REQUIRED)
  add_executable(fuzz_hixie ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_hixie.c
                 ${PROJECT_SOURCE_DIR}/src/ws/hixie.c ${PROJECT_SOURCE_DIR}/src/ws/utf8.c)
  target_include_directories(fuzz_hixie PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_compile_definitions(fuzz_hixie PRIVATE _GNU_SOURCE)
  target_compile_options(fuzz_hixie PRIVATE ${NF_FUZZ_FLAGS})
  target_link_options(fuzz_hixie PRIVATE ${NF_FUZZ_FLAGS})
  target_link_libraries(fuzz_hixie PRIVATE OpenSSL::Crypto)
  add_test(NAME fuzz_hixie.smoke COMMAND fuzz_hixie -runs=20000 -seed=1 -max_len=4096)
  set_tests_properties(fuzz_hixie.smoke PROPERTIES TIMEOUT 120)
endif()
