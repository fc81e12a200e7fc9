"""ImageStore against a real data root: names, resolution, listing, history and `rmi`."""

from __future__ import annotations

import pytest
from image_helpers import add_image

from dockyard.image.errors import Conflict, InvalidReference, NotFound
from dockyard.image.reference import parse_normalized
from dockyard.image.removal import ContainerUse

BASE = {"etc/os-release": "base\n"}
TOP = {"app/run": "#!/bin/sh\n"}


def test_create_is_idempotent_and_records_layers(root):
    image = add_image(root.images, [BASE, TOP], "app:1")
    again = add_image(root.images, [BASE, TOP], "app:2")
    assert again.id == image.id
    assert again.repo_tags == ("app:1", "app:2")
    assert [layer.diff_id for layer in image.layers] == list(image.config.diff_ids)
    assert image.layers[0].chain_id == image.layers[0].diff_id
    assert image.top_layer == image.layers[1].chain_id
    assert root.layers.chain_ids() == sorted(layer.chain_id for layer in image.layers)
    assert image.size == len("base\n") + len("#!/bin/sh\n")
    assert root.blobs() == {image.id, *(layer.blob_digest for layer in image.layers)}


def test_resolve_by_name_id_prefix_and_digest(root):
    image = add_image(root.images, [BASE], "busybox")
    hex_id = image.id[7:]
    for name in ("busybox", "busybox:latest", "docker.io/library/busybox", image.id, hex_id,
                 hex_id[:12], hex_id[:3], f"sha256:{hex_id[:8]}"):  # fmt: skip
        assert root.images.resolve(name) == image.id, name
    digest = "sha256:" + "e" * 64
    root.images.add_ref(parse_normalized(f"busybox@{digest}"), image.id)
    assert root.images.resolve(f"busybox@{digest}") == image.id
    assert root.images.get("busybox").repo_digests == (f"busybox@{digest}",)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nosuch", "No such image: nosuch:latest"),
        ("nosuch:1", "No such image: nosuch:1"),
        ("sha256:" + "0" * 64, "No such image: sha256:" + "0" * 64),
        ("ffffffffffff", "No such image: ffffffffffff:latest"),
    ],
)
def test_not_found_messages(root, name, message):
    add_image(root.images, [BASE], "busybox")
    with pytest.raises(NotFound, match=f"^{message}$"):
        root.images.get(name)


def test_invalid_names_are_refused(root):
    with pytest.raises(InvalidReference, match="must be lowercase"):
        root.images.get("Busybox")


def test_ambiguous_prefix_names_nothing(root):
    # 17 images: by pigeonhole two share a first hex digit, a prefix that names neither.
    first_digits = [add_image(root.images, [{"f": str(i)}]).id[7] for i in range(17)]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)
    with pytest.raises(NotFound):
        root.images.resolve(shared)


def test_tag_moves_and_leaves_dangling(root):
    old = add_image(root.images, [BASE], "app:latest")
    new = add_image(root.images, [BASE, TOP])
    assert root.images.tag(new.id, "app").familiar == "app:latest"
    assert root.images.get("app").id == new.id
    assert [i.id for i in root.images.list(dangling=True)] == [old.id]
    assert [i.id for i in root.images.list(dangling=False)] == [new.id]
    with pytest.raises(InvalidReference, match="refusing to create a tag with a digest"):
        root.images.tag(new.id, "app@sha256:" + "a" * 64)
    assert root.images.untag("app") == "app:latest"
    with pytest.raises(NotFound, match="No such image: app:latest"):
        root.images.untag("app")


def test_list_hides_untagged_parents_unless_all(root):
    parent = add_image(root.images, [BASE])
    child = add_image(root.images, [BASE, TOP], "child", parent=parent.id)
    assert [i.id for i in root.images.list()] == [child.id]
    assert {i.id for i in root.images.list(all=True)} == {parent.id, child.id}
    assert root.images.children(parent.id) == [child.id]


def test_list_is_newest_first(root):
    older = add_image(root.images, [BASE], "a", created="2020-01-01T00:00:00Z")
    newer = add_image(root.images, [TOP], "b", created="2024-01-01T00:00:00Z")
    assert [i.id for i in root.images.list()] == [newer.id, older.id]


def test_history_follows_local_parents(root):
    parent = add_image(root.images, [BASE], "base")
    child = add_image(root.images, [BASE, TOP], "app", parent=parent.id)
    items = root.images.history("app")
    assert [i.id for i in items] == [child.id, parent.id]
    assert [i.tags for i in items] == [("app:latest",), ("base:latest",)]
    assert [i.size for i in items] == [len("#!/bin/sh\n"), len("base\n")]
    assert items[0].created_by == "layer 1"
    orphan = add_image(root.images, [BASE, TOP, {"x": "y"}], "orphan")
    assert [i.id for i in root.images.history("orphan")] == [orphan.id, "<missing>", "<missing>"]


# -- rmi ----------------------------------------------------------------------------------


def test_rmi_one_of_several_tags_only_untags(root):
    image = add_image(root.images, [BASE], "a:1", "a:2")
    assert root.images.remove("a:1") == [{"Untagged": "a:1"}]
    assert root.images.get(image.id).repo_tags == ("a:2",)


def test_rmi_last_tag_deletes_image_layers_and_blobs(root):
    image = add_image(root.images, [BASE, TOP], "app")
    records = root.images.remove("app")
    assert records == [
        {"Untagged": "app:latest"},
        {"Deleted": image.id},
        {"Deleted": image.layers[1].chain_id},
        {"Deleted": image.layers[0].chain_id},
    ]
    assert root.images.list(all=True) == []
    assert root.layers.chain_ids() == []
    assert root.blobs() == set()
    assert root.db.query("SELECT count(*) FROM layers")[0][0] == 0


def test_rmi_keeps_layers_shared_with_another_image(root):
    first = add_image(root.images, [BASE, TOP], "first")
    second = add_image(root.images, [BASE], "second")
    records = root.images.remove("first")
    assert {"Deleted": first.layers[1].chain_id} in records
    assert {"Deleted": first.layers[0].chain_id} not in records
    assert root.layers.chain_ids() == [second.layers[0].chain_id]
    assert root.blobs() == {second.id, second.layers[0].blob_digest}


def test_rmi_by_id_with_tags_in_several_repositories_must_be_forced(root):
    image = add_image(root.images, [BASE], "a", "b")
    with pytest.raises(Conflict) as info:
        root.images.remove(image.id[7:19])
    assert str(info.value) == (
        f"conflict: unable to delete {image.id[7:19]} (must be forced) - "
        "image is referenced in multiple repositories"
    )
    records = root.images.remove(image.id, force=True)
    assert records == [{"Untagged": "a:latest"}, {"Untagged": "b:latest"}, *records[2:]]
    assert records[2] == {"Deleted": image.id}


def test_rmi_by_id_with_tags_of_one_repository(root):
    image = add_image(root.images, [BASE], "a:1")
    digest = "sha256:" + "d" * 64
    root.images.add_ref(parse_normalized(f"a@{digest}"), image.id)
    records = root.images.remove(image.id)
    assert records[:3] == [
        {"Untagged": "a:1"},
        {"Untagged": f"a@{digest}"},
        {"Deleted": image.id},
    ]


def test_rmi_last_tag_takes_its_repository_digests(root):
    image = add_image(root.images, [BASE], "a:1", "other:1")
    digest = "sha256:" + "d" * 64
    root.images.add_ref(parse_normalized(f"a@{digest}"), image.id)
    assert root.images.remove("a:1") == [{"Untagged": "a:1"}, {"Untagged": f"a@{digest}"}]
    assert root.images.get(image.id).repo_tags == ("other:1",)


def test_rmi_with_containers(root):
    image = add_image(root.images, [BASE], "app")
    running = lambda _id: [ContainerUse("c" * 64, running=True)]  # noqa: E731
    stopped = lambda _id: [ContainerUse("d" * 64, running=False)]  # noqa: E731
    with pytest.raises(Conflict, match=r'unable to remove repository reference "app" \(must force\)'
                       r" - container dddddddddddd is using its referenced image"):  # fmt: skip
        root.images.remove("app", containers=stopped)
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running"):
        root.images.remove(image.id, force=True, containers=running)
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is being used by stopped"):
        root.images.remove(image.id, containers=stopped)
    # Forced, by name, with a running container: untagged, the image stays, quietly.
    assert root.images.remove("app", force=True, containers=running) == [{"Untagged": "app:latest"}]
    assert root.images.get(image.id).repo_tags == ()
    records = root.images.remove(image.id, force=True, containers=stopped)
    assert records[0] == {"Deleted": image.id}


def test_rmi_parent_with_children_and_pruning(root):
    parent = add_image(root.images, [BASE])
    child = add_image(root.images, [BASE, TOP], "child", parent=parent.id)
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image has dependent child images"):
        root.images.remove(parent.id, force=True)
    records = root.images.remove("child")
    assert {"Deleted": child.id} in records and {"Deleted": parent.id} in records
    assert root.images.list(all=True) == []
    # Without pruning the untagged parent stays.
    parent = add_image(root.images, [BASE])
    add_image(root.images, [BASE, TOP], "child", parent=parent.id)
    root.images.remove("child", prune=False)
    assert [i.id for i in root.images.list(all=True)] == [parent.id]


def test_rmi_tagged_parent_is_only_untagged(root):
    parent = add_image(root.images, [BASE], "base")
    add_image(root.images, [BASE, TOP], "child", parent=parent.id)
    assert root.images.remove("base") == [{"Untagged": "base:latest"}]
    assert root.images.get(parent.id).repo_tags == ()


def test_held_layers_outlive_their_image(root):
    image = add_image(root.images, [BASE, TOP], "app")
    root.images.hold("container:1", image.top_layer)
    records = root.images.remove("app")
    assert [r for r in records if "Deleted" in r] == [{"Deleted": image.id}]
    assert len(root.layers.chain_ids()) == 2
    assert sorted(root.images.release("container:1")) == sorted(x.chain_id for x in image.layers)
    assert root.layers.chain_ids() == []
    assert root.blobs() == set()
    with pytest.raises(NotFound):
        root.images.hold("container:2", "sha256:" + "0" * 64)


def test_gc_roots_name_everything_images_use(root):
    image = add_image(root.images, [BASE, TOP], "app")
    blobs, chains = root.images.gc_roots()
    assert blobs == {image.id, *(layer.blob_digest for layer in image.layers)}
    assert chains == {layer.chain_id for layer in image.layers}


def test_discard_keeps_blobs_in_use(root):
    image = add_image(root.images, [BASE], "app")
    stray = root.content.write(b"stray").digest
    root.images.discard([stray, image.id, image.layers[0].blob_digest])
    assert root.blobs() == {image.id, image.layers[0].blob_digest}
