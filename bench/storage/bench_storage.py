"""Storage benchmark: dockyard vs GNU tar at unpacking and creating gzip layers.

Unpack: a 200 MB image of 5 gzip layers (half random, half text; files from 1 KiB to
4 MiB) through LayerStore.unpack vs `tar -xzf` of the same blobs into empty directories.
Create: the layer of a 200 MB container diff through write_diff vs `tar -cz`.
Medians of several runs on one file system; blobs in page cache and no pending
writeback at the start of each run, for both.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dockyard.storage.archive import apply_tar, write_diff
from dockyard.storage.content import ContentStore
from dockyard.storage.layers import LayerStore

MB = 1 << 20
WORDS = [
    *("the", "of", "and", "to", "in", "is", "that", "it", "for", "as", "with", "on", "be"),
    *("container", "layer", "image", "overlay", "kernel", "namespace", "process", "network"),
    *("def", "return", "import", "class", "self", "None", "True", "if", "else", "yield"),
]


def make_tree(root: Path, size: int, rng: random.Random) -> None:
    """`size` bytes: half incompressible (64 KiB..4 MiB files), half text (1..64 KiB)."""
    corpus = " ".join(rng.choice(WORDS) for _ in range(400_000)).encode()
    for kind, budget in (("bin", size // 2), ("txt", size - size // 2)):
        n = 0
        while budget > 0:
            directory = root / kind / f"d{n // 50:03d}"
            directory.mkdir(parents=True, exist_ok=True)
            if kind == "bin":
                length = min(budget, rng.randint(64 << 10, 4 << 20))
                data = rng.randbytes(length)
            else:
                length = min(budget, rng.randint(1 << 10, 64 << 10))
                start = rng.randrange(len(corpus) - length)
                data = corpus[start : start + length]
            (directory / f"f{n:05d}").write_bytes(data)
            budget -= length
            n += 1


def compare(
    ours: Callable[[], object], tar: Callable[[], object], setup: Callable[[], object], runs: int
) -> tuple[list[float], list[float]]:
    """Times of both, run alternately so that both see the same background load."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for fn, record in ((tar, times[1]), (ours, times[0])):
            setup()
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return times


def small_files(
    work: Path, count: int, runs: int, fresh: Callable[[], None], out: Path
) -> tuple[str, list[float], list[float]]:
    """Not asked for, but telling: a layer of many tiny files measures per-entry cost."""
    tree = work / "small"
    for i in range(count):
        directory = tree / f"d{i // 100:04d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i}").write_bytes(b"#!/bin/sh\n" * 50)
    blob = work / "small.tar.gz"
    sh("tar", "-czf", str(blob), "-C", str(tree), ".")
    shutil.rmtree(tree)

    def ours() -> None:
        with open(blob, "rb") as f:
            apply_tar(f, out)

    ours_s, tar_s = compare(ours, lambda: sh("tar", "-xzf", str(blob), "-C", str(out)), fresh, runs)
    return f"unpack {count} tiny files", ours_s, tar_s


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-files", type=int, default=10000, help="files of the extra row")
    parser.add_argument("--dir", default="/var/tmp", help="where to work (same fs for both)")
    args = parser.parse_args()
    rng = random.Random(42)
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir=args.dir))
    try:
        run(work, args, rng)
    finally:
        shutil.rmtree(work)


def run(work: Path, args: argparse.Namespace, rng: random.Random) -> None:
    size = args.size_mb * MB
    blobs = []
    for i in range(args.layers):
        tree = work / f"src{i}"
        make_tree(tree, size // args.layers, rng)
        blob = work / f"layer{i}.tar.gz"
        sh("tar", "-czf", str(blob), "-C", str(tree), ".")
        blobs.append(blob)
    blob_mb = sum(b.stat().st_size for b in blobs) / MB
    print(f"image: {args.layers} gzip layers, {args.size_mb} MB unpacked, {blob_mb:.0f} MB gzip")
    content = ContentStore(work / "content")
    digests = []
    for blob in blobs:
        with open(blob, "rb") as f:
            digests.append(content.ingest(f).digest)
    out = work / "out"

    def fresh() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        os.sync()  # no writeback of the previous run in this one's time

    def gnu_unpack(then_sync: bool) -> None:
        for i, blob in enumerate(blobs):
            (out / str(i)).mkdir()
            sh("tar", "-xzf", str(blob), "-C", str(out / str(i)))
        if then_sync:
            sh("sync", "-f", str(out))

    def dockyard_unpack(durable: bool) -> None:
        store = LayerStore(out / "layers", content, durable=durable)
        parent = None
        for digest in digests:
            parent = store.unpack(digest, parent).chain_id

    results = []
    for label, durable in (("unpack", False), ("unpack + sync", True)):
        ours, tar = compare(
            lambda d=durable: dockyard_unpack(d), lambda d=durable: gnu_unpack(d), fresh, args.runs
        )
        results.append((label, ours, tar))
    results.append(small_files(work, args.small_files, args.runs, fresh, out))

    upper = work / "upper"  # the same 200 MB, as one container's changes
    upper.mkdir()
    for i in range(args.layers):
        os.rename(work / f"src{i}", upper / f"part{i}")
    layer_file = work / "diff.tar.gz"

    def dockyard_create() -> None:
        with open(layer_file, "wb") as f:
            write_diff(upper, f, "gzip")

    def gnu_create() -> None:
        sh("tar", "-czf", str(layer_file), "-C", str(upper), ".")

    sizes = {}

    def measured(fn: Callable[[], None], who: str) -> Callable[[], None]:
        def run() -> None:
            fn()
            sizes[who] = layer_file.stat().st_size / MB

        return run

    ours, tar = compare(
        measured(dockyard_create, "ours"), measured(gnu_create, "tar"), os.sync, args.runs
    )
    results.append((f"create ({sizes['ours']:.0f} / {sizes['tar']:.0f} MB)", ours, tar))

    print(f"median (min) of {args.runs} alternating runs; ratio = GNU tar time / dockyard time")
    print(f"{'task':26} {'dockyard':>15} {'GNU tar':>15} {'ratio':>7}")
    for label, ours, tar in results:
        mo, mt = statistics.median(ours), statistics.median(tar)
        print(
            f"{label:26} {mo:6.2f}s ({min(ours):5.2f}) {mt:6.2f}s ({min(tar):5.2f}) {mt / mo:6.2f}x"
        )


if __name__ == "__main__":
    main()
