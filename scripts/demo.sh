#!/usr/bin/env bash
# `make run`: show the main job working on this machine: the daemon starts (if it is not
# running yet), a busybox image is made locally from Debian's busybox-static, and containers
# run from it, driven by the dockyard CLI and by the unmodified docker CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKYARD=.venv/bin/dockyard
SOCKET=/run/dockyard/dockyard.sock
export DOCKYARD_HOST=unix://$SOCKET

if ! $DOCKYARD version >/dev/null 2>&1; then
    echo "+ starting dockyard daemon (log: /var/log/dockyard.log)"
    setsid $DOCKYARD daemon >>/var/log/dockyard.log 2>&1 < /dev/null &
    for _ in $(seq 100); do
        $DOCKYARD version >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
$DOCKYARD version

if ! $DOCKYARD image inspect busybox >/dev/null 2>&1; then
    echo "+ dockyard image bootstrap busybox"
    $DOCKYARD image bootstrap busybox
fi
$DOCKYARD images

echo "+ dockyard run --rm busybox ..."
$DOCKYARD run --rm --hostname demo busybox sh -c \
    'echo "hello from $(hostname), pid $$, $(id)"; grep -E "^(CapEff|Seccomp)" /proc/self/status'

if command -v docker >/dev/null; then
    echo "+ docker run --rm busybox ... (the docker CLI, DOCKER_HOST=$DOCKYARD_HOST)"
    DOCKER_HOST=$DOCKYARD_HOST docker run --rm busybox echo "hello from the docker CLI"
fi

echo "+ dockyard run -d, logs, stop, rm"
id=$($DOCKYARD run -d busybox sh -c 'for i in 1 2 3; do echo tick $i; sleep 0.2; done; sleep 60')
sleep 1
$DOCKYARD logs "$id"
$DOCKYARD ps
$DOCKYARD rm -f "$id" >/dev/null
echo "The daemon keeps running: $DOCKYARD ps -a, DOCKER_HOST=$DOCKYARD_HOST docker ..."
