# logd: build, install, package. See docs/OPERATIONS.md.
#
#   make                      release build of logd and logctl (.build/release)
#   sudo make install         install under PREFIX (default /usr/local); DESTDIR= stages it
#   make deb                  a .deb in dist/ (packaging/deb/build-deb.sh)
#   make test                 every test (scripts/test.sh)
#   make fuzz                 libFuzzer run of the wire decoder (CONTRIBUTING.md)
#   make man                  regenerate packaging/man/ from --help
#
# `make install` does not rebuild binaries that exist (so `make && sudo make install` works
# when root has no swift on PATH); run `make` after changing the sources.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
# /etc for PREFIX=/usr, else PREFIX/etc
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/logd
SYSTEMD_SYSTEM_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
SYSTEMD_USER_UNIT_DIR ?= $(PREFIX)/lib/systemd/user
SYSUSERS_DIR ?= $(PREFIX)/lib/sysusers.d

SWIFT ?= swift
# Static Swift runtime: the binaries need only libc, libstdc++, libuv and libyaml at run time.
SWIFT_RELEASE_FLAGS ?= -c release --static-swift-stdlib
BIN_DIR ?= .build/release
DEB_OUT ?= dist
FUZZ_SECONDS ?= 120

INSTALL ?= install
# The units name /usr/bin/logd, /etc/logd/ and /usr/share/doc/logd/; other prefixes are substituted.
UNIT_SED = sed -e 's|/usr/bin/logd|$(BINDIR)/logd|g' -e 's|/etc/logd/|$(SYSCONFDIR)/logd/|g' \
	-e 's|/usr/share/doc/logd/|$(DOCDIR)/|g'

.PHONY: all build install install-files uninstall deb test fuzz man bench

all: build

build:
	$(SWIFT) build $(SWIFT_RELEASE_FLAGS) --product logd
	$(SWIFT) build $(SWIFT_RELEASE_FLAGS) --product logctl

$(BIN_DIR)/logd $(BIN_DIR)/logctl:
	$(MAKE) build

install: $(BIN_DIR)/logd $(BIN_DIR)/logctl install-files

install-files:
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/logd $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR) \
		$(DESTDIR)$(SYSTEMD_USER_UNIT_DIR) $(DESTDIR)$(SYSUSERS_DIR)
	$(INSTALL) -m 0755 $(BIN_DIR)/logd $(BIN_DIR)/logctl $(DESTDIR)$(BINDIR)/
	for u in logd.service logd.socket; do \
		$(UNIT_SED) packaging/systemd/system/$$u > $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/$$u && \
		$(UNIT_SED) packaging/systemd/user/$$u > $(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/$$u && \
		chmod 0644 $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/$$u $(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/$$u || exit 1; \
	done
	$(INSTALL) -m 0644 packaging/systemd/logd.sysusers $(DESTDIR)$(SYSUSERS_DIR)/logd.conf
	# An existing config is kept; the example is always installed beside the docs.
	test -e $(DESTDIR)$(SYSCONFDIR)/logd/logd.yaml || \
		$(INSTALL) -m 0644 packaging/logd.yaml $(DESTDIR)$(SYSCONFDIR)/logd/logd.yaml
	$(INSTALL) -m 0644 packaging/logd.yaml $(DESTDIR)$(DOCDIR)/examples/logd.yaml
	$(INSTALL) -m 0644 packaging/man/logd.8 $(DESTDIR)$(MANDIR)/man8/logd.8
	$(INSTALL) -m 0644 packaging/man/logctl.1 $(DESTDIR)$(MANDIR)/man1/logctl.1
	$(INSTALL) -m 0644 README.md docs/OPERATIONS.md docs/CONFIGURATION.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/logd $(DESTDIR)$(BINDIR)/logctl \
		$(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/logd.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/logd.socket \
		$(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/logd.service $(DESTDIR)$(SYSTEMD_USER_UNIT_DIR)/logd.socket \
		$(DESTDIR)$(SYSUSERS_DIR)/logd.conf $(DESTDIR)$(MANDIR)/man8/logd.8 $(DESTDIR)$(MANDIR)/man1/logctl.1
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "kept $(SYSCONFDIR)/logd/ and the data under /var/lib/logd"

deb:
	bash packaging/deb/build-deb.sh $(DEB_OUT)

test:
	bash scripts/test.sh

fuzz:
	$(SWIFT) build --scratch-path .build-fuzz --sanitize=fuzzer --sanitize=address \
		-Xswiftc -sanitize=fuzzer,address --product wire-fuzz
	mkdir -p .build-fuzz/corpus fuzz-artifacts && cp vectors/wire-v1/*.bin .build-fuzz/corpus/
	.build-fuzz/debug/wire-fuzz -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=fuzz-artifacts/ .build-fuzz/corpus

man:
	bash packaging/man/generate.sh $(BIN_DIR)

# The benchmark (docs/PERFORMANCE.md): release build, prints a table, writes bench.json.
bench:
	swift build -c release --product logd
	swift build -c release --product logd-bench
	.build/release/logd-bench --json bench.json
