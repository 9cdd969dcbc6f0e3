# netframe — HTTP/1.1 head parser and writer (sans-I/O). Included from the
# top-level CMakeLists.txt; paths are relative to the project root.
list(APPEND NF_SOURCES
  src/http/http.c
  src/http/reader.c
  src/http/server.c
  src/http/response.c
  src/http/metrics.c
)
