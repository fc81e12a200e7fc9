#!/usr/bin/env bash
# `make run`: show the main job working on this machine.
# Until the daemon lands, that is a container started by dockyard-runtime from a busybox
# rootfs made from Debian's busybox-static, with Docker's default isolation.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
bundle=$(mktemp -d /tmp/dockyard-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
$PY - "$bundle" <<'PYEOF'
import json, sys
from pathlib import Path
from dockyard.image.rootfs import make_busybox_rootfs
from dockyard.runtime.spec import default_spec

bundle = Path(sys.argv[1])
make_busybox_rootfs(bundle / "rootfs")
script = (
    'echo "hello from $(hostname), pid $$, $(id)";'
    ' grep -E "^(CapEff|Seccomp|NoNewPrivs)" /proc/self/status;'
    ' echo "mount /proc:"; mount -t proc proc /mnt 2>&1 || true;'
    ' echo "processes:"; ps'
)
spec = default_spec(["sh", "-c", script], terminal=False)
spec["hostname"] = "dockyard-demo"
(bundle / "config.json").write_text(json.dumps(spec))
PYEOF
echo "+ dockyard-runtime run --bundle $bundle demo"
.venv/bin/dockyard-runtime run --bundle "$bundle" "demo-$$"
