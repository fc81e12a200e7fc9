"""pflag-style parsing and the create body the run flags make."""

import pytest

from dockyard.cli.createflags import RUN_FLAGS, create_body, go_duration
from dockyard.cli.flags import LIST, VALUE, UsageError, flag, parse
from dockyard.client.autostart import should_autostart
from dockyard.client.transport import configured_host, parse_host

FLAGS = [flag("-a", "--all"), flag("-n", "--last", kind=VALUE), flag("-f", "--filter", kind=LIST)]


def test_long_short_combined_and_repeated() -> None:
    opts = parse(FLAGS, ["x", "--all", "-n", "3", "--filter=a=b", "-fc=d", "y"])
    assert opts.all and opts.last == "3" and opts.filter == ["a=b", "c=d"]
    assert opts.args == ["x", "y"]
    assert parse(FLAGS, ["-an5"]).last == "5"
    assert parse(FLAGS, ["--all=false"]).all is False


def test_errors_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown flag: --nope"):
        parse(FLAGS, ["--nope"])
    with pytest.raises(UsageError, match="flag needs an argument"):
        parse(FLAGS, ["-n"])
    with pytest.raises(UsageError, match="unknown shorthand flag: 'z'"):
        parse(FLAGS, ["-z"])


def test_run_stops_at_the_image() -> None:
    opts = parse(RUN_FLAGS, ["-d", "--rm", "busybox", "ls", "-l", "--all"], interspersed=False)
    assert opts.detach and opts.rm and opts.args == ["busybox", "ls", "-l", "--all"]


def test_create_body() -> None:
    argv = [
        "-it",
        "--name",
        "web",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "-v",
        "/h:/c:ro",
        "-v",
        "/anon",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1m",
        "-p",
        "8080:80",
        "--restart",
        "on-failure:3",
        "--entrypoint",
        "",
        "--init",
        "--cap-add",
        "NET_ADMIN",
        "-m",
        "64m",
        "--memory-swap",
        "-1",
        "--cpus",
        "1.5",
        "--pids-limit",
        "10",
        "--ulimit",
        "nofile=100:200",
        "--tmpfs",
        "/run:size=1m",
        "--device",
        "/dev/null:/dev/n:r",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--add-host",
        "h:1.2.3.4",
        "-l",
        "k=v",
        "--health-cmd",
        "true",
        "--health-interval",
        "1m30s",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "5",
        "--group-add",
        "10",
        "--oom-score-adj",
        "100",
        "--read-only",
        "busybox",
        "sh",
    ]
    opts = parse(RUN_FLAGS, argv, interspersed=False)
    body = create_body(opts, opts.args[0], opts.args[1:])
    host = body["HostConfig"]
    assert body["Tty"] and body["OpenStdin"] and body["AttachStdin"] and body["StdinOnce"]
    assert body["Cmd"] == ["sh"] and body["Entrypoint"] == [""] and body["Image"] == "busybox"
    assert body["Env"] == ["A=1"] and body["WorkingDir"] == "/tmp" and body["User"] == "1000"
    assert body["Volumes"] == {"/anon": {}} and host["Binds"] == ["/h:/c:ro"]
    assert host["Mounts"] == [
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}
    ]
    assert body["ExposedPorts"] == {"80/tcp": {}}
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Init"] is True and host["CapAdd"] == ["NET_ADMIN"]
    assert host["Memory"] == 64 << 20 and host["MemorySwap"] == -1
    assert host["NanoCpus"] == 1_500_000_000 and host["PidsLimit"] == 10
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200}]
    assert host["Tmpfs"] == {"/run": "size=1m"}
    assert host["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "r"}
    ]
    assert host["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert host["ExtraHosts"] == ["h:1.2.3.4"] and body["Labels"] == {"k": "v"}
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 90_000_000_000}
    assert body["StopSignal"] == "SIGINT" and body["StopTimeout"] == 5
    assert host["GroupAdd"] == ["10"] and host["OomScoreAdj"] == 100
    assert host["ReadonlyRootfs"] and host["NetworkMode"] == "default"


def test_detached_body_attaches_nothing() -> None:
    opts = parse(RUN_FLAGS, ["-d", "busybox"], interspersed=False)
    body = create_body(opts, "busybox", [])
    assert not (body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"])
    assert body["Cmd"] is None and body["Entrypoint"] is None


def test_bad_values() -> None:
    with pytest.raises(UsageError):
        go_duration("5 parsecs")
    opts = parse(RUN_FLAGS, ["--restart", "sometimes", "busybox"], interspersed=False)
    with pytest.raises(UsageError):
        create_body(opts, "busybox", [])


def test_hosts_and_autostart_decision() -> None:
    assert configured_host(None, {}) is None
    assert configured_host(None, {"DOCKER_HOST": "tcp://h:1"}) == "tcp://h:1"
    assert configured_host(None, {"DOCKER_HOST": "a", "DOCKYARD_HOST": "b"}) == "b"
    assert configured_host("c", {"DOCKYARD_HOST": "b"}) == "c"
    assert parse_host("unix:///x.sock").address == "/x.sock"
    tcp = parse_host("tcp://127.0.0.1")
    assert (tcp.scheme, tcp.address, tcp.port) == ("tcp", "127.0.0.1", 2375)
    assert parse_host("h:5000").port == 5000
    # only the default daemon, only for root
    assert should_autostart(None, 0)
    assert not should_autostart("unix:///x.sock", 0)
    assert not should_autostart(None, 1000)
