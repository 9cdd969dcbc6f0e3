# TLS filter (issue 7): loopback tests with certificates made at test time,
# and interop with openssl s_client / s_server, Python's ssl and Node's ws.
# Included from tests/CMakeLists.txt; paths are relative to tests/.
nf_add_test(test_tls integration/test_tls.c integration/tls_certs.c integration/helpers.c TIMEOUT 120)

# Certificates for the interop scripts and bench/tls.sh.
add_executable(tls_mkcerts integration/tls_mkcerts.c integration/tls_certs.c)
target_link_libraries(tls_mkcerts PRIVATE OpenSSL::Crypto)
