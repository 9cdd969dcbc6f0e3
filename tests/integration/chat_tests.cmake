# examples/chat_server (issue 6): the page over HTTP and the room over
# WebSocket from Python's websockets, and the page in headless Chromium
# (Debian chromium driven by npm playwright-core). Included from
# tests/CMakeLists.txt; every test registers once per backend.
set(NF_CHAT_PY ${CMAKE_CURRENT_SOURCE_DIR}/interop/chat_check.py)
set(NF_BROWSER_DIR ${CMAKE_CURRENT_SOURCE_DIR}/browser)
foreach(b uring epoll)
  foreach(mode plain deflate)
    set(_flag "")
    set(_sfx "")
    if(mode STREQUAL "deflate")
      set(_flag "--deflate")
      set(_sfx "_deflate")
    endif()
    add_test(NAME chat_http_ws${_sfx}.${b}
      COMMAND /usr/bin/python3 ${NF_CHAT_PY} $<TARGET_FILE:chat_server> ${_flag})
    set_tests_properties(chat_http_ws${_sfx}.${b} PROPERTIES TIMEOUT 60 ENVIRONMENT "NF_BACKEND=${b}")
  endforeach()
endforeach()

# The browser test never skips: without node/npm, playwright-core or
# /usr/bin/chromium it fails with a message saying what is missing.
find_program(NF_NODE node)
find_program(NF_NPM npm)
if(NF_NODE AND NF_NPM)
  add_test(NAME chat_browser_npm_install
    COMMAND sh -c "test -f node_modules/playwright-core/package.json || ${NF_NPM} install --no-audit --no-fund --no-save --no-package-lock playwright-core@1"
    WORKING_DIRECTORY ${NF_BROWSER_DIR})
  set_tests_properties(chat_browser_npm_install PROPERTIES TIMEOUT 300 FIXTURES_SETUP nf_playwright)
  foreach(b uring epoll)
    foreach(mode plain deflate)
      set(_flag "")
      set(_sfx "")
      if(mode STREQUAL "deflate")
        set(_flag "--deflate")
        set(_sfx "_deflate")
      endif()
      add_test(NAME chat_browser${_sfx}.${b}
        COMMAND ${NF_NODE} ${NF_BROWSER_DIR}/chat_browser.js $<TARGET_FILE:chat_server> ${_flag})
      set_tests_properties(chat_browser${_sfx}.${b} PROPERTIES TIMEOUT 90
        ENVIRONMENT "NF_BACKEND=${b}" FIXTURES_REQUIRED nf_playwright)
    endforeach()
  endforeach()
else()
  add_test(NAME chat_browser COMMAND sh -c "echo 'FAIL: node and npm are needed for the browser test (Node 20)'; exit 1")
endif()

# The same server over TLS (https + wss on one port), verified against a test
# CA made by tls_mkcerts (tls_tests.cmake).
if(TARGET tls_mkcerts)
  foreach(b uring epoll)
    add_test(NAME chat_https.${b}
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/interop/chat_https.sh $<TARGET_FILE:tls_mkcerts>
              $<TARGET_FILE:chat_server> ${NF_CHAT_PY})
    set_tests_properties(chat_https.${b} PROPERTIES TIMEOUT 60 ENVIRONMENT "NF_BACKEND=${b}")
  endforeach()
endif()
