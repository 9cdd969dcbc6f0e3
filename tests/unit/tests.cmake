nf_add_test(test_core unit/test_core.c TIMEOUT 30)
