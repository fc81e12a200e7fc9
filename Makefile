# The two commands of the README: `make run` and `make test`, as root on Debian bookworm.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages the project needs: the runtime's kernel tools, the reference runtime
# the tests compare against, the busybox and Debian rootfs makers, skopeo, which the
# image tests use as an independent reader and writer of image archives, and libc6-dev,
# for the static C probe the runtime tests compile (gcc only recommends it); docker-registry
# and apache2-utils (htpasswd) give the login tests a real registry with basic auth; tini is
# the init behind --init; openssl makes the TLS tests' certificates; iperf3 is for bench/.
APT_PACKAGES := python3 python3-venv python3-dev gcc libc6-dev libseccomp2 runc busybox-static \
	iproute2 nftables debootstrap procps util-linux skopeo tini docker-registry apache2-utils \
	openssl iperf3 tar
STAMP := $(VENV)/.installed
# The per-container monitor is a small C program (src/dockyard/shim/c/monitor.c says why),
# linked statically: fewer private pages per container than with the dynamic loader.
SHIM := $(VENV)/bin/dockyard-shim
SHIM_SOURCES := $(wildcard src/dockyard/shim/c/*.[ch])

.PHONY: install run test lint bench clean

# Byte-compile on every install: with PYTHONDONTWRITEBYTECODE set, each start would recompile.
install: $(STAMP) $(SHIM)
	@$(PY) -m compileall -q src >/dev/null

$(SHIM): $(SHIM_SOURCES) $(STAMP)
	gcc -O2 -static -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion -Werror \
		-o $@ $(filter %.c,$(SHIM_SOURCES))

$(STAMP): pyproject.toml Makefile
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: install
	@bash scripts/demo.sh

lint: install
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts

test: lint
	$(VENV)/bin/pytest tests

bench: install
	@for b in bench/*/run; do echo "== $$b"; PATH=$(CURDIR)/$(VENV)/bin:$$PATH $$b; done

clean:
	rm -rf $(VENV) build *.egg-info
