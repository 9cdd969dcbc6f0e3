# UDP (issue 8). test_udp runs on both backends (nf_add_test: NAME.uring,
# NAME.epoll, block mode) and again in poll and event modes (NF_TEST_MODE).
set(NF_UDP_HELPERS integration/helpers.c)
nf_add_test(test_udp integration/test_udp.c ${NF_UDP_HELPERS} TIMEOUT 60)
foreach(b ${NF_TEST_BACKENDS})
  foreach(m poll event)
    add_test(NAME test_udp.${b}.${m} COMMAND test_udp)
    set_tests_properties(test_udp.${b}.${m} PROPERTIES TIMEOUT 60
      ENVIRONMENT "NF_BACKEND=${b};NF_TEST_MODE=${m}")
  endforeach()
endforeach()
# io_uring without the buffer ring: the poll + recvmmsg fallback of old kernels
if(NF_WITH_URING)
  add_test(NAME test_udp.uring.fallback COMMAND test_udp)
  set_tests_properties(test_udp.uring.fallback PROPERTIES TIMEOUT 60
    ENVIRONMENT "NF_BACKEND=uring;NF_TEST_NOBUFRING=1")
endif()

# Interop with Python's socket module (Debian's /usr/bin/python3), both directions.
nf_add_test(test_udp_python integration/test_udp_python.c ${NF_UDP_HELPERS} TIMEOUT 60)
target_compile_definitions(test_udp_python PRIVATE
  NF_UDP_INTEROP_PY="${CMAKE_CURRENT_SOURCE_DIR}/interop/udp_interop.py")
nf_add_backend_test(udp_interop_py_client TIMEOUT 60
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/udp_interop.py client $<TARGET_FILE:udp_echo_server>)

# The example echoes what it receives (issue 13 part 4): udp_echo_server with
# its default options on every backend and mode (block with 2 threads), 0 to
# 65,507 bytes byte-identical, a flood from a peer that never reads (RSS
# growth under 16 MiB; ASan's quarantine keeps freed memory, so there the
# growth is only printed), and a truncated datagram refused, counted and
# logged with a smaller --recv-size.
set(nf_udp_example_flags)
if(NF_SANITIZE)
  set(nf_udp_example_flags --no-rss-check)
endif()
foreach(b ${NF_TEST_BACKENDS})
  foreach(m block poll event)
    set(nf_threads 1)
    if(m STREQUAL "block")
      set(nf_threads 2)
    endif()
    add_test(NAME udp_echo_example.${b}.${m}
      COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/udp_echo_example.py
              $<TARGET_FILE:udp_echo_server> ${b} ${m} ${nf_threads} ${nf_udp_example_flags})
    set_tests_properties(udp_echo_example.${b}.${m} PROPERTIES TIMEOUT 90)
  endforeach()
endforeach()

# SO_REUSEPORT UDP sockets on the loops of an nf_server thread pool.
nf_add_test(test_udp_server integration/test_udp_server.c ${NF_UDP_HELPERS} TIMEOUT 60)
