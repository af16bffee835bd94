# entraclaw — see README.md. `make demo` runs the runbook against the fake; `make test` runs the tests.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
PKGS  := ./...
CMDS  := $(notdir $(wildcard cmd/*))
TOOLS := entraclaw-provisioner-token entraclaw-migrate entraclaw-verify entraclaw-rollback
CROSS := darwin/amd64 darwin/arm64 windows/amd64

# -version is stamped from git (scripts/release.sh does the same for release archives);
# `go install …@version` falls back to the module's build info.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
DATE    := $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null)
CLIPKG  := github.com/entraclaw/entraclaw-cli/pkg/cli
LDFLAGS := -X $(CLIPKG).version=$(VERSION) -X $(CLIPKG).commit=$(COMMIT) -X $(CLIPKG).date=$(DATE)

# On Linux the tests need a Secret Service. When none is reachable, run them inside a private
# D-Bus session with a throw-away gnome-keyring (scripts/with-secret-service.sh). Without a
# session bus we do not probe at all: libdbus would autolaunch (and leak) a bus of its own.
ifeq ($(shell uname -s),Linux)
  # Pure Go on Linux: go-keyring talks D-Bus through godbus (no cgo), and a static binary
  # starts faster (no dynamic loader, no cgo init): see README "Performance".
  # BSD builds keep cgo (go-keyring needs it there).
  export CGO_ENABLED := 0
  KEYRING_WRAP := $(shell [ -n "$$DBUS_SESSION_BUS_ADDRESS" ] && dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                      org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true' || \
                    echo scripts/with-secret-service.sh)
endif

.PHONY: all build test test-windows test-real-hosts demo bench install install-fake cross release snapshot lint migrate fuzz clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# -parallel 6: most end-to-end tests wait on the fake's latency, propagation and kill
# points, not on the CPU, so three times GOMAXPROCS of them at once fits 2 cores.
# -p 4: four test binaries at once (go test's default is GOMAXPROCS), so that pkg/provision's
# tests, which mostly wait on the fake one after another, run beside pkg/cli's from the start
# instead of queueing behind the other packages.
TESTPARALLEL ?= 6
TESTPACKAGES ?= 4
test:
	$(KEYRING_WRAP) env GO=$(GO) scripts/go-test.sh -count=1 -p $(TESTPACKAGES) -parallel $(TESTPARALLEL) -timeout 10m -- $(PKGS)

# The Windows binaries under Wine (wine64, mingw-w64) against the fake: the runbook end to end.
test-windows:
	$(KEYRING_WRAP) scripts/test-windows.sh

# The fake as login.microsoftonline.com, graph.microsoft.com and management.azure.com in a
# private network namespace: the real az and azure-identity, and the four tools with no host
# setting, against it. Root only (skips otherwise, fails in CI).
test-real-hosts:
	scripts/test-real-hosts.sh

demo:
	scripts/demo.sh

# Go benchmarks that exec the real binaries against the fake; prints a Markdown table.
bench:
	@{ $(KEYRING_WRAP) $(GO) test -run '^$$' -bench 'Token|Verify|MigrateRerun' -benchtime 21x -timeout 20m ./pkg/cli/ && \
	   $(KEYRING_WRAP) $(GO) test -run '^$$' -bench 'MigrateFirstRun' -benchtime 3x -timeout 20m ./pkg/cli/ && \
	   $(GO) test -run '^$$' -bench 'FleetRenewal' -benchtime 3x -timeout 20m ./pkg/provision/ ; } | scripts/bench-table.sh

# The four tools into GOBIN (default $(go env GOPATH)/bin) and their man pages into MANDIR:
# by default share/man/man1 beside GOBIN, where man looks for pages of the commands on PATH.
# The fake only on request (make install-fake).
GOBINDIR := $(or $(GOBIN),$(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)
MANDIR   ?= $(abspath $(GOBINDIR)/..)/share/man/man1
install:
	$(GO) install -ldflags '$(LDFLAGS)' $(addprefix ./cmd/,$(TOOLS))
	$(GO) run ./scripts/packaging/gendocs -man-only -out '$(MANDIR)' -version '$(VERSION)' -date '$(or $(firstword $(subst T, ,$(DATE))),1970-01-01)'

install-fake:
	$(GO) install -ldflags '$(LDFLAGS)' ./cmd/entraclaw-fake-entra

# Release archives (linux, darwin, windows on amd64 and arm64), .deb and .rpm (linux), SHA256SUMS,
# and the Homebrew formula, Scoop and winget manifests made from it, into dist/.
# make release VERSION=v1.2.0 needs a clean tree and that tag at HEAD; make snapshot does not.
release:
	scripts/release.sh $(VERSION)

snapshot:
	scripts/release.sh -snapshot

cross:
	@set -e; for p in $(CROSS); do \
	  echo "cross-build $$p"; \
	  CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null ./cmd/... ; \
	  for c in $(CMDS); do CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o $(CURDIR)/dist/$${p%/*}-$${p#*/}/ ./cmd/$$c; done; \
	done

lint:
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	@if grep -rn --include='*.go' --exclude=errors.go --exclude='*_test.go' '"WARNING:' pkg/cli cmd; then echo "use the one warning prefix: \"name: warning: …\""; exit 1; fi
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The runbook's chained target: migrate, then wait until all four checks pass.
migrate:
	entraclaw-migrate && entraclaw-verify -wait 2m

# Each fuzz target for FUZZTIME (default 2m).
FUZZTIME ?= 2m
fuzz:
	$(GO) test ./pkg/state -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/certs -run '^$$' -fuzz FuzzParseBundle -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/entra -run '^$$' -fuzz FuzzDecodeJWT -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN) dist
