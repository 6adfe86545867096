# mod_hello: build, run and test. See README.md.
#
#   make            build build/mod_hello.so (apxs)
#   make install    install it into Apache's module directory (apxs -i)
#   make run        serve the API on http://127.0.0.1:$(PORT) (foreground; Ctrl-C stops)
#   make test       install missing packages, build, run every test
#   make bench      the side-by-side benchmark (not part of test)
#   make clean      remove build products; make distclean also removes the run data

APXS     ?= apxs
PORT     ?= 8080
PYTHON   ?= /usr/bin/python3
BUILD    := build

SRC      := src/date.c src/validate.c src/json.c src/core.c src/metrics.c src/watchdog.c \
            src/store_dbd.c src/cache.c
GLUE     := mod_hello.c mod_hello_config.c mod_hello_cache.c
CORE_SRC := src/date.c src/validate.c src/json.c src/core.c src/metrics.c src/watchdog.c \
            src/store_dbd.c src/cache.c
HDRS     := $(wildcard include/hello/*.h)
WARN     := -Wall -Wextra -Werror

APR_INC  := $(shell $(APXS) -q APR_INCLUDEDIR 2>/dev/null)
HTTPD_INC:= $(shell $(APXS) -q INCLUDEDIR 2>/dev/null)
APR_CFLAGS := -I$(APR_INC) -DLINUX -D_REENTRANT -D_GNU_SOURCE
APR_LIBS := -lapr-1 -laprutil-1

.PHONY: all module deps install run test unit integration fuzz fuzz-smoke lint bench clean distclean \
        deb test-package diagram test-deploy fleet fleet-stop test-fleet test-valgrind

all: module

deps:
	@scripts/install-deps.sh build

module: $(BUILD)/mod_hello.so

# apxs compiles through libtool; its CFLAGS are Debian's hardening flags,
# ours add the warnings. Objects go to $(BUILD)/obj so the tree stays clean.
$(BUILD)/mod_hello.so: $(GLUE) mod_hello.h $(SRC) $(HDRS)
	@test -n "$(HTTPD_INC)" || scripts/install-deps.sh build
	@mkdir -p $(BUILD)/obj/src
	cp $(GLUE) mod_hello.h $(BUILD)/obj/ && cp $(SRC) $(BUILD)/obj/src/
	cd $(BUILD)/obj && $(APXS) -c -I$(CURDIR)/include \
	    -Wc,-Wall -Wc,-Wextra -Wc,-Werror -Wc,-std=gnu11 \
	    -o mod_hello.la $(GLUE) $(addprefix src/,$(notdir $(SRC))) -ljansson >build.log 2>&1 \
	    || { cat build.log; exit 1; }
	@# A new file, not the old one rewritten: a running httpd has it mapped.
	cp $(BUILD)/obj/.libs/mod_hello.so $@.tmp && mv -f $@.tmp $@

# LIBEXECDIR= installs somewhere else than Apache's module directory
# (apxs -S), e.g. a throwaway server root: make install LIBEXECDIR=/tmp/root/modules
install: $(BUILD)/mod_hello.so
	cd $(BUILD)/obj && $(APXS) -i $(if $(LIBEXECDIR),-S LIBEXECDIR=$(LIBEXECDIR)) -n hello mod_hello.la

# docs/architecture.svg from its Graphviz source.
diagram:
	@command -v dot >/dev/null || scripts/install-deps.sh docs
	dot -Tsvg docs/architecture.dot -o docs/architecture.svg

run: deps-run
	@$(MAKE) --no-print-directory module
	@PORT=$(PORT) scripts/run-dev

.PHONY: deps-run deps-test
deps-run:
	@scripts/install-deps.sh run
deps-test:
	@scripts/install-deps.sh test

# ---- tests ----------------------------------------------------------------

UNIT_TESTS := test_date test_validate test_json test_core test_metrics test_watchdog test_store_dbd \
              test_cache
UNIT_CFLAGS := -std=gnu11 -g -O1 $(WARN) -Iinclude -I$(HTTPD_INC) $(APR_CFLAGS)
UNIT_LIBS := -lcmocka -ljansson $(APR_LIBS) -ldl

$(BUILD)/unit/%: tests/unit/%.c $(CORE_SRC) $(HDRS) tests/unit/fake_store.h
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(CORE_SRC) $(UNIT_LIBS)

$(BUILD)/unit-asan/%: tests/unit/%.c $(CORE_SRC) $(HDRS) tests/unit/fake_store.h
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer -o $@ $< $(CORE_SRC) $(UNIT_LIBS)

unit: $(addprefix $(BUILD)/unit/,$(UNIT_TESTS)) $(addprefix $(BUILD)/unit-asan/,$(UNIT_TESTS))
	@# Every program runs, so one failure does not hide the others.
	@failed=""; for t in $(UNIT_TESTS); do $(BUILD)/unit/$$t || failed="$$failed $$t"; done; \
	for t in $(UNIT_TESTS); do \
	    ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $(BUILD)/unit-asan/$$t || failed="$$failed $$t(asan)"; done; \
	if [ -n "$$failed" ]; then echo "unit: FAILED:$$failed"; exit 1; fi

integration: $(BUILD)/mod_hello.so
	$(PYTHON) -m pytest -q tests/integration

# ---- fuzzing (libFuzzer, clang) -------------------------------------------

FUZZ_TARGETS := fuzz_body fuzz_date fuzz_path fuzz_core
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -Iinclude $(APR_CFLAGS)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_common.h $(CORE_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(HTTPD_INC) -o $@ $< $(CORE_SRC) -ljansson $(APR_LIBS) -ldl

# Each target runs FUZZ_SECONDS on a scratch corpus seeded from the checked-in
# one; any crash, leak or timeout fails the run and leaves the reproducer in
# $(BUILD)/fuzz/artifacts.
fuzz: $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
	@set -e; mkdir -p $(BUILD)/fuzz/artifacts; for t in $(FUZZ_TARGETS); do \
	    name=$${t#fuzz_}; mkdir -p $(BUILD)/fuzz/corpus/$$name; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    $(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=2048 \
	        -max_len=4096 -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/artifacts/$$name- \
	        $(BUILD)/fuzz/corpus/$$name tests/fuzz/corpus/$$name 2>$(BUILD)/fuzz/$$name.log \
	        || { tail -40 $(BUILD)/fuzz/$$name.log; exit 1; }; \
	    grep -E 'stat::number_of_executed_units|cov:' $(BUILD)/fuzz/$$name.log | tail -2; \
	done

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=5

# ---- static analysis and style --------------------------------------------

LINT_SRC := $(GLUE) $(SRC)

lint:
	clang-format --dry-run -Werror $(LINT_SRC) mod_hello.h $(HDRS) tests/fuzz/*.c tests/fuzz/*.h
	@# System headers are left out (cppcheck would misread APR's); APR's
	@# NULL-terminated apr_pstrcat is its documented convention.
	cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
	    --std=c11 --inline-suppr --suppress=missingIncludeSystem --suppress=varFuncNullUB \
	    -Iinclude $(LINT_SRC)
	clang-tidy --quiet $(LINT_SRC) -- -Iinclude -I$(HTTPD_INC) $(APR_CFLAGS)

# Deploys under load: five scripts/deploy runs (one a broken build that must
# be rolled back) on a throwaway httpd and MariaDB while wrk and a keep-alive
# client send GET and PUT. Builds its own modules with apxs.
test-deploy: deps-test
	$(MAKE) module
	$(PYTHON) -m pytest -q -s tests/deploy

# httpd -X (prefork: one process, one thread) under memcheck while the
# integration files below run against it; fails on any memcheck error or a
# byte definitely lost with the module on the stack. Logs and report.txt in
# build/valgrind. Graceful restarts need a parent process and are skipped.
VALGRIND_TESTS := test_contract test_put_body test_database test_config test_operations \
                  test_privileges
test-valgrind: deps-test
	$(MAKE) module
	rm -rf $(BUILD)/valgrind
	PYTHONPATH=tests/integration HELLO_VALGRIND_DIR=$(CURDIR)/$(BUILD)/valgrind \
	    $(PYTHON) -m pytest -q -p valgrind_plugin \
	    $(addprefix tests/integration/,$(addsuffix .py,$(VALGRIND_TESTS)))

test: deps-test
	$(MAKE) module
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) fuzz-smoke
	$(MAKE) integration
	$(MAKE) test-deploy
	$(MAKE) test-valgrind
	$(MAKE) test-fleet

# ---- the benchmark (docs/performance.md; not part of make test) -------------

.PHONY: bench bench-memory bench-profile bench-const deps-bench
deps-bench:
	@scripts/install-deps.sh bench

# The constant-answer handler the benchmark sets beside mod_hello (bench only).
bench-const: $(BUILD)/mod_bench_const.so
$(BUILD)/mod_bench_const.so: bench/mod_bench_const.c
	@mkdir -p $(BUILD)/obj-bench
	cp bench/mod_bench_const.c $(BUILD)/obj-bench/
	cd $(BUILD)/obj-bench && $(APXS) -c -Wc,-Wall -Wc,-Wextra -Wc,-Werror \
	    -o mod_bench_const.la mod_bench_const.c >build.log 2>&1 || { cat build.log; exit 1; }
	cp $(BUILD)/obj-bench/.libs/mod_bench_const.so $@.tmp && mv -f $@.tmp $@

# wrk against mod_hello, a static file of the same size on the same Apache,
# and the PHP + PDO peer on mod_php; writes bench/results.md and .json.
bench: deps-bench
	$(MAKE) module bench-const
	$(PYTHON) bench/bench.py run

# RSS of each child after 10,000 and 1,000,000 requests: bench/memory.md.
bench-memory: deps-bench
	$(MAKE) module bench-const
	$(PYTHON) bench/bench.py memory

# callgrind of httpd -X: instructions per request by object and function.
bench-profile: deps-bench
	$(MAKE) module bench-const
	$(PYTHON) bench/bench.py profile

# ---- a fleet on this machine (docs/architecture.md) ------------------------

# A 3-node MariaDB Galera cluster, two Apache nodes with the module and a
# front balancer (mod_proxy_balancer + mod_proxy_hcheck), all on 127.0.0.0/8,
# state under build/fleet/main. Prints the URLs (front: FLEET_PORT, 8090).
fleet: deps-test module
	FLEET_SKIP_BUILD=1 fleet/fleet-up

# Stops every fleet under build/fleet/; no process of theirs is left.
fleet-stop:
	fleet/fleet-down

# Read-your-writes, wsrep_sync_wait latency, concurrent writes, failover under
# load, on a fleet of its own that it stops at the end. About a minute.
test-fleet: deps-test
	$(MAKE) module
	$(PYTHON) -m pytest -q -s tests/fleet

# ---- packaging -------------------------------------------------------------

# The Debian package, built from a copy of the tree so the checkout stays clean.
deb:
	@scripts/install-deps.sh package
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/src
	tar --exclude=./build --exclude=./.git -cf - . | tar -C $(BUILD)/deb/src -xf -
	cd $(BUILD)/deb/src && dpkg-buildpackage -us -uc -b >../build.log 2>&1 \
	    || { tail -40 ../build.log; exit 1; }
	cp $(BUILD)/deb/libapache2-mod-hello_*.deb $(BUILD)/
	@ls -1 $(BUILD)/libapache2-mod-hello_*.deb

# Installs the package on this machine (root), enables it, serves a round
# trip from the system Apache, then purges it. Run by .ci/run after make test.
test-package: deb
	scripts/test-package $(BUILD)/libapache2-mod-hello_*.deb

clean:
	rm -rf $(BUILD)/obj $(BUILD)/unit $(BUILD)/unit-asan $(BUILD)/mod_hello.so

distclean:
	scripts/mariadb-sandbox stop $(BUILD)/run/mariadb 2>/dev/null || true
	rm -rf $(BUILD)
