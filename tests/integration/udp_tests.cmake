# UDP (issue 8). test_udp runs on both backends (nf_add_test: NAME.uring,
# NAME.epoll, block mode) and again in poll and event modes (NF_TEST_MODE).
set(NF_UDP_HELPERS integration/helpers.c)
nf_add_test(test_udp integration/test_udp.c ${NF_UDP_HELPERS} TIMEOUT 60)
foreach(b uring epoll)
  foreach(m poll event)
    add_test(NAME test_udp.${b}.${m} COMMAND test_udp)
    set_tests_properties(test_udp.${b}.${m} PROPERTIES TIMEOUT 60
      ENVIRONMENT "NF_BACKEND=${b};NF_TEST_MODE=${m}")
  endforeach()
endforeach()
# io_uring without the buffer ring: the poll + recvmmsg fallback of old kernels
add_test(NAME test_udp.uring.fallback COMMAND test_udp)
set_tests_properties(test_udp.uring.fallback PROPERTIES TIMEOUT 60
  ENVIRONMENT "NF_BACKEND=uring;NF_TEST_NOBUFRING=1")

# Interop with Python's socket module (Debian's /usr/bin/python3), both directions.
nf_add_test(test_udp_python integration/test_udp_python.c ${NF_UDP_HELPERS} TIMEOUT 60)
foreach(b uring epoll)
  target_compile_definitions(test_udp_python PRIVATE
    NF_UDP_INTEROP_PY="${CMAKE_CURRENT_SOURCE_DIR}/interop/udp_interop.py")
  add_test(NAME udp_interop_py_client.${b}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/udp_interop.py client
            $<TARGET_FILE:udp_echo_server>)
  set_tests_properties(udp_interop_py_client.${b} PROPERTIES TIMEOUT 60 ENVIRONMENT "NF_BACKEND=${b}")
endforeach()

# SO_REUSEPORT UDP sockets on the loops of an nf_server thread pool.
nf_add_test(test_udp_server integration/test_udp_server.c ${NF_UDP_HELPERS} TIMEOUT 60)
