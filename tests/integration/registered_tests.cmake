# Issue 4: registered I/O (fixed files, zero-copy sends) and the read-buffer
# ring under load; both backends.
nf_add_test(test_registered integration/test_registered.c integration/helpers.c TIMEOUT 60)

# Every completion mode runs a subset of the integration suite (echo, large
# transfers, many connections, churn, peer close) on both backends: the same
# executables again with NF_MODE=poll|event, which sets the mode of every
# loop whose config leaves it at the default (the tests drive their loops
# with NF_RUN_ONCE; an event-mode loop run that way still works, its fd just
# goes unwatched). Registered as NAME.BACKEND.MODE.
foreach(t test_echo test_many_conns test_cycles test_peer_close test_registered)
  foreach(b ${NF_TEST_BACKENDS})
    foreach(m poll event)
      add_test(NAME ${t}.${b}.${m} COMMAND ${t})
      set_tests_properties(${t}.${b}.${m} PROPERTIES TIMEOUT 60 ENVIRONMENT "NF_BACKEND=${b};NF_MODE=${m}")
    endforeach()
  endforeach()
endforeach()

# The fixed file table is off by default: run echo, churn and many
# connections (more than the 64 slots: some fixed, the rest on plain fds)
# with one, and the echo with zero-copy sends from 4 KiB on.
if(NF_WITH_URING)
  foreach(t test_echo test_many_conns test_cycles)
    add_test(NAME ${t}.uring.fixed COMMAND ${t})
    set_tests_properties(${t}.uring.fixed PROPERTIES TIMEOUT 60 ENVIRONMENT "NF_BACKEND=uring;NF_FIXED_FILES=64")
  endforeach()
  add_test(NAME test_echo.uring.zc COMMAND test_echo)
  set_tests_properties(test_echo.uring.zc PROPERTIES TIMEOUT 60 ENVIRONMENT "NF_BACKEND=uring;NF_ZC_SEND_MIN=4096")
endif()
