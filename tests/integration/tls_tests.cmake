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
foreach(mode py_client py_server bad_peer s_client s_server)
  if(NOT NF_OPENSSL AND mode MATCHES "^s_")
    nf_add_missing_peer(tls_interop_${mode} "the openssl command is needed for ${mode}")
    continue()
  endif()
  nf_add_backend_test(tls_interop_${mode} TIMEOUT 60
    COMMAND /usr/bin/python3 ${NF_TLS_INTEROP}/tls_interop.py ${mode}
            $<TARGET_FILE:tls_mkcerts> $<TARGET_FILE:echo_server> $<TARGET_FILE:tls_client>)
endforeach()

# Node's ws over wss://, both ways (the ws@8 fixture of ws_tests.cmake).
if(NF_NODE AND NF_NPM)
  foreach(mode wss_node_client wss_node_server)
    nf_add_backend_test(tls_interop_${mode} TIMEOUT 60 FIXTURE nf_node_ws
      COMMAND ${NF_NODE} ${NF_TLS_INTEROP}/tls_node.js ${mode}
              $<TARGET_FILE:tls_mkcerts> $<TARGET_FILE:ws_echo_server> $<TARGET_FILE:ws_client>)
  endforeach()
else()
  nf_add_missing_peer(tls_interop_wss_node "node and npm are needed for the wss Node interop tests (Node 20)")
endif()

# Floods that make the server answer without reading the answers (issue 13):
# WebSocket pings and TLS 1.3 KeyUpdates, with a well-behaved peer alongside.
nf_add_test(test_flood integration/test_flood.c integration/tls_certs.c integration/helpers.c TIMEOUT 180)
target_link_libraries(test_flood PRIVATE OpenSSL::SSL)

# The filters' loop counters in their own per-loop records (issue 14).
nf_add_test(test_ul_stats integration/test_ul_stats.c integration/tls_certs.c integration/helpers.c TIMEOUT 60)
target_link_libraries(test_ul_stats PRIVATE OpenSSL::SSL)
