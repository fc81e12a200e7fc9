import pytest

from dockyard.image.changes import apply_changes, parse_duration, parse_port_spec
from dockyard.image.errors import InvalidArgument


def test_cmd_and_entrypoint_forms():
    assert apply_changes({}, ["CMD echo hi"])["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert apply_changes({}, ['CMD ["echo", "hi"]'])["Cmd"] == ["echo", "hi"]
    assert apply_changes({}, ["CMD [not json"])["Cmd"] == ["/bin/sh", "-c", "[not json"]
    assert apply_changes({"Shell": ["/bin/bash", "-c"]}, ["cmd x"])["Cmd"] == [
        "/bin/bash",
        "-c",
        "x",
    ]
    assert apply_changes({}, ['ENTRYPOINT ["/init"]'])["Entrypoint"] == ["/init"]
    with pytest.raises(InvalidArgument, match="arrays must be comprised of strings only"):
        apply_changes({}, ["CMD [1, 2]"])


def test_entrypoint_resets_inherited_cmd_unless_cmd_given():
    base = {"Cmd": ["old"]}
    assert apply_changes(base, ["ENTRYPOINT top"])["Cmd"] is None
    assert apply_changes(base, ["CMD new", "ENTRYPOINT top"])["Cmd"] == ["/bin/sh", "-c", "new"]
    assert apply_changes(base, ["ENTRYPOINT top", "CMD new"])["Cmd"] == ["/bin/sh", "-c", "new"]
    assert base == {"Cmd": ["old"]}  # the input is not modified


def test_env_forms_and_expansion():
    base = {"Env": ["PATH=/bin", "A=old"]}
    out = apply_changes(
        base,
        [
            'ENV A=new B="two words" C=$A',  # expansion sees the env before this instruction
            "ENV PATH $PATH:/usr/local/bin",
            "ENV D=${MISSING:-fallback} E='$literal' F=a\\ b",
        ],
    )
    assert out["Env"] == [
        "PATH=/bin:/usr/local/bin",
        "A=new",
        "B=two words",
        "C=old",
        "D=fallback",
        "E=$literal",
        "F=a b",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("ENV", "ENV requires at least one argument"),
        ("ENV A", "ENV must have two arguments"),
        ("ENV A=1 B", 'Syntax error - can\'t find = in "B". Must be of the form: name=value'),
        ("ENV =x", "ENV names can not be blank"),
        ("LABEL", "LABEL requires at least one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("EXPOSE abc", "invalid containerPort: abc"),
        ("EXPOSE 80/xyz", "invalid proto: xyz"),
        ("EXPOSE 90-80", "invalid containerPort: 90-80"),
        ("EXPOSE 70000", "invalid containerPort: 70000"),
        ("USER", "USER requires exactly one argument"),
        ("USER a b", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        ('VOLUME [""]', "VOLUME specified can not be an empty string"),
        ("STOPSIGNAL NOPE", "Invalid signal: NOPE"),
        ("RUN echo", "run is not a valid change command"),
        ("FROM x", "from is not a valid change command"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ENV A=${B", "syntax error: missing '}'"),
        ("ENV A='x", "matching single-quote"),
        ('ENV A="x', "matching double-quote"),
        ('ENV A="${B:?must be set}"', "B: must be set"),
        ("HEALTHCHECK CMD", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK --bogus=1 CMD x", "Unknown flag: bogus"),
        ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK'),
        ("HEALTHCHECK --interval=1us CMD x", "Interval cannot be less than 1ms"),
        ("HEALTHCHECK --timeout=soon CMD x", 'time: invalid duration "soon"'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ],
)
def test_errors(change, message):
    with pytest.raises(InvalidArgument, match=message.replace("$", r"\$").replace("(", r"\(")):
        apply_changes({}, [change])


def test_label_expose_user_volume_workdir_stopsignal():
    out = apply_changes(
        {"Labels": {"keep": "1"}, "Env": ["V=2", "NAME=app"], "WorkingDir": "/srv"},
        [
            'LABEL version=$V "com.example.name"="my app" empty=',
            "LABEL legacy value with spaces",
            "EXPOSE 80 53/UDP 8000-8002/tcp",
            "USER ${NAME}:staff",
            'VOLUME ["/data", "/$NAME"]',
            "VOLUME /logs /cache",
            "WORKDIR sub/../$NAME",
            "STOPSIGNAL SIGQUIT",
        ],
    )
    assert out["Labels"] == {
        "keep": "1",
        "version": "2",
        "com.example.name": "my app",
        "empty": "",
        "legacy": "value with spaces",
    }
    assert list(out["ExposedPorts"]) == ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
    assert out["User"] == "app:staff"
    assert list(out["Volumes"]) == ["/data", "/app", "/logs", "/cache"]
    assert out["WorkingDir"] == "/srv/app"
    assert out["StopSignal"] == "SIGQUIT"
    assert apply_changes({}, ["WORKDIR /a/./b/"])["WorkingDir"] == "/a/./b/"  # absolute: as given
    assert apply_changes({}, ["WORKDIR a"])["WorkingDir"] == "/a"


def test_healthcheck_onbuild_and_line_handling():
    out = apply_changes(
        {},
        [
            "# a comment line is ignored",
            "healthcheck --interval=1m30s --timeout=500ms --start-period=1.5s --retries=3 \\",
            '  CMD ["curl", "-f", "http://localhost/"]',
            "ONBUILD RUN make",
            "",
            "stopsignal 9",
        ],
    )
    assert out["Healthcheck"] == {
        "Test": ["CMD", "curl", "-f", "http://localhost/"],
        "Interval": 90 * 10**9,
        "Timeout": 500 * 10**6,
        "StartPeriod": 1_500_000_000,
        "Retries": 3,
    }
    assert out["OnBuild"] == ["RUN make"]
    assert out["StopSignal"] == "9"
    assert apply_changes({}, ["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}
    assert apply_changes({}, ["HEALTHCHECK CMD true"])["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"]
    }


def test_port_spec_and_duration_helpers():
    assert parse_port_spec("443") == ["443/tcp"]
    assert parse_port_spec("1-2/sctp") == ["1/sctp", "2/sctp"]
    assert parse_duration("0") == 0
    assert parse_duration("2h3m4s") == (2 * 3600 + 3 * 60 + 4) * 10**9
