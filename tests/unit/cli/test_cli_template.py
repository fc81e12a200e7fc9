"""The Go template subset behind --format, checked against what Go's text/template prints."""

import pytest

from dockyard.cli.template import Template, TemplateError

INSPECT = {
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "ExitCode": 0, "Pid": 42},
    "Config": {
        "Labels": {"a": "1", "b": "2"},
        "Cmd": ["sleep", "10"],
        "Env": ["A=1", "B=2"],
    },
    "Mounts": [],
    "HostConfig": {"Memory": 0, "Binds": None},
}


def render(source: str, data=INSPECT) -> str:
    return Template(source).render(data)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{.State.Status}}", "running"),
        ("{{.Name}}", "/web"),
        ('{{index .Config.Labels "a"}}', "1"),
        ('{{index .Config.Labels "missing"}}', ""),
        ("{{.Config.Cmd}}", "[sleep 10]"),
        ("{{json .Config.Cmd}}", '["sleep","10"]'),
        ("{{json .Config.Labels}}", '{"a":"1","b":"2"}'),
        ("{{.Config.Labels}}", "map[a:1 b:2]"),
        ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
        ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),
        ("{{range .Mounts}}x{{else}}none{{end}}", "none"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ('{{if eq .State.Status "exited"}}e{{else if .State.Running}}r{{end}}', "r"),
        ("{{.State.Running}} {{.State.Pid}} {{.HostConfig.Binds}}", "true 42 <nil>"),
        ('{{join .Config.Cmd ","}}', "sleep,10"),
        ("{{upper .State.Status}}", "RUNNING"),
        ("{{.State.Status | upper}}", "RUNNING"),
        ("{{len .Config.Env}}", "2"),
        ('{{printf "%s-%d" .Name .State.Pid}}', "/web-42"),
        ("{{with .State}}{{.Status}}{{end}}", "running"),
        ("a  {{- .Name -}}  b", "a/webb"),
        ("{{.Nope}}", "<no value>"),
        ("{{(index .Config.Env 1)}}", "B=2"),
        ("{{$.Name}}", "/web"),
        ("{{/* a comment */}}x", "x"),
    ],
)
def test_render(source: str, expected: str) -> None:
    assert render(source) == expected


def test_callable_fields_take_arguments() -> None:
    context = {"Label": lambda key: {"k": "v"}.get(key, ""), "ID": "abc"}
    assert Template('{{.Label "k"}}-{{.ID}}').render(context) == "v-abc"
    assert Template("{{json .}}").render(context) == '{"ID":"abc"}'


@pytest.mark.parametrize(
    "source",
    ["{{.Name", "{{end}}", "{{if .Name}}x", "{{nosuchfunc .Name}}", "{{index .Config.Cmd 5}}"],
)
def test_errors(source: str) -> None:
    with pytest.raises(TemplateError):
        render(source)
