# netframe — the TLS filter (OpenSSL 3's libssl). Included from the
# top-level CMakeLists.txt; paths are relative to the project root.
list(APPEND NF_SOURCES src/filter/tls_ctx.c src/filter/tls_conn.c)
find_package(OpenSSL 3.0 REQUIRED)
list(APPEND NF_EXTRA_LIBS OpenSSL::SSL)
list(APPEND NF_PC_EXTRA_REQUIRES libssl)
