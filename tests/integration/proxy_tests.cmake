# PROXY protocol parser and filter, and the reconnecting connector. Paths are
# relative to tests/. Included from tests/CMakeLists.txt.
nf_add_test(test_proxy_parse unit/test_proxy_parse.c TIMEOUT 30 ONE_BACKEND)
nf_add_test(test_proxy       integration/test_proxy.c       integration/helpers.c TIMEOUT 60)
nf_add_test(test_reconnect   integration/test_reconnect.c   integration/helpers.c TIMEOUT 60)
