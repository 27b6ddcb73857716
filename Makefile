# Wasla: the two commands a newcomer needs are `make run` and `make test`.
SWIFT ?= swift
APT_PACKAGES := libsqlite3-dev libssl-dev libcurl4-openssl-dev
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Release builds link the Swift runtime and Foundation statically: the binary runs on a machine without a Swift
# toolchain (it needs only libsqlite3, libcrypto and libcurl), and an idle server's RSS is 6 MiB smaller than
# with the shared runtime (31.9 vs 37.8 MiB, /proc/PID/status). They link with the toolchain's lld: gold prints a
# glibc link-time warning about mktemp inside the static Foundation, and the build has no warnings. The toolset
# file (-use-ld=lld for the link step too, which -Xswiftc does not reach) is written under .build.
# `make bench` hands the same flags to Benchmarks/run.sh.
RELEASE_TOOLSET := $(CURDIR)/.build/release-toolset.json
RELEASE := -c release --static-swift-stdlib --toolset $(RELEASE_TOOLSET)

.PHONY: deps build run demo test e2e torture bench tsan asan soak fuzz clean

# Installs the Debian packages whose headers are missing (and nothing when all are present).
deps:
	@missing=""; \
	[ -f /usr/include/sqlite3.h ] || missing="$$missing libsqlite3-dev"; \
	[ -f /usr/include/openssl/evp.h ] || missing="$$missing libssl-dev"; \
	{ [ -f /usr/include/curl/curl.h ] || ls /usr/include/*/curl/curl.h >/dev/null 2>&1; } || missing="$$missing libcurl4-openssl-dev"; \
	[ -f /usr/share/zoneinfo/UTC ] || missing="$$missing tzdata"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $$missing; \
	fi

$(RELEASE_TOOLSET):
	@mkdir -p $(dir $@) && echo '{"schemaVersion": "1.0", "swiftCompiler": {"extraCLIOptions": ["-use-ld=lld"]}}' > $@

build: deps $(RELEASE_TOOLSET)
	$(SWIFT) build $(RELEASE) --product wasla

# Starts the server on the embedded default: SQLite under ./data, port 8080 (PORT and .env override).
run: build
	@mkdir -p data
	./.build/release/wasla serve

# With `make run` serving in another terminal: loads three sample conversations through the real webhook path.
demo: build
	./.build/release/wasla demo

# The Supabase sync tests run against a real PostgreSQL (Debian's postgresql, started by the tests on a temporary
# directory and a loopback port): installed here when missing.
test: deps
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y postgresql; }
	$(SWIFT) build --build-tests
	@# CI shows only the end of the output: on a failure, the failing assertions are printed again last, and on a
	@# crash the test that was running and the crashed thread's frames (registers and images left out).
	@{ SWIFT_BACKTRACE=enable=yes,registers=none,images=none $(SWIFT) test --skip-build 2>&1; echo $$? > .build/test.rc; } \
		| tee .build/test.log
	@rc=$$(cat .build/test.rc); [ "$$rc" -eq 0 ] || { echo "== failed tests (from .build/test.log) =="; \
		grep -E ": error: |' failed \(" .build/test.log; \
		if grep -q "Program crashed" .build/test.log; then echo "== crash, during:"; \
		  grep -E "^Test Case '.*' started" .build/test.log | tail -1; \
		  awk '/Program crashed/{p=1} /^Backtrace took/{p=0} p' .build/test.log | head -80; fi; \
		exit "$$rc"; }
	$(SWIFT) build --product FuzzHarness
	./.build/debug/FuzzHarness Fuzz/corpus Fuzz/regressions

# The dashboard in a real browser: headless Chromium driven by Selenium through sign-in, inbox, a conversation,
# a reply (to a loopback fake Graph API) and sign-out; then pywa (a Cloud API client from PyPI) sends through the
# Graph-compatible proxy. Installs chromium, chromium-driver, selenium and pywa if missing.
e2e: deps
	@command -v chromedriver >/dev/null 2>&1 || { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium chromium-driver; }
	@python3 -c 'import selenium, pywa' 2>/dev/null || python3 -m pip install --quiet selenium pywa
	$(SWIFT) build --product wasla
	python3 Tests/e2e/e2e.py

# Zero acknowledged loss under kill -9: TORTURE_ROUNDS (default 20; 200 for the long mode) rounds of signed
# webhooks over keep-alive connections, the release binary SIGKILLed at a random moment in each, then a check that
# every acknowledged webhook was stored and processed exactly once; then the hostile framing cases of hardening.md §2
# against two reference parsers from PyPI (h11, httptools); then storage faults (a tmpfs that fills up, a read-only
# mount at start; needs root to mount, says so and passes otherwise); then slow and hostile clients (slowhttptest's
# slowloris, slow body and slow read, descriptor exhaustion, resets mid-response) with a probe that must be answered.
torture: build
	@python3 -c 'import h11, httptools' 2>/dev/null || python3 -m pip install --quiet h11 httptools
	python3 Tests/torture/kill9.py
	python3 Tests/torture/framing.py
	python3 Tests/torture/storage.py
	@command -v slowhttptest >/dev/null 2>&1 || { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y slowhttptest; }
	python3 Tests/torture/slow.py

bench: deps $(RELEASE_TOOLSET)
	@command -v nginx >/dev/null 2>&1 || { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y nginx-light; }
	SWIFT_RELEASE_FLAGS="$(RELEASE)" ./Benchmarks/run.sh

# The test suite under ThreadSanitizer, in its own build directory (the subprocess crash tests are skipped:
# they run the separately built binary).
tsan: deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan
	$(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan --skip CrashRecoveryTests --skip QueueCrashTests

# The test suite under AddressSanitizer, in its own build directory. LeakSanitizer checks the real binary: the servers
# the subprocess tests start (ASan-built too), with the suppression in Tests/lsan.supp, explained there.
# It is off in the test process itself: XCTest never frees its test case instances, so what they still hold is
# reported at exit. With every harness property cleared in tearDown that is 2.4 MB (it was 0.9 GB, nearly all of it
# the Deduplicator sets of applications the instances kept), the rest XCTest's own objects and 1.4 MB inside
# Foundation's String(contentsOfFile:) as the Postgres test helper calls it.
asan: deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	ASAN_OPTIONS=detect_leaks=0 WASLA_CHILD_ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan.supp \
		$(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan

# libFuzzer with AddressSanitizer (Fuzz/Harness) over the HTTP parser, the cookie/form/multipart parsers and the
# webhook payload, for FUZZ_SECONDS (default 120) from the seed corpus Fuzz/corpus. A crash is saved under
# Fuzz/found/; copy it to Fuzz/regressions/ and `make test` replays it from then on.
FUZZ_SECONDS ?= 120
# (The coverage flags are explicit: --sanitize=fuzzer alone left the Swift modules without counters here.)
fuzz: deps
	$(SWIFT) build -c release --product FuzzHarness --sanitize=fuzzer --sanitize=address -Xswiftc -DFUZZING \
	  -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp --scratch-path .build-fuzz
	@mkdir -p Fuzz/found .build-fuzz/corpus
	./.build-fuzz/release/FuzzHarness -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
	  -artifact_prefix=Fuzz/found/ -print_final_stats=1 .build-fuzz/corpus Fuzz/corpus

# SOAK_SECONDS (default 600) of mixed load with RSS and descriptors sampled (Tests/torture/soak.py).
soak: build
	python3 Tests/torture/soak.py

clean:
	rm -rf .build
