# PROXY protocol parser and filter, and the reconnecting connector. Paths are
# relative to tests/. Included from tests/CMakeLists.txt.
nf_add_test(test_proxy_parse unit/test_proxy_parse.c TIMEOUT 30 ONE_BACKEND)
nf_add_test(test_proxy       integration/test_proxy.c       integration/helpers.c TIMEOUT 60)
nf_add_test(test_reconnect   integration/test_reconnect.c   integration/helpers.c TIMEOUT 60)

# Debian's HAProxy (send-proxy / send-proxy-v2) in front of echo_server --proxy.
# A missing haproxy fails the test (`make deps` installs it).
nf_add_backend_test(proxy_interop_haproxy TIMEOUT 60
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/haproxy_interop.py $<TARGET_FILE:echo_server>)
