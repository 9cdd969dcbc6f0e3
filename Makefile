# netframe — the daily commands. `make help` lists them.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CI_SECONDS ?= 10
SOAK_SECONDS ?= 120
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=
DEBS := cmake pkg-config gcc make liburing-dev libc-ares-dev libssl-dev zlib1g-dev libcmocka-dev libuv1-dev python3 procps python3-websockets clang libclang-rt-14-dev valgrind haproxy openssl chromium libwebsockets-dev debhelper lintian curl

.PHONY: check-layers all deps build build-asan build-fuzz fuzz test-fuzz soak test test-plain test-asan demo bench bench-more bench-callgrind install clean help format

all: build

help:
	@echo "make deps    install missing Debian packages (apt-get)"
	@echo "make         build library, examples, tests and bench programs into $(BUILD)/"
	@echo "make test    deps + the layer check + both backends, then again under ASan+UBSan"
	@echo "make check-layers  the one rule: no upward include or call between src/ folders"
	@echo "make demo    deps + start chat_server (WebSocket room + its page), self-check, print the URL"
	@echo "make fuzz    every libFuzzer target for FUZZ_SECONDS (60) each, clang build in $(BUILD_FUZZ)/"
	@echo "make soak    the long soak: SOAK_SECONDS (120) of storm per backend, then valgrind"
	@echo "make bench   tables with the floor (raw io_uring, plain epoll) as a peer: TCP, WebSocket, TLS, UDP echo,"
	@echo "             at saturation and at a fixed rate (~25 min; BENCH_QUICK=1: 1 s runs, 1 repeat, ~3 min)"
	@echo "make bench-more  the older scripts: every completion mode, ping-pong, slow reader, TLS handshakes,"
	@echo "             WebSocket deflate / callgrind / idle memory, UDP with udp_load"
	@echo "make bench-callgrind  instructions per echoed message (valgrind)"
	@echo "make install cmake --install $(BUILD) (PREFIX=/usr/local)"

deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DNF_WERROR=ON $(CMAKE_FLAGS)

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_ASAN)/Makefile:
	cmake -S . -B $(BUILD_ASAN) -DNF_WERROR=ON -DNF_SANITIZE=ON -DNF_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)

build-asan: $(BUILD_ASAN)/Makefile
	cmake --build $(BUILD_ASAN) -j $(JOBS)

$(BUILD_FUZZ)/Makefile:
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DNF_WERROR=ON $(CMAKE_FLAGS)

build-fuzz: $(BUILD_FUZZ)/Makefile
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_all

# Both backends (each test is registered once per backend), then the same
# suite built with AddressSanitizer + UndefinedBehaviorSanitizer, then every
# fuzz target briefly (FUZZ_CI_SECONDS each) so a parser regression is caught;
# then the man pages and versions, the library used from outside the tree, the
# optional-part builds and the Debian packages.
test: deps
	$(MAKE) --no-print-directory check-layers
	$(MAKE) --no-print-directory test-plain
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-fuzz
	$(MAKE) --no-print-directory test-man
	$(MAKE) --no-print-directory test-consumer
	$(MAKE) --no-print-directory test-options
	$(MAKE) --no-print-directory test-deb

# The fuzz smoke tests (ctest NAME.smoke, clang build only) with the summary,
# then every target for FUZZ_CI_SECONDS.
test-fuzz: build-fuzz
	@cd $(BUILD_FUZZ) && ctest -j $(JOBS) -R '\.smoke$$' $(CTEST_REPORT) --output-junit $$(pwd)/ctest-junit.xml; \
	  rc=$$?; cd $(CURDIR) && ./scripts/test_summary.sh $(BUILD_FUZZ) $(BUILD_FUZZ)/ctest-junit.xml -R '\.smoke$$' || rc=1; \
	  [ $$rc -eq 0 ]
	./scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_CI_SECONDS)

fuzz: deps build-fuzz
	./scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

soak: deps build
	./scripts/soak.sh $(BUILD) $(SOAK_SECONDS)

# The one rule (docs/architecture.md): no include or nf_ call from a lower
# layer to a higher one, beyond the known edges in scripts/layers.allow.
check-layers: build
	python3 scripts/check_layers.py $(BUILD)

# ctest, then scripts/test_summary.sh over its JUnit file: how many ran, were
# skipped and why; fails when fewer ran than registered minus named skips.
# The output limits keep each test's whole output (a skip's reason) in it.
CTEST_REPORT = --output-on-failure --test-output-size-passed 262144 --test-output-size-failed 262144

test-plain: build
	@cd $(BUILD) && ctest -j $(JOBS) $(CTEST_REPORT) --output-junit $$(pwd)/ctest-junit.xml; \
	  rc=$$?; cd $(CURDIR) && ./scripts/test_summary.sh $(BUILD) $(BUILD)/ctest-junit.xml || rc=1; [ $$rc -eq 0 ]

test-asan: build-asan
	@cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest -j $(JOBS) $(CTEST_REPORT) --output-junit $$(pwd)/ctest-junit.xml; \
	  rc=$$?; cd $(CURDIR) && ./scripts/test_summary.sh $(BUILD_ASAN) $(BUILD_ASAN)/ctest-junit.xml || rc=1; [ $$rc -eq 0 ]

demo: deps build
	@./scripts/demo.sh $(BUILD)

bench: deps build
	@./bench/tables.sh $(BUILD) $(if $(filter 1,$(BENCH_QUICK)),--quick)

bench-more: deps build
	@./bench/run.sh $(BUILD)
	@echo
	@$(BUILD)/bench/nf_slow_reader --seconds 5
	@echo
	@./bench/tls.sh $(BUILD)
	@./bench/ws.sh $(BUILD)
	@./bench/udp.sh $(BUILD)

# Instructions per echoed message under valgrind --tool=callgrind: repeatable
# where wall-clock figures are not (about 5 minutes).
bench-callgrind: deps build
	@./bench/callgrind.sh $(BUILD)

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)

# The API reference: `make test` fails when a public function has no man page
# (scripts/check_man.sh, also the ctest man_pages); `make docs` renders the man
# pages and the guides to HTML in $(BUILD)/docs/html/ (index.html).
DEBS += mandoc pandoc
.PHONY: test-man docs
# Using the library from outside: the consumer test (tests/consumer/run.sh)
# builds the README's echo server against an install of $(BUILD) with
# pkg-config and find_package, and against the tree with add_subdirectory;
# test-deb builds the Debian packages, lints, installs them, runs the
# consumer test against /usr, and removes them (scripts/test_deb.sh).
# test-options builds an epoll-only library (NF_WITH_URING=OFF: no liburing
# header or link, every epoll test) and one without zlib (NF_WITH_ZLIB=OFF:
# permessage-deflate declined), scripts/test_options.sh.
.PHONY: test-consumer test-deb test-options
test-options:
	./scripts/test_options.sh $(BUILD)
test-consumer: build
	rm -rf $(BUILD)/consumer-prefix
	cmake --install $(BUILD) --prefix $(CURDIR)/$(BUILD)/consumer-prefix >/dev/null
	./tests/consumer/run.sh . $(BUILD)/consumer-prefix $(BUILD)/consumer
test-deb: deps
	./scripts/test_deb.sh $(CURDIR)/$(BUILD)/deb
test-man: $(BUILD)/Makefile
	CHECK_MAN_INCLUDES=$(BUILD)/include ./scripts/check_man.sh
	./scripts/check_version.sh
docs: deps
	./scripts/make_docs.py $(BUILD)/docs/html
