"""Docker's table layout (Go tabwriter, min width 10, padding 3) and human units."""

from dockyard.cli.containers import container_context, display_ports
from dockyard.cli.images import image_rows, qualified
from dockyard.cli.tables import render, tabwrite
from dockyard.cli.units import human_duration, human_size, ram_in_bytes


def test_tabwrite_pads_to_widest_plus_three_with_minimum_ten() -> None:
    text = "A\tLONGER HEADER\tLAST\nvalue-longer\tx\tz\n"
    assert tabwrite(text) == (
        "A              LONGER HEADER   LAST\nvalue-longer   x               z\n"
    )


def test_render_table_json_and_template() -> None:
    items = [{"Name": "v1", "Driver": "local"}, {"Name": "v2", "Driver": "local"}]
    headers = {"Name": "VOLUME NAME", "Driver": "DRIVER"}
    table = render(items, "", headers, "{{.Driver}}\t{{.Name}}")
    assert table == "DRIVER    VOLUME NAME\nlocal     v1\nlocal     v2\n"
    assert render(items, "table {{.Name}}", headers, "") == "VOLUME NAME\nv1\nv2\n"
    assert render(items, "json", headers, "") == (
        '{"Name":"v1","Driver":"local"}\n{"Name":"v2","Driver":"local"}\n'
    )
    assert render(items, "{{.Name}}:{{.Driver}}", headers, "") == "v1:local\nv2:local\n"


def test_container_context_like_docker_ps() -> None:
    listing = {
        "Id": "0123456789abcdef" * 4,
        "Names": ["/web"],
        "Image": "docker.io/library/busybox:latest",
        "ImageID": "sha256:" + "f" * 64,
        "Command": "sh -c 'while true; do sleep 1; done'",
        "Created": 0,
        "State": "running",
        "Status": "Up 2 minutes",
        "Ports": [{"PrivatePort": 80, "Type": "tcp", "IP": "0.0.0.0", "PublicPort": 8080}],
        "Labels": {"k": "v"},
    }
    context = container_context(listing, trunc=True)
    assert context["ID"] == "0123456789ab"
    assert context["Image"] == "busybox:latest"
    assert context["Command"] == '"sh -c \'while true; …"'
    assert context["Names"] == "web"
    assert context["Ports"] == "0.0.0.0:8080->80/tcp"
    assert context["Label"]("k") == "v"
    assert container_context(listing, trunc=False)["ID"] == listing["Id"]


def test_ports_without_binding_and_ipv6() -> None:
    ports = [
        {"PrivatePort": 53, "Type": "udp"},
        {"PrivatePort": 80, "Type": "tcp", "IP": "::", "PublicPort": 8080},
    ]
    assert display_ports(ports) == "53/udp, [::]:8080->80/tcp"


def test_image_rows_per_tag_and_dangling() -> None:
    image = {
        "Id": "sha256:" + "a" * 64,
        "RepoTags": ["busybox:latest", "busybox:1"],
        "RepoDigests": [],
        "Created": 0,
        "Size": 4261234,
    }
    rows = image_rows(image, trunc=True)
    assert [(r["Repository"], r["Tag"]) for r in rows] == [("busybox", "1"), ("busybox", "latest")]
    assert rows[0]["ID"] == "a" * 12 and rows[0]["Size"] == "4.26MB"
    dangling = image_rows({**image, "RepoTags": None}, trunc=True)
    assert [(r["Repository"], r["Tag"]) for r in dangling] == [("<none>", "<none>")]
    assert qualified("busybox") == "docker.io/library/busybox:latest"
    assert qualified("localhost:5000/x:1") == "localhost:5000/x:1"


def test_human_units() -> None:
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(1) == "1 second"
    assert human_duration(59) == "59 seconds"
    assert human_duration(60) == "About a minute"
    assert human_duration(125) == "2 minutes"
    assert human_duration(3600) == "About an hour"
    assert human_duration(5 * 3600) == "5 hours"
    assert human_duration(3 * 86400) == "3 days"
    assert human_size(0) == "0B"
    assert human_size(1983000) == "1.983MB"
    assert human_size(4261234, 3) == "4.26MB"
    assert ram_in_bytes("512m") == 512 << 20
    assert ram_in_bytes("1g") == 1 << 30
    assert ram_in_bytes("100") == 100
