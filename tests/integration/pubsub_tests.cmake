# Pub/sub (docs/pubsub.md): the hub's unit tests over loopback pairs, and
# WebSocket subscribers from Python's websockets (both backends). Included
# from tests/CMakeLists.txt; sources are relative to tests/.
nf_add_test(test_pubsub unit/test_pubsub.c integration/helpers.c TIMEOUT 120)

# examples/pubsub_room with Python's websockets clients, one loop and three;
# with permessage-deflate (compressed once) on three.
foreach(t 1 3)
  nf_add_backend_test(pubsub_room_py_t${t} TIMEOUT 90
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/pubsub_room.py $<TARGET_FILE:pubsub_room> ${t})
endforeach()
nf_add_backend_test(pubsub_room_py_deflate TIMEOUT 90
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/pubsub_room.py $<TARGET_FILE:pubsub_room> 3 deflate)

# WebSocket subscribers: netframe's clients on one loop, a subscriber that
# never reads (RSS), nf_server with 3 loops and a publisher thread.
nf_add_test(test_pubsub_ws integration/test_pubsub_ws.c integration/helpers.c TIMEOUT 120)
