# HTTP/1.1 message layer and server (issue 16). Paths relative to tests/.
nf_add_test(test_http_reader unit/test_http_reader.c ONE_BACKEND TIMEOUT 120)
