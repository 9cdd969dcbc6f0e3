# WebSocket examples (issue 6). Included from examples/CMakeLists.txt.
foreach(ex ws_echo_server ws_client)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${ex}.c)
    add_executable(${ex} ${ex}.c)
    target_link_libraries(${ex} PRIVATE netframe)
  endif()
endforeach()
# UDP examples (issue 8).
foreach(ex udp_echo_server udp_load)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${ex}.c)
    add_executable(${ex} ${ex}.c)
    target_link_libraries(${ex} PRIVATE netframe)
  endif()
endforeach()
