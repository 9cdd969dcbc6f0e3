# Unit tests of the sans-I/O HTTP head parser and the WebSocket codec.
# Included from tests/CMakeLists.txt; sources are relative to tests/.
nf_add_test(test_http unit/test_http.c ONE_BACKEND TIMEOUT 60)
nf_add_test(test_ws_frame unit/test_ws_frame.c ONE_BACKEND TIMEOUT 60)
nf_add_test(test_ws_utf8 unit/test_ws_utf8.c ONE_BACKEND TIMEOUT 60)
nf_add_test(test_ws_decoder unit/test_ws_decoder.c ONE_BACKEND TIMEOUT 60)
if(NF_WITH_ZLIB) # a build without zlib has no permessage-deflate to test
  nf_add_test(test_ws_pmd unit/test_ws_pmd.c ONE_BACKEND TIMEOUT 60)
endif()
# The server and client over TCP, and interop (a file of its own).
include(${CMAKE_CURRENT_SOURCE_DIR}/integration/ws_tests.cmake OPTIONAL)
