# WebSocket server and client: loopback integration tests and interop with
# peers nobody here wrote (Python's websockets, Node's ws). Included from
# tests/unit/ws_tests.cmake; paths are relative to tests/.
nf_add_test(test_ws integration/test_ws.c integration/helpers.c TIMEOUT 120)

# Interop. Each test registers once per backend, like nf_add_test.
set(NF_INTEROP_DIR ${CMAKE_CURRENT_SOURCE_DIR}/interop)
set(NF_PY /usr/bin/python3)
foreach(b uring epoll)
  foreach(mode py_client py_server py_client_deflate py_server_deflate)
    add_test(NAME ws_interop_${mode}.${b}
      COMMAND ${NF_PY} ${NF_INTEROP_DIR}/py_interop.py ${mode}
              $<TARGET_FILE:ws_echo_server> $<TARGET_FILE:ws_client>)
    set_tests_properties(ws_interop_${mode}.${b} PROPERTIES TIMEOUT 60
      ENVIRONMENT "NF_BACKEND=${b}")
  endforeach()
  # permessage-deflate messages ended by a BFINAL block (RFC 7692 7.2.3.4),
  # from websockets with its compressor swapped for Z_FINISH, both ways
  foreach(mode bfinal_client bfinal_server)
    add_test(NAME ws_interop_py_${mode}.${b}
      COMMAND ${NF_PY} ${NF_INTEROP_DIR}/py_bfinal.py ${mode}
              $<TARGET_FILE:ws_echo_server> $<TARGET_FILE:ws_client>)
    set_tests_properties(ws_interop_py_${mode}.${b} PROPERTIES TIMEOUT 60
      ENVIRONMENT "NF_BACKEND=${b}")
  endforeach()
endforeach()

# Node's ws@8, installed into tests/interop/node_modules when missing.
find_program(NF_NODE node)
find_program(NF_NPM npm)
if(NF_NODE AND NF_NPM)
  add_test(NAME ws_interop_npm_install
    COMMAND sh -c "test -f node_modules/ws/package.json || ${NF_NPM} install --no-audit --no-fund --no-save --no-package-lock ws@8"
    WORKING_DIRECTORY ${NF_INTEROP_DIR})
  set_tests_properties(ws_interop_npm_install PROPERTIES TIMEOUT 300 FIXTURES_SETUP nf_node_ws)
  foreach(b uring epoll)
    foreach(mode node_client node_server node_client_deflate node_server_deflate
                 node_client_hybi8 node_server_hybi8)
      add_test(NAME ws_interop_${mode}.${b}
        COMMAND ${NF_NODE} ${NF_INTEROP_DIR}/node_interop.js ${mode}
                $<TARGET_FILE:ws_echo_server> $<TARGET_FILE:ws_client>)
      set_tests_properties(ws_interop_${mode}.${b} PROPERTIES TIMEOUT 60
        ENVIRONMENT "NF_BACKEND=${b}" FIXTURES_REQUIRED nf_node_ws)
    endforeach()
  endforeach()
else()
  # `make test` installs Node (make deps): without it the set-up is broken,
  # so say so with a failing test instead of registering nothing.
  add_test(NAME ws_interop_node
    COMMAND sh -c "echo 'FAIL: node and npm are needed for the Node ws interop tests (Node 20)'; exit 1")
endif()

# The bytes after the opening handshake's head, however the head is cut
# (issue 13 part 5b): raw plain and TLS peers in the test's thread.
nf_add_test(test_ws_split integration/test_ws_split.c integration/tls_certs.c integration/helpers.c TIMEOUT 300)
target_link_libraries(test_ws_split PRIVATE OpenSSL::SSL OpenSSL::Crypto)
nf_add_test(test_ws_write_limits integration/test_ws_write_limits.c integration/helpers.c TIMEOUT 60)
