"""OCI hooks: programs run at lifecycle points with the container's state on stdin."""

from __future__ import annotations

import json
import sys

from dockyard.runtime.errors import OCIError

# Hooks whose failure aborts the operation; poststart and poststop only warn (runtime spec).
_FATAL = {"prestart", "createRuntime", "createContainer", "startContainer"}


def preload(spec: dict) -> None:
    """Import what hooks need while the host's files are reachable (before pivot_root)."""
    if spec.get("hooks"):
        import subprocess  # noqa: F401


def run_hooks(spec: dict, kind: str, state: dict) -> None:
    for hook in (spec.get("hooks") or {}).get(kind, []):
        try:
            _run_one(hook, state)
        except OCIError as error:
            if kind in _FATAL:
                raise OCIError(f"error running {kind} hook {hook.get('path')}: {error}") from None
            print(f"warning: {kind} hook {hook.get('path')}: {error}", file=sys.stderr)


def _run_one(hook: dict, state: dict) -> None:
    import subprocess  # only when there are hooks: it costs every start milliseconds

    path = hook.get("path")
    if not path:
        raise OCIError("hook without a path")
    args = hook.get("args") or [path]
    try:
        result = subprocess.run(
            args,
            executable=path,
            input=json.dumps(state).encode(),
            env=_env(hook.get("env")),
            capture_output=True,
            timeout=hook.get("timeout"),
        )
    except subprocess.TimeoutExpired:
        raise OCIError(f"timed out after {hook.get('timeout')}s") from None
    except OSError as error:
        raise OCIError(str(error)) from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise OCIError(f"exit status {result.returncode}: {detail}")


def _env(entries: list[str] | None) -> dict[str, str]:
    env = {}
    for entry in entries or []:
        key, _, value = entry.partition("=")
        env[key] = value
    return env
