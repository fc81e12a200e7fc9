"""`python -m dockyard.shim --zygote <socket> <daemon pid> <monitor binary>`: the daemon's
pre-warmed parent of container monitors (see zygote.py)."""

from __future__ import annotations

import sys

from dockyard.shim.zygote import serve


def main() -> None:
    if len(sys.argv) != 5 or sys.argv[1] != "--zygote":
        sys.exit(__doc__)
    serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])


if __name__ == "__main__":
    main()
