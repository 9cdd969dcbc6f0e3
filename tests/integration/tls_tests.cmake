# TLS filter (issue 7): loopback tests with certificates made at test time,
# and interop with openssl s_client / s_server, Python's ssl and Node's ws.
# Included from tests/CMakeLists.txt; paths are relative to tests/.
nf_add_test(test_tls integration/test_tls.c integration/tls_certs.c integration/helpers.c TIMEOUT 120)
