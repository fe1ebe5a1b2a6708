# Outpost — build, test and local testbed.
# Everything needs only Go and git: the Kubernetes testbed is built from the Go module proxy.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
export GOTOOLCHAIN := local

BIN        ?= $(CURDIR)/bin
GO         ?= go
# Each package's tests start their own local control plane; keep package parallelism at the
# core count so start-up does not starve on 2-core machines.
TEST_FLAGS ?= -count=1 -timeout=30m -p=2
PKGS       ?= ./...

.PHONY: all build testbin testbin-real-nodes deps deps-real-nodes e2e-real-nodes demo e2e e2e-kind chaos test vet lint fmt-check fuzz clean clean-testbin help bench bench-quick

all: build

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# grpcnotrace keeps golang.org/x/net/trace (and its html/template) out of the binaries,
# as the Dockerfile does: without it the linker keeps every method (see Dockerfile).
GO_TAGS    ?= grpcnotrace

build: ## build outpost and outpost-agent (the agent alone, what the DaemonSet runs) into bin/
	$(GO) build -tags $(GO_TAGS) -o $(BIN)/ ./cmd/outpost ./cmd/outpost-agent

testbin: ## build and cache etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok
	BIN=$(BIN) hack/testbin/build.sh

testbin-real-nodes: ## testbin plus kubelet, kube-proxy and the pause program, for clusters with real nodes
	BIN=$(BIN) REAL_NODES=1 hack/testbin/build.sh

e2e-real-nodes: deps-real-nodes testbin-real-nodes ## the e2e run on real nodes (root; docs/real-nodes.md): Outpost from its image on real kubelets
	OUTPOST_REAL_NODES=1 OUTPOST_TESTBIN_DIR=$(BIN) $(GO) test -count=1 -v -run 'TestRealNodes$$' ./e2e/ 2>&1 | awk '!/^=== (RUN|PAUSE|CONT|NAME)/'

deps-real-nodes: ## install containerd, runc and the CNI plugins (Debian packages, as root) for real nodes
	hack/deps.sh real-nodes

deps: ## install what the tests need besides Go and git (Chromium, PostgreSQL; as root with apt), or name it and stop
	hack/deps.sh

demo: build testbin ## local clusters, the hub with the sample repo, agents; prints the dashboard URL (Ctrl-C stops)
	OUTPOST_TESTBIN_DIR=$(BIN) $(BIN)/outpost dev demo

e2e: testbin ## the end-to-end suite alone (also part of make test)
	OUTPOST_TESTBIN_DIR=$(BIN) $(GO) test -count=1 -v ./e2e/ 2>&1 | awk '!/^=== (RUN|PAUSE|CONT|NAME)/'

# The fault-injection suite (e2e/chaos*_test.go, docs/reliability.md) at full scale;
# make test runs it at small scale. CHAOS_API_DOWN sets how long kube-apiserver stays
# stopped (default 30s). The figures (lines "CHAOS fault=...") end the output.
CHAOS_API_DOWN ?= 30s
chaos: testbin ## the fault-injection suite at full scale; figures for docs/reliability.md
	OUTPOST_CHAOS=full OUTPOST_CHAOS_API_DOWN=$(CHAOS_API_DOWN) OUTPOST_TESTBIN_DIR=$(BIN) \
	  $(GO) test -count=1 -timeout=30m -v -run '^TestChaos$$' ./e2e/ 2>&1 | tee $(BIN)/chaos.log | awk '!/^=== (RUN|PAUSE|CONT|NAME)/'
	@echo "figures:"; grep -o 'CHAOS fault=.*' $(BIN)/chaos.log || true

e2e-kind: ## the end-to-end suite on kind clusters (kind-configs/; needs docker, kind, kubectl; E2E_KIND_KEEP=1 keeps them)
	hack/e2e-kind.sh

vet: ## go vet
	$(GO) vet ./...

# staticcheck's default checks (everything but some style checks). A finding that is
# right to ignore gets a //lint:ignore <check> <reason> on its line; a check wrong for
# the whole code base would go into staticcheck.conf with its reason. The binary is
# built once per version into $(BIN) (never committed).
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)/staticcheck

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## staticcheck
	$(STATICCHECK) ./...

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# During the tests a fake git that records every call is first on PATH: no production
# code may execute git (kustomize would, for a remote base). Tests that use the git CLI
# as a reference client get the real one through OUTPOST_TEST_GIT (testenv.GitCLI).
FAKE_GIT := $(BIN)/fake-git
GIT_CALLS := $(BIN)/git-calls.log

test: deps testbin fmt-check vet lint ## all tests, against real local clusters (what CI runs)
	@rm -rf $(FAKE_GIT) $(GIT_CALLS); mkdir -p $(FAKE_GIT)
	@printf '#!/bin/sh\necho "git $$*  (in $$PWD)" >> %s\nexit 1\n' '$(GIT_CALLS)' > $(FAKE_GIT)/git; chmod +x $(FAKE_GIT)/git
	OUTPOST_TEST_GIT="$$(command -v git)" PATH="$(FAKE_GIT):$$PATH" GOFLAGS="$${GOFLAGS:-} -buildvcs=false" \
	  OUTPOST_TESTBIN_DIR=$(BIN) $(GO) test $(TEST_FLAGS) -v $(PKGS) 2>&1 | tee $(BIN)/test.log | awk '!/^=== (RUN|PAUSE|CONT|NAME)/'
	@if [ -s $(GIT_CALLS) ]; then echo "make test: git was executed during the tests (production code must never run git):"; cat $(GIT_CALLS); exit 1; fi
	@echo "make test: no git call recorded ($(GIT_CALLS))"

BENCH_FLAGS ?=
bench: testbin ## all benchmarks at full scale (< 60 min on 2 cores); writes bench/results/<date>.{json,md}
	OUTPOST_TESTBIN_DIR=$(BIN) $(GO) run ./bench -out bench/results $(BENCH_FLAGS)

bench-quick: testbin ## the benchmarks at small scale (< 10 min on 2 cores); writes bench/results/<date>-quick.{json,md}
	OUTPOST_TESTBIN_DIR=$(BIN) $(GO) run ./bench -quick -out bench/results $(BENCH_FLAGS)

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each (seed corpora also run in make test)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean: ## remove the outpost binary and test logs (keeps the testbed cache)
	rm -f $(BIN)/outpost $(BIN)/outpost-agent $(BIN)/test.log

clean-testbin: ## remove the cached testbed binaries
	rm -rf $(BIN)/k8s-* $(BIN)/etcd-* $(BIN)/kwok-*
