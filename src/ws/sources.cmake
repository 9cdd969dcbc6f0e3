# netframe — WebSocket codec (sans-I/O) and permessage-deflate on zlib.
# Included from the top-level CMakeLists.txt; paths are relative to the
# project root.
list(APPEND NF_SOURCES
  src/ws/frame.c
  src/ws/utf8.c
  src/ws/decoder.c
  src/ws/encoder.c
  src/ws/pmd.c
)
find_package(ZLIB REQUIRED)
list(APPEND NF_EXTRA_LIBS ZLIB::ZLIB)
list(APPEND NF_PC_EXTRA_REQUIRES zlib)
