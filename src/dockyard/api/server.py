"""`dockyard daemon`: serve the Engine API on UNIX sockets and TCP (optionally TLS).

Takes dockerd's flags where they mean the same. SIGTERM and SIGINT stop gracefully
(containers keep running with --live-restore); SIGHUP reloads daemon.json's reloadable keys.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import logging
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from dockyard.api.app import create_app
from dockyard.engine.config import (
    DEFAULT_CONFIG_FILE,
    DEFAULT_DATA_ROOT,
    DEFAULT_EXEC_ROOT,
    DaemonConfig,
    load_file,
)
from dockyard.engine.engine import Engine
from dockyard.engine.errors import EngineError

log = logging.getLogger("dockyard.daemon")
SOCKET_GROUP = "dockyard"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dockyard daemon", description=__doc__)
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--exec-root", type=Path)
    parser.add_argument("-H", "--host", action="append", dest="hosts")
    parser.add_argument("-p", "--pidfile", type=Path)
    parser.add_argument("--config-file", type=Path, default=DEFAULT_CONFIG_FILE)
    parser.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error", "fatal"])
    parser.add_argument("-D", "--debug", action="store_true")
    parser.add_argument("-b", "--bridge")
    parser.add_argument("--bip")
    parser.add_argument("--default-address-pool", action="append", dest="pools")
    parser.add_argument("--live-restore", action="store_true", default=None)
    parser.add_argument("-s", "--storage-driver")
    parser.add_argument("--default-runtime")
    parser.add_argument("--default-ipc-mode", choices=["private", "shareable"])
    parser.add_argument("--add-runtime", action="append", default=[])
    parser.add_argument("--tlsverify", action="store_true", default=None)
    parser.add_argument("--tlscacert")
    parser.add_argument("--tlscert")
    parser.add_argument("--tlskey")
    parser.add_argument("--group", default=SOCKET_GROUP)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> DaemonConfig:
    config = load_file(DaemonConfig(), args.config_file)
    for attribute, value in (
        ("data_root", args.data_root),
        ("exec_root", args.exec_root),
        ("hosts", args.hosts),
        ("pidfile", args.pidfile),
        ("bridge", args.bridge),
        ("bip", args.bip),
        ("live_restore", args.live_restore),
        ("storage_driver", args.storage_driver),
        ("default_runtime", args.default_runtime),
        ("default_ipc_mode", args.default_ipc_mode),
        ("tls_verify", args.tlsverify),
        ("tls_cacert", args.tlscacert),
        ("tls_cert", args.tlscert),
        ("tls_key", args.tlskey),
    ):
        if value is not None:
            setattr(config, attribute, value)
    if args.log_level:
        config.log_level = args.log_level
    if args.debug:
        config.debug = True
    for pool in args.pools or []:
        fields = dict(part.split("=", 1) for part in pool.split(",") if "=" in part)
        config.default_address_pools.append(
            {"base": fields.get("base"), "size": int(fields.get("size", 24))}
        )
    for runtime in args.add_runtime:
        name, _, path = runtime.partition("=")
        config.runtimes[name] = path or name
    config.data_root = config.data_root or DEFAULT_DATA_ROOT
    config.exec_root = config.exec_root or DEFAULT_EXEC_ROOT
    return config


def _socket_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=False, capture_output=True)
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return 0


def _tls_context(config: DaemonConfig) -> ssl.SSLContext | None:
    if not (config.tls_cert and config.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_verify:
        context.verify_mode = ssl.CERT_REQUIRED
        if config.tls_cacert:
            context.load_verify_locations(config.tls_cacert)
    return context


async def serve(config: DaemonConfig, args: argparse.Namespace) -> None:
    engine = Engine(config)
    await engine.start()
    app = create_app(engine)
    # At shutdown, as dockerd, connections close at once: long polls (`wait` of `docker run
    # -d`, events, follows) would otherwise hold the containers' stop for a minute.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    gid = _socket_group(args.group)
    for host in config.hosts:
        if host.startswith("unix://"):
            path = host[len("unix://") :]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if os.path.exists(path):
                os.unlink(path)
            await web.UnixSite(runner, path).start()
            os.chown(path, 0, gid)
            os.chmod(path, 0o660)
        elif host.startswith(("tcp://", "http://")):
            address = host.split("://", 1)[1]
            hostname, _, port = address.rpartition(":")
            await web.TCPSite(
                runner, hostname or "0.0.0.0", int(port or 2375), ssl_context=_tls_context(config)
            ).start()
        else:
            raise EngineError(f"unsupported host {host!r}: use unix:// or tcp://")
    if config.pidfile:
        config.pidfile.parent.mkdir(parents=True, exist_ok=True)
        config.pidfile.write_text(f"{os.getpid()}\n")
    log.info("dockyard daemon listening on %s", ", ".join(config.hosts))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(config, args))
    await stopping.wait()
    log.info("dockyard daemon stopping")
    await runner.cleanup()
    await engine.stop()
    if config.pidfile and config.pidfile.exists():
        config.pidfile.unlink()


# What SIGHUP changes in a running daemon, as dockerd's reload does; the rest needs a restart.
_RELOADABLE = (
    "debug",
    "log_level",
    "live_restore",
    "default_runtime",
    "runtimes",
    "shutdown_timeout",
)


def _reload(config: DaemonConfig, args: argparse.Namespace) -> None:
    """SIGHUP: read the configuration file again (the command line's flags still win)."""
    try:
        fresh = build_config(args)
    except EngineError as error:
        log.error("reload: %s", error)
        return
    for attribute in _RELOADABLE:
        setattr(config, attribute, getattr(fresh, attribute))
    logging.getLogger().setLevel(_level(config))
    log.info("configuration reloaded")


def _level(config: DaemonConfig) -> int:
    if config.debug:
        return logging.DEBUG
    return {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warn": logging.WARNING,
        "error": logging.ERROR,
        "fatal": logging.CRITICAL,
    }.get(config.log_level, logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = build_config(args)
    except EngineError as error:
        print(f"dockyard daemon: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=_level(config), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Libraries' own debug chatter (netlink dumps) would drown the daemon's.
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    if os.geteuid() != 0:
        print("dockyard daemon: must run as root", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(config, args))
    except EngineError as error:
        print(f"dockyard daemon: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
