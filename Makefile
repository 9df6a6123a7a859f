# Thin wrapper around Meson: the two set-up commands of the README
# (`make run`, `make test`) plus the targets they are made of.

BUILD      ?= build
ASAN_BUILD ?= build-asan
DEMO_DATA  ?= demo-data
PYTHON     ?= /usr/bin/python3
SQLITE3MC  := third_party/sqlite3mc/sqlite3.c

.PHONY: all deps build run test unit check-asan integration bench bench-store bench-smtp bench-submit bench-imap clean

all: build

deps:
	@scripts/deps.sh

$(SQLITE3MC): scripts/fetch-sqlite3mc.sh
	@scripts/fetch-sqlite3mc.sh third_party/sqlite3mc

# Meson only learns of a module folder that appears later on a reconfigure.
MESON_FILES := $(shell find src tests bench -name meson.build 2>/dev/null) meson.build

$(BUILD)/build.ninja: $(SQLITE3MC) $(MESON_FILES)
	@if [ -f $@ ]; then meson setup --reconfigure $(BUILD) >$(BUILD).setup.log || { cat $(BUILD).setup.log; exit 1; }; \
	else meson setup $(BUILD) --buildtype=debugoptimized >$(BUILD).setup.log || { cat $(BUILD).setup.log; exit 1; }; fi
	@touch $@

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

run: build
	@scripts/demo.sh $(BUILD)/src/bin/sealpost $(DEMO_DATA)

unit: build
	@meson test -C $(BUILD) --print-errorlogs --suite unit

$(ASAN_BUILD)/build.ninja: $(SQLITE3MC) $(MESON_FILES)
	@if [ -f $@ ]; then meson setup --reconfigure $(ASAN_BUILD) >$(ASAN_BUILD).setup.log || { cat $(ASAN_BUILD).setup.log; exit 1; }; \
	else meson setup $(ASAN_BUILD) --buildtype=debug \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null; fi
	@touch $@

check-asan: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN_BUILD) --print-errorlogs --suite unit

integration: build
	@SEALPOST_BIN=$(abspath $(BUILD)/src/bin/sealpost) $(PYTHON) -m pytest -q tests/integration

test: build unit check-asan integration

# Benchmarks print their figures; docs/performance.md records them.
bench: bench-store

bench-store: build
	@$(BUILD)/bench/store-bench

# Sealpost's MX versus a private Postfix instance (installs postfix).
bench-smtp: build
	@$(PYTHON) bench/smtp.py $(BUILD)

# Submission (465, TLS + AUTH + DKIM) and the outbound queue versus
# Postfix's queue, both relaying to smtp-sink (installs postfix).
bench-submit: build
	@$(PYTHON) bench/submit.py $(BUILD)

# Sealpost's IMAP versus Dovecot, plain and with mail_crypt (installs
# dovecot-imapd; run as root). BENCH_IMAP_ARGS: see bench/imap.py --help.
bench-imap: build
	@$(PYTHON) bench/imap.py --build $(BUILD) $(BENCH_IMAP_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
