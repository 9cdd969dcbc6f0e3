# pubsub_room (issue 15): the smallest fan-out server. Included from
# examples/CMakeLists.txt.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/pubsub_room.c)
  add_executable(pubsub_room pubsub_room.c)
  target_link_libraries(pubsub_room PRIVATE ${NF_EXAMPLES_LIB})
endif()
