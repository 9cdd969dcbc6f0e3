# The soak test (tests/soak/README.md): soak_server under soak_driver. A short
# run per backend is part of ctest (and so of the ASan build); `make soak`
# runs the long one.
add_executable(soak_server ${CMAKE_CURRENT_SOURCE_DIR}/soak/soak_server.c)
target_link_libraries(soak_server PRIVATE netframe)
add_executable(soak_driver ${CMAKE_CURRENT_SOURCE_DIR}/soak/soak_driver.c
               ${CMAKE_CURRENT_SOURCE_DIR}/integration/tls_certs.c)
find_package(Threads REQUIRED)
target_include_directories(soak_driver PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
target_link_libraries(soak_driver PRIVATE Threads::Threads OpenSSL::SSL)
# ASan keeps freed memory in quarantine: RSS says nothing there (LeakSanitizer
# checks the server at exit instead).
set(nf_soak_flags)
if(NF_SANITIZE)
  set(nf_soak_flags --no-rss-check)
endif()
# Timing: the driver's rule (storm p99 within 10x the quiet p99) compares two
# latencies measured on this machine; another test beside it (ctest -j2 on 2
# CPUs) would load one phase and not the other. So the soak runs serially
# (RUN_SERIAL: nothing else of this ctest run beside it), rather than with a
# wider factor that would stop catching a storm that starves good clients.
foreach(b ${NF_TEST_BACKENDS})
  add_test(NAME soak_short.${b} COMMAND soak_driver --server $<TARGET_FILE:soak_server> --quiet 2 --storm 6
           ${nf_soak_flags})
  set_tests_properties(soak_short.${b} PROPERTIES TIMEOUT 120 ENVIRONMENT "NF_BACKEND=${b}" RUN_SERIAL TRUE)
endforeach()
