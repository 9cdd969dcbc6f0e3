# WebSocket examples (issue 6). Included from examples/CMakeLists.txt.
foreach(ex ws_echo_server ws_client tls_client)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${ex}.c)
    add_executable(${ex} ${ex}.c)
    target_link_libraries(${ex} PRIVATE ${NF_EXAMPLES_LIB})
  endif()
endforeach()

# chat_server (issue 6): a broadcast room that serves its own page. The page
# is kept as HTML (chat_page.html) and embedded as a C array at configure
# time; editing it re-runs the configure step.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/chat_server.c)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/chat_page.html)
  file(READ ${CMAKE_CURRENT_SOURCE_DIR}/chat_page.html _nf_page HEX)
  string(LENGTH "${_nf_page}" _nf_page_hexlen)
  math(EXPR _nf_page_len "${_nf_page_hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _nf_page "${_nf_page}")
  string(REGEX REPLACE "((0x..,){16})" "\\1\n" _nf_page "${_nf_page}")
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/chat_page.h.tmp
    "/* generated from examples/chat_page.html by examples/more.cmake */\n"
    "static const char chat_page[] = {\n${_nf_page}0};\n"
    "static const size_t chat_page_len = ${_nf_page_len};\n")
  configure_file(${CMAKE_CURRENT_BINARY_DIR}/chat_page.h.tmp ${CMAKE_CURRENT_BINARY_DIR}/chat_page.h COPYONLY)
  add_executable(chat_server chat_server.c)
  target_include_directories(chat_server PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(chat_server PRIVATE ${NF_EXAMPLES_LIB})
endif()

# UDP examples (issue 8).
foreach(ex udp_echo_server udp_load)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${ex}.c)
    add_executable(${ex} ${ex}.c)
    target_link_libraries(${ex} PRIVATE ${NF_EXAMPLES_LIB})
  endif()
endforeach()
