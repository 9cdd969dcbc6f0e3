# examples/chat_server (issue 6): the page over HTTP and the room over
# WebSocket from Python's websockets, and the page in headless Chromium
# (Debian chromium driven by npm playwright-core). Included from
# tests/CMakeLists.txt; every test registers once per backend.
set(NF_CHAT_PY ${CMAKE_CURRENT_SOURCE_DIR}/interop/chat_check.py)
set(NF_BROWSER_DIR ${CMAKE_CURRENT_SOURCE_DIR}/browser)
nf_add_backend_test(chat_http_ws TIMEOUT 60 COMMAND /usr/bin/python3 ${NF_CHAT_PY} $<TARGET_FILE:chat_server>)
nf_add_backend_test(chat_http_ws_deflate TIMEOUT 60
  COMMAND /usr/bin/python3 ${NF_CHAT_PY} $<TARGET_FILE:chat_server> --deflate)

# The browser test never skips: without node/npm, playwright-core or
# /usr/bin/chromium it fails with a message saying what is missing.
if(NF_NODE AND NF_NPM)
  nf_add_npm_fixture(chat_browser_npm_install ${NF_BROWSER_DIR} nf_playwright playwright-core@1)
  nf_add_backend_test(chat_browser TIMEOUT 90 FIXTURE nf_playwright
    COMMAND ${NF_NODE} ${NF_BROWSER_DIR}/chat_browser.js $<TARGET_FILE:chat_server>)
  nf_add_backend_test(chat_browser_deflate TIMEOUT 90 FIXTURE nf_playwright
    COMMAND ${NF_NODE} ${NF_BROWSER_DIR}/chat_browser.js $<TARGET_FILE:chat_server> --deflate)
else()
  nf_add_missing_peer(chat_browser "node and npm are needed for the browser test (Node 20)")
endif()

# The same server over TLS (https + wss on one port), verified against a test
# CA made by tls_mkcerts (tls_tests.cmake).
if(TARGET tls_mkcerts)
  nf_add_backend_test(chat_https TIMEOUT 60
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/interop/chat_https.sh $<TARGET_FILE:tls_mkcerts>
            $<TARGET_FILE:chat_server> ${NF_CHAT_PY})
endif()
