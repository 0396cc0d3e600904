# fcgi_sse build. `make` builds build/fcgi_sse; `make test` runs the unit
# tests under ASan+UBSan and then the integration tests behind a real
# lighttpd; `make run` serves the whole stack on http://127.0.0.1:8080/.

VERSION  := 0.1.0
CC       ?= cc
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
EPOCH    := $(shell git log -1 --format=%ct 2>/dev/null || date +%s)

WARNINGS := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wvla \
            -Wformat=2 -Wformat-security -Wshadow -Wpointer-arith -fno-common
WERROR   ?= -Werror
OPT      ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -DFCGI_SSE_VERSION='"$(VERSION)"' \
            -DBUILD_COMMIT='"$(COMMIT)"' -DBUILD_EPOCH=$(EPOCH)
CFLAGS   += -std=c11 $(OPT) $(WARNINGS) $(WERROR) -pthread
# benchmarks build variants into a directory of their own:
# make BUILD=build/<variant> BENCH_CPPFLAGS=-D... build/<variant>/fcgi_sse
CPPFLAGS += $(BENCH_CPPFLAGS)
LDLIBS   += -lfcgi -ljson-c -lhiredis -lsqlite3 -lpq -lcrypto -pthread
# libpq-fe.h (Debian's libpq-dev puts it under /usr/include/postgresql)
CPPFLAGS += -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)

# SANITIZE=address,undefined builds everything into build/san/ instead.
ifneq ($(SANITIZE),)
  BUILD  := build/san
  CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=$(SANITIZE)
else
  BUILD  := build
  # the hardening Debian's own packages get (dpkg-buildflags): checked
  # string and memory calls, a stack protector, relocations read-only
  # after start; not with the sanitizers, which bring checks of their own
  CFLAGS += -D_FORTIFY_SOURCE=2 -fstack-protector-strong
  LDFLAGS += -Wl,-z,relro -Wl,-z,now
endif

# Modules: one folder each; leaf modules first.
CORE_SRC := $(wildcard core/*.c)
MOD_SRC  := $(wildcard versioning/*.c sse/*.c auth/*.c session/*.c cache/*.c admin/*.c \
                       store/*.c redis/*.c protect/*.c)
API_SRC  := $(wildcard api/*.c)
LIB_SRC  := $(CORE_SRC) $(MOD_SRC) $(API_SRC)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: FORCE all test unit integration integration-san run clean docs check-docs valgrind deps \
        build-deps bench-auth test-fresh test-deploy test-js test-e2e fuzz fuzz-ci soak

all: $(BUILD)/fcgi_sse

# Every target that compiles installs the missing build packages first
# (order-only: a fresh Debian machine needs no step before `make`); where it
# cannot (not root, no sudo), deps.sh names the apt-get command and fails.
build-deps:
	@deploy/deps.sh build

$(BUILD)/fcgi_sse: $(BUILD)/obj/fcgi_sse.o $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The build stamp (commit, epoch) is compiled into fcgi_sse.o: rebuild it
# when HEAD moves, not only when fcgi_sse.c changes.
$(BUILD)/stamp: FORCE | build-deps
	@mkdir -p $(BUILD)
	@echo '$(COMMIT) $(EPOCH)' | cmp -s - $@ || echo '$(COMMIT) $(EPOCH)' > $@
$(BUILD)/obj/fcgi_sse.o: $(BUILD)/stamp
FORCE:

$(BUILD)/unit_tests: $(UNIT_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcunit

$(BUILD)/obj/%.o: %.c | build-deps
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Installs what building and testing need (Debian packages), when missing.
deps:
	@deploy/deps.sh build test

unit: deps
	$(MAKE) SANITIZE=address,undefined build/san/unit_tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  tests/unit/run.sh build/san/unit_tests

# INTEGRATION_SKIP: tests to leave out, by part of their name (test-fresh's
# root leaves out the fault tests and the Sentinel failovers, which the
# host has just run).
INTEGRATION_SKIP ?=
integration: deps all
	python3 tests/integration/run.py --binary $(BUILD)/fcgi_sse $(foreach t,$(INTEGRATION_SKIP),--skip $(t))

# The integration tests again, against a server built with ASan+UBSan: a
# sanitizer report from any fcgi_sse process (written under build/san/reports,
# or to its front server's log, the process dying) fails. Leaks are the unit
# tests' and valgrind's business; the RSS test measures ASan, so it is skipped.
# This run keeps its store in PostgreSQL (a private cluster, a database per
# fcgi_sse: tests/pgcluster.py), the plain one in SQLite: the whole suite
# meets both backends at no extra cost. The Sentinel failovers (a minute,
# nearly all of it the sentinels' own 10 s checks) run in the plain pass
# only; their code runs under the sanitizers in the unit tests.
integration-san: deps
	$(MAKE) SANITIZE=address,undefined build/san/fcgi_sse
	rm -rf build/san/reports && mkdir -p build/san/reports
	@# mod_fcgid's processes run as www-data and write their reports here too
	chmod 1777 build/san/reports
	ASAN_OPTIONS=detect_leaks=0:log_path=$(CURDIR)/build/san/reports/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(CURDIR)/build/san/reports/ubsan \
	  FCGI_SSE_TEST_STORE=postgres \
	  python3 tests/integration/run.py --binary build/san/fcgi_sse --skip leave_memory_where_it_was \
	    --skip sentinel_
	@if ls build/san/reports/* >/dev/null 2>&1; then cat build/san/reports/*; \
	  echo "sanitizer reports above"; exit 1; fi

# INTEGRATION_SAN=0 leaves out the second pass of the integration suite
# (the sanitizer build, on PostgreSQL), MULTIHOST=0 the multi-host test:
# test-fresh's root does, after the host has run them (tests/fresh/inside.sh).
INTEGRATION_SAN ?= 1
MULTIHOST ?= 1
test: deps
	$(MAKE) unit
	$(MAKE) fuzz-ci
	$(MAKE) integration
	$(if $(filter 1,$(INTEGRATION_SAN)),$(MAKE) integration-san,@echo "integration-san: left out (INTEGRATION_SAN=$(INTEGRATION_SAN))")
	$(MAKE) test-deploy
	$(if $(filter 1,$(MULTIHOST)),$(MAKE) test-multihost,@echo "test-multihost: left out (MULTIHOST=$(MULTIHOST))")
	$(MAKE) test-js
	$(MAKE) test-e2e
	$(MAKE) soak
	$(MAKE) check-docs

# The browser client's unit tests (clients/js): node's own test runner,
# fake timers and a fake EventSource of the tests' own (node 18 and 20).
test-js: deps
	node --test clients/js/test/

# The dashboard's end-to-end tests in Debian's Chromium, driven by
# playwright-core from npm (tests/e2e/package-lock.json), against lighttpd,
# two fcgi_sse processes and Redis.
test-e2e: deps all
	tests/e2e/run.sh

# Every setup of deploy/ (lighttpd socket, bin-path, with mod_deflate, over
# HTTP/2 and HTTP/2 + TLS; Apache mod_fcgid, mod_proxy_fcgi, over HTTP/2 and
# HTTP/2 + TLS; spawn-fcgi under supervisord, runit and systemd's socket
# units; the standalone systemd unit), each started from its files and put
# through the same user scenario (tests/deploy/), one line per setup.
test-deploy: deps all
	python3 tests/deploy/run.py --binary $(BUILD)/fcgi_sse

# Several hosts on one machine (tests/multihost/, docs/SCALING.md): network
# namespaces h1, h2, h3 (lighttpd + fcgi_sse each) and core (PostgreSQL,
# a Redis master and replica, three sentinels) on a bridge; fan-out, a host
# cut off, a host killed, Redis failovers and revocation, checked from the
# clients' side. Needs root.
.PHONY: test-multihost
test-multihost: deps all
	python3 tests/multihost/run.py --binary $(BUILD)/fcgi_sse

# The README's two commands on a brand-new minimal Debian 12 root (mmdebstrap,
# minbase + git + make): make run (health, a login, an event on a stream
# through lighttpd, then a clean stop), then make test. Nothing is cached.
test-fresh:
	@deploy/deps.sh fresh
	tests/fresh/run.sh

# The soak (tests/soak/): a minute of streams opened and closed, resumes,
# publishes and API traffic from several tenants, first against the
# ASan+UBSan build (LeakSanitizer at exit), then under valgrind (its heap
# at two quiet points, definite leaks at exit); the open files and RSS must
# stay flat over the second half. SOAK_SECONDS per mode (at least 40; the
# RSS slope is judged from 60);
# SOAK_MODES the modes, in order (none: no soak).
SOAK_SECONDS ?= 60
SOAK_MODES ?= asan valgrind
soak: deps
ifneq ($(filter asan,$(SOAK_MODES)),)
	$(MAKE) SANITIZE=address,undefined build/san/fcgi_sse
	python3 tests/soak/soak.py --mode asan --binary build/san/fcgi_sse --seconds $(SOAK_SECONDS)
endif
ifneq ($(filter valgrind,$(SOAK_MODES)),)
	$(MAKE) build/fcgi_sse
	python3 tests/soak/soak.py --mode valgrind --binary build/fcgi_sse --seconds $(SOAK_SECONDS)
endif

# Runs the unit tests under valgrind; any error it reports fails.
valgrind: $(BUILD)/unit_tests
	tests/unit/run.sh valgrind --error-exitcode=1 --leak-check=full \
	  --errors-for-leak-kinds=definite $(BUILD)/unit_tests

# run.sh installs what building and serving need, then builds: nothing may
# compile before the packages are there.
run:
	deploy/run.sh

docs: all
	{ sed -n '1,/<!-- generated below -->/p' docs/CONFIG.md; $(BUILD)/fcgi_sse --describe-config; } \
	  > docs/CONFIG.md.new && mv docs/CONFIG.md.new docs/CONFIG.md

# The configuration reference must be what the binary says it is.
check-docs: all
	@$(BUILD)/fcgi_sse --describe-config > $(BUILD)/config-table.md
	@sed -n '/<!-- generated below -->/,$$p' docs/CONFIG.md | tail -n +2 > $(BUILD)/config-doc.md
	@diff -u $(BUILD)/config-doc.md $(BUILD)/config-table.md \
	  || { echo "docs/CONFIG.md is stale: run 'make docs'"; exit 1; }
	@echo "docs/CONFIG.md matches the binary"
	@want=$$(sed -n 's/^server.max-fds *= *\([0-9]*\).*/\1/p' deploy/lighttpd/base.conf); \
	  if grep -o 'max-fds = [0-9]*' docs/DEPLOY.md | grep -vqx "max-fds = $$want"; then \
	    echo "docs/DEPLOY.md names a server.max-fds other than base.conf's $$want"; exit 1; fi
	@echo "docs/DEPLOY.md matches deploy/lighttpd/base.conf"

clean:
	rm -rf build
# Benchmark programs: one C file each, linked with the application's objects.
BENCH_BIN := bench/jwt_bench bench/session_bench bench/publish_bench bench/floor bench/api_floor \
             bench/metrics_bench bench/peerwatch_bench
$(BENCH_BIN): bench/%: bench/%.c $(LIB_OBJ)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Auth figures: token verification and session lookups (starts its own
# redis-server on a free loopback port).
bench-auth: all bench/jwt_bench bench/session_bench
	bench/auth.sh

# ---- Debian package (issue #13): make deb, make test-deb ------------------
# deb: build/fcgi-sse_<version>_<arch>.deb from the plain build (stripped),
# packaged by deploy/debian/build.sh (dpkg-shlibdeps, dpkg-gencontrol,
# dpkg-deb --root-owner-group; no debhelper). test-deb: lintian on it, then
# it is installed with apt on a fresh Debian 12 root (mmdebstrap) and must
# serve a login through Apache there, then purge cleanly (tests/deb/run.sh).
.PHONY: deb test-deb
deb: $(BUILD)/fcgi_sse
	@[ -z "$(SANITIZE)" ] || { echo "make deb: packages the plain build; unset SANITIZE"; exit 1; }
	@deploy/deps.sh build deb
	@deploy/debian/build.sh $(VERSION) $(BUILD)/fcgi_sse build

test-deb:
	@deploy/deps.sh build deb
	tests/deb/run.sh
# ---- end of the Debian package block ---------------------------------------
include fuzz/fuzz.mk
