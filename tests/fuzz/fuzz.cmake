# libFuzzer targets, one per parser. Built only with clang (make fuzz builds
# them in build-fuzz/ with CC=clang). The sources under test are compiled
# into each target so libFuzzer sees their coverage. Each target gets a short
# deterministic smoke run in ctest over its seed corpus; `make fuzz` runs each
# for FUZZ_SECONDS (scripts/fuzz.sh), `make test` for a few seconds each.
#
# nf_add_fuzz(NAME SOURCES...): tests/fuzz/NAME.c plus the library sources it
# exercises; the seed corpus is tests/fuzz/corpus/NAME/.
if(CMAKE_C_COMPILER_ID MATCHES Clang)
  find_package(ZLIB REQUIRED)
  set(NF_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer -g)
  set(NF_FUZZ_WS_SRC ${PROJECT_SOURCE_DIR}/src/ws/frame.c ${PROJECT_SOURCE_DIR}/src/ws/utf8.c
      ${PROJECT_SOURCE_DIR}/src/ws/decoder.c ${PROJECT_SOURCE_DIR}/src/ws/encoder.c
      ${PROJECT_SOURCE_DIR}/src/ws/pmd.c)

  function(nf_add_fuzz name)
    add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${name}.c ${ARGN})
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/include ${NF_GEN_INCLUDE} ${PROJECT_SOURCE_DIR}/src)
    target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
    target_compile_options(${name} PRIVATE ${NF_FUZZ_FLAGS})
    target_link_options(${name} PRIVATE ${NF_FUZZ_FLAGS})
    target_link_libraries(${name} PRIVATE ZLIB::ZLIB)
    # new inputs go to a scratch folder, never into the checked-in seeds
    set(corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${name})
    set(scratch ${CMAKE_CURRENT_BINARY_DIR}/fuzz-smoke/${name})
    file(MAKE_DIRECTORY ${scratch})
    add_test(NAME ${name}.smoke COMMAND ${name} -runs=20000 -seed=1 -max_len=4096 ${scratch} ${corpus})
    set_tests_properties(${name}.smoke PROPERTIES TIMEOUT 120)
    set_property(GLOBAL APPEND PROPERTY NF_FUZZ_TARGETS ${name})
  endfunction()

  nf_add_fuzz(fuzz_http_request ${PROJECT_SOURCE_DIR}/src/http/http.c)
  nf_add_fuzz(fuzz_http_response ${PROJECT_SOURCE_DIR}/src/http/http.c)
  # the request stream reader (issue 16): whole streams, and the chunked decoder
  nf_add_fuzz(fuzz_http_stream ${PROJECT_SOURCE_DIR}/src/http/http.c ${PROJECT_SOURCE_DIR}/src/http/reader.c)
  nf_add_fuzz(fuzz_http_chunked ${PROJECT_SOURCE_DIR}/src/http/http.c ${PROJECT_SOURCE_DIR}/src/http/reader.c)
  nf_add_fuzz(fuzz_ws_ext ${NF_FUZZ_WS_SRC})
  nf_add_fuzz(fuzz_ws ${NF_FUZZ_WS_SRC})
  nf_add_fuzz(fuzz_proxy ${PROJECT_SOURCE_DIR}/src/filter/proxy_parse.c)
  # Hixie-76 framing and keys (MD5 from libcrypto)
  find_package(OpenSSL REQUIRED)
  nf_add_fuzz(fuzz_hixie ${PROJECT_SOURCE_DIR}/src/ws/hixie.c ${PROJECT_SOURCE_DIR}/src/ws/utf8.c)
  target_link_libraries(fuzz_hixie PRIVATE OpenSSL::Crypto)

  # The TLS filter on a real loop over loopback: every library source,
  # instrumented, plus the test certificate maker.
  set(nf_fuzz_lib_src)
  foreach(f ${NF_SOURCES})
    list(APPEND nf_fuzz_lib_src ${PROJECT_SOURCE_DIR}/${f})
  endforeach()
  nf_add_fuzz(fuzz_tls ${nf_fuzz_lib_src} ${CMAKE_CURRENT_SOURCE_DIR}/integration/tls_certs.c)
  target_include_directories(fuzz_tls PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  # every library source: the library's own dependencies too (c-ares since issue 13)
  target_link_libraries(fuzz_tls PRIVATE ${NF_URING_DEP} PkgConfig::CARES Threads::Threads ${NF_EXTRA_LIBS})
  # each input is a loopback connection: fewer smoke runs
  set_tests_properties(fuzz_tls.smoke PROPERTIES TIMEOUT 300)

  get_property(nf_fuzz_all GLOBAL PROPERTY NF_FUZZ_TARGETS)
  add_custom_target(fuzz_all DEPENDS ${nf_fuzz_all})
  # the list scripts/fuzz.sh runs
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/fuzz_targets.txt CONTENT "$<JOIN:${nf_fuzz_all},\n>\n")
else()
  # This build is not clang's: the smoke runs happen in the clang build
  # (make test-fuzz: build-fuzz/, ctest -R smoke). Without clang on the
  # machine they cannot run anywhere, which is a broken set-up (make deps
  # installs clang and libclang-rt-14-dev): say so with a failing test
  # instead of letting them vanish.
  find_program(NF_CLANG clang)
  if(NOT NF_CLANG)
    add_test(NAME fuzz_smoke
      COMMAND sh -c "echo 'FAIL: clang (with libclang-rt-14-dev) is needed for the fuzz smoke tests'; exit 1")
  endif()
endif()
