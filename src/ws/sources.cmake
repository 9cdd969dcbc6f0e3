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
# NF_WITH_ZLIB=OFF: pmd.c keeps the extension parser and declines every offer.
set(NF_HAVE_DEFLATE 0)
if(NF_WITH_ZLIB)
  find_package(ZLIB REQUIRED)
  list(APPEND NF_EXTRA_LIBS ZLIB::ZLIB)
  list(APPEND NF_PC_EXTRA_REQUIRES zlib)
  set(NF_HAVE_DEFLATE 1)
endif()

# The WebSocket server and client: a connection filter over TCP (conn.c, its
# send path in send.c),
# the handshakes and the server / client objects (handshake_server.c, handshake_client.c). SHA-1 and base64 for
# Sec-WebSocket-Accept come from OpenSSL's libcrypto.
list(APPEND NF_SOURCES
  src/ws/conn.c
  src/ws/send.c
  src/ws/handshake_server.c
  src/ws/handshake_client.c
  src/ws/hixie.c
)
find_package(OpenSSL REQUIRED)
list(APPEND NF_EXTRA_LIBS OpenSSL::Crypto)
list(APPEND NF_PC_EXTRA_REQUIRES libcrypto)
