# HTTP/1.1 server (issue 16): raw sockets on loopback, both backends.
nf_add_test(test_http_server integration/test_http_server.c ${NF_IT_HELPERS} TIMEOUT 120)
# Real clients (curl, Python's http.client) against examples/http_server.
nf_add_backend_test(http_clients TIMEOUT 90
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/http_clients.py $<TARGET_FILE:http_server>)
