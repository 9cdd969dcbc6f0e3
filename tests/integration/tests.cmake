# Loopback integration tests (public API only). Each is registered once per
# backend by nf_add_test (NAME.uring, NAME.epoll). Paths are relative to tests/.
set(NF_IT_HELPERS integration/helpers.c)

nf_add_test(test_echo               integration/test_echo.c               ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_many_conns         integration/test_many_conns.c         ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_peer_close         integration/test_peer_close.c         ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_peer_reset         integration/test_peer_reset.c         ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_connect_refused    integration/test_connect_refused.c    ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_timers             integration/test_timers.c             ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_post               integration/test_post.c               ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_cycles             integration/test_cycles.c             ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_idle_nobuf         integration/test_idle_nobuf.c         ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_slow_reader_queue  integration/test_slow_reader_queue.c  ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_half_close         integration/test_half_close.c         ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_keep_read          integration/test_keep_read.c          ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_listener_limit     integration/test_listener_limit.c     ${NF_IT_HELPERS} TIMEOUT 60)
nf_add_test(test_ipv6               integration/test_ipv6.c               ${NF_IT_HELPERS} TIMEOUT 60)
