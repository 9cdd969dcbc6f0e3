# TLS filter (issue 7): loopback tests with certificates made at test time,
# and interop with openssl s_client / s_server, Python's ssl and Node's ws.
# Included from tests/CMakeLists.txt; paths are relative to tests/.
nf_add_test(test_tls integration/test_tls.c integration/tls_certs.c integration/helpers.c TIMEOUT 120)

# Certificates for the interop scripts and bench/tls.sh.
add_executable(tls_mkcerts integration/tls_mkcerts.c integration/tls_certs.c)
target_link_libraries(tls_mkcerts PRIVATE OpenSSL::Crypto)

# Interop, once per backend: openssl s_client / s_server, Python's ssl.
set(NF_TLS_INTEROP ${CMAKE_CURRENT_SOURCE_DIR}/interop)
find_program(NF_OPENSSL openssl)
foreach(b uring epoll)
  set(_modes py_client py_server bad_peer s_client s_server)
  foreach(mode ${_modes})
    if(NOT NF_OPENSSL AND mode MATCHES "^s_")
      # a missing peer is a broken set-up (make deps installs openssl): fail
      add_test(NAME tls_interop_${mode}.${b}
        COMMAND sh -c "echo 'FAIL: the openssl command is needed for ${mode}'; exit 1")
      continue()
    endif()
    add_test(NAME tls_interop_${mode}.${b}
      COMMAND /usr/bin/python3 ${NF_TLS_INTEROP}/tls_interop.py ${mode}
              $<TARGET_FILE:tls_mkcerts> $<TARGET_FILE:echo_server> $<TARGET_FILE:tls_client>)
    set_tests_properties(tls_interop_${mode}.${b} PROPERTIES TIMEOUT 60 ENVIRONMENT "NF_BACKEND=${b}")
  endforeach()
endforeach()

# Node's ws over wss://, both ways (the ws@8 fixture of ws_tests.cmake).
if(NF_NODE AND NF_NPM)
  foreach(b uring epoll)
    foreach(mode wss_node_client wss_node_server)
      add_test(NAME tls_interop_${mode}.${b}
        COMMAND ${NF_NODE} ${NF_TLS_INTEROP}/tls_node.js ${mode}
                $<TARGET_FILE:tls_mkcerts> $<TARGET_FILE:ws_echo_server> $<TARGET_FILE:ws_client>)
      set_tests_properties(tls_interop_${mode}.${b} PROPERTIES TIMEOUT 60
        ENVIRONMENT "NF_BACKEND=${b}" FIXTURES_REQUIRED nf_node_ws)
    endforeach()
  endforeach()
else()
  add_test(NAME tls_interop_wss_node
    COMMAND sh -c "echo 'FAIL: node and npm are needed for the wss Node interop tests (Node 20)'; exit 1")
endif()

# Floods that make the server answer without reading the answers (issue 13):
# WebSocket pings and TLS 1.3 KeyUpdates, with a well-behaved peer alongside.
nf_add_test(test_flood integration/test_flood.c integration/tls_certs.c integration/helpers.c TIMEOUT 180)
target_link_libraries(test_flood PRIVATE OpenSSL::SSL)
