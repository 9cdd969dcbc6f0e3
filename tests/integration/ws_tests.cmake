# WebSocket server and client: loopback integration tests and interop with
# peers nobody here wrote (Python's websockets, Node's ws). Included from
# tests/unit/ws_tests.cmake; paths are relative to tests/.
nf_add_test(test_ws integration/test_ws.c integration/helpers.c TIMEOUT 120)

# Interop, once per backend (NAME.uring, NAME.epoll).
set(NF_INTEROP_DIR ${CMAKE_CURRENT_SOURCE_DIR}/interop)
set(NF_PY /usr/bin/python3)
foreach(mode py_client py_server py_client_deflate py_server_deflate)
  nf_add_backend_test(ws_interop_${mode} TIMEOUT 60
    COMMAND ${NF_PY} ${NF_INTEROP_DIR}/py_interop.py ${mode} $<TARGET_FILE:ws_echo_server> $<TARGET_FILE:ws_client>)
endforeach()
# permessage-deflate messages ended by a BFINAL block (RFC 7692 7.2.3.4),
# from websockets with its compressor swapped for Z_FINISH, both ways
foreach(mode bfinal_client bfinal_server)
  nf_add_backend_test(ws_interop_py_${mode} TIMEOUT 60
    COMMAND ${NF_PY} ${NF_INTEROP_DIR}/py_bfinal.py ${mode} $<TARGET_FILE:ws_echo_server> $<TARGET_FILE:ws_client>)
endforeach()

# Node's ws@8, installed into tests/interop/node_modules when missing.
if(NF_NODE AND NF_NPM)
  nf_add_npm_fixture(ws_interop_npm_install ${NF_INTEROP_DIR} nf_node_ws ws@8)
  foreach(mode node_client node_server node_client_deflate node_server_deflate node_client_hybi8 node_server_hybi8)
    nf_add_backend_test(ws_interop_${mode} TIMEOUT 60 FIXTURE nf_node_ws
      COMMAND ${NF_NODE} ${NF_INTEROP_DIR}/node_interop.js ${mode} $<TARGET_FILE:ws_echo_server> $<TARGET_FILE:ws_client>)
  endforeach()
else()
  nf_add_missing_peer(ws_interop_node "node and npm are needed for the Node ws interop tests (Node 20)")
endif()

# The bytes after the opening handshake's head, however the head is cut
# (issue 13 part 5b): raw plain and TLS peers in the test's thread.
nf_add_test(test_ws_split integration/test_ws_split.c integration/tls_certs.c integration/helpers.c TIMEOUT 300)
target_link_libraries(test_ws_split PRIVATE OpenSSL::SSL OpenSSL::Crypto)
nf_add_test(test_ws_write_limits integration/test_ws_write_limits.c integration/helpers.c TIMEOUT 60)
