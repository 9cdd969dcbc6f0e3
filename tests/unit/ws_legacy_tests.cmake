# WebSocket legacy drafts (Hixie-76), control-frame priority, memory and
# bad-input stress. Included from tests/CMakeLists.txt; paths relative to tests/.
nf_add_test(test_ws_hixie unit/test_ws_hixie.c ONE_BACKEND TIMEOUT 60)
nf_add_test(test_ws_hixie_it integration/test_ws_hixie.c integration/helpers.c TIMEOUT 60)
nf_add_test(test_ws_priority integration/test_ws_priority.c integration/helpers.c TIMEOUT 60)
nf_add_test(test_ws_stress integration/test_ws_stress.c integration/helpers.c TIMEOUT 120)
target_link_libraries(test_ws_stress PRIVATE OpenSSL::Crypto)
nf_add_test(test_ws_rest integration/test_ws_rest.c integration/helpers.c TIMEOUT 60)
