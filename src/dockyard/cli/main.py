"""Entry point of `dockyard`. `dockyard daemon` runs the daemon; other commands are clients."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["daemon"]:
        # The daemon is not a client: load it only for this command (cli imports client only).
        from importlib import import_module

        return import_module("dockyard.api.server").main(argv[1:])
    from dockyard.cli.commands import run_cli

    return run_cli(argv)


if __name__ == "__main__":
    sys.exit(main())
