# metalk8s — build, test, lab.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/metalk8s

.PHONY: all build test unit vet clean deps demo

# Debian packages the tests use: Ansible (the reference for inventories),
# OpenSSH (the fleet of real servers), iproute2 (network namespaces).
DEBS := ansible-core python3-yaml openssh-server openssh-client iproute2 sudo procps git make

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/metalk8s

vet:
	$(GO) vet ./...

# The whole suite: unit tests, ansible-inventory comparisons, and the
# integration tests on the sshd fleet (these need root; see .ci/run).
test: vet
	$(GO) test -count=1 -timeout 30m ./...

unit:
	$(GO) test -count=1 -short ./...

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go is missing: install Go 1.22 or newer" >&2; exit 1; }

# The main job. Until the VM lab exists (issue 5) it shows what metalk8s
# reads from the bundled example inventory.
demo: build
	$(BIN) inventory --check examples/hosts.ini
	$(BIN) inventory --list examples/hosts.ini

clean:
	rm -rf bin
