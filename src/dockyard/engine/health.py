"""Healthchecks: Docker's probe loop, run inside running containers through the runtime's exec.

Rules follow dockerd (daemon/health.go): the first probe runs one Interval after start; a
zero exit is healthy; other exits and timeouts (-1) add to FailingStreak, except while the
container has never been healthy and is within its StartPeriod; Retries failures in a row make
it unhealthy. The last five results are kept in State.Health.Log, each Output cut to 4 KiB.
A status change publishes `health_status: <status>`. When the monitor stops because the
container stops, the status becomes "unhealthy", as Docker 20.10 reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from dockyard.engine import containers as records
from dockyard.engine.errors import InvalidArgument, NotFound
from dockyard.engine.timefmt import parse_rfc3339

log = logging.getLogger("dockyard.engine")
SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_RETRIES = 3
MINIMUM_DURATION = 1_000_000  # 1ms, Docker's lower bound for the durations
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096


def validate(config: dict) -> None:
    """Docker's create-time checks of Config.Healthcheck."""
    check = config.get("Healthcheck")
    if not check:
        return
    if not isinstance(check, dict):
        raise InvalidArgument(
            "json: cannot unmarshal non-object into Go struct field Config.Healthcheck"
        )
    for key in ("Interval", "Timeout", "StartPeriod"):
        value = check.get(key) or 0
        if not isinstance(value, int):
            raise InvalidArgument(
                f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                f"HealthConfig.Healthcheck.{key} of type time.Duration"
            )
        if value and value < MINIMUM_DURATION:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    if (check.get("Retries") or 0) < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    test = check.get("Test") or []
    if not isinstance(test, list) or not all(isinstance(word, str) for word in test):
        raise InvalidArgument(
            "json: cannot unmarshal non-array into Go struct field HealthConfig.Healthcheck.Test "
            "of type []string"
        )


def probe_command(config: dict) -> list[str] | None:
    """The probe's argv, or None when the container has no healthcheck."""
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD" and len(test) > 1:
        return list(test[1:])
    if test[0] == "CMD-SHELL" and len(test) > 1:
        return [*(config.get("Shell") or ["/bin/sh", "-c"]), test[1]]
    return None


def go_duration(ns: int) -> str:
    """A duration as Go's time.Duration prints it: 500ms, 2s, 1m30s."""
    if ns < SECOND:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000)):
            if ns >= size:
                return _trim(ns / size) + unit
        return f"{ns}ns"
    hours, rest = divmod(ns, 3600 * SECOND)
    minutes, rest = divmod(rest, 60 * SECOND)
    text = _trim(rest / SECOND) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


class Health:
    """One probe task per running container with a healthcheck."""

    def __init__(self, engine, publish) -> None:
        self.engine = engine
        self.publish = publish  # Lifecycle._publish: (record, action)
        self.tasks: dict[str, asyncio.Task] = {}

    def reset(self, record: dict) -> None:
        """At each start: "starting" again, streak cleared, the log kept (as Docker)."""
        if probe_command(record["Config"]) is None:
            return
        health = record["State"].get("Health") or {"Log": []}
        health.update(Status="starting", FailingStreak=0)
        record["State"]["Health"] = health

    def watch(self, container_id: str) -> None:
        """Probe the (running) container until `stop`: at start and after a live restore."""
        record = self.engine.containers.get(container_id)
        if probe_command(record["Config"]) is None or container_id in self.tasks:
            return
        self.tasks[container_id] = asyncio.create_task(self._loop(container_id))

    def stop(self, record: dict) -> None:
        """The container stopped: no more probes; Docker 20.10 then reports "unhealthy"."""
        task = self.tasks.pop(record["Id"], None)
        if task is not None:
            task.cancel()
        if record["State"].get("Health"):
            record["State"]["Health"]["Status"] = "unhealthy"

    def cancel_all(self) -> None:
        """Daemon shutdown: the records keep their status for the next daemon."""
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()

    async def _loop(self, container_id: str) -> None:
        try:
            while True:
                check = self.engine.containers.get(container_id)["Config"]["Healthcheck"]
                await asyncio.sleep((check.get("Interval") or DEFAULT_INTERVAL) / SECOND)
                record = self.engine.containers.get(container_id)
                if record["State"]["Paused"]:
                    continue  # a frozen container cannot run a probe: neither pass nor fail
                result = await self._probe(record)
                paused = self.engine.containers.get(container_id)["State"]["Paused"]
                if result["ExitCode"] != 0 and paused:
                    continue  # paused during the probe: its failure says nothing of the program
                self._record(container_id, result)
        except (asyncio.CancelledError, NotFound):
            return
        except Exception:
            log.exception("healthcheck of %s", container_id[:12])

    async def _probe(self, record: dict) -> dict:
        check = record["Config"]["Healthcheck"]
        timeout = check.get("Timeout") or DEFAULT_TIMEOUT
        start = records.now_rfc3339()
        pid_file = records.container_dir(self.engine.config.data_root, record["Id"]) / "health.pid"
        pid_file.unlink(missing_ok=True)
        command = self.engine.runtime_argv(
            record, "exec", "--pid-file", str(pid_file), record["Id"]
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                *probe_command(record["Config"]),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as error:
            return _result(start, -1, str(error))
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout / SECOND)
        except TimeoutError:
            await _kill(process, pid_file)
            return _result(start, -1, f"Health check exceeded timeout ({go_duration(timeout)})")
        except asyncio.CancelledError:
            await _kill(process, pid_file)
            raise
        return _result(start, process.returncode, output[:MAX_OUTPUT].decode(errors="replace"))

    def _record(self, container_id: str, result: dict) -> None:
        record = self.engine.containers.get(container_id)
        state = record["State"]
        health = state.get("Health")
        if not state["Running"] or health is None:
            return
        check = record["Config"]["Healthcheck"]
        before = health["Status"]
        health["Log"] = [*(health.get("Log") or []), result][-MAX_LOG_ENTRIES:]
        if result["ExitCode"] == 0:
            health["FailingStreak"] = 0
            health["Status"] = "healthy"
        elif (
            before != "starting"
            or parse_rfc3339(result["Start"]) - parse_rfc3339(state["StartedAt"])
            >= (check.get("StartPeriod") or 0) / SECOND
        ):
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= (check.get("Retries") or DEFAULT_RETRIES):
                health["Status"] = "unhealthy"
        self.engine.containers.save(record)
        if health["Status"] != before:
            self.publish(record, f"health_status: {health['Status']}")


async def _kill(process: asyncio.subprocess.Process, pid_file: Path) -> None:
    """A probe past its timeout dies, with the runtime waiting on it (Docker leaves it running,
    piling up probes in a hung container)."""
    try:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 2)


def _result(start: str, code: int, output: str) -> dict:
    return {"Start": start, "End": records.now_rfc3339(), "ExitCode": code, "Output": output}
