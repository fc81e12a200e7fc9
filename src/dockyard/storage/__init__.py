"""Content store, layers, snapshotters and safe tar apply/diff.

Changes to the agreed API (for the image and engine code):
- errors: also AlreadyExists (prepare of an existing key), InUse (removing a layer that has
  children or a mounted snapshot), InvalidDigest (a malformed digest string; it is also a
  ValueError). All derive from StorageError.
- ContentStore: also `size(digest)` and `clean_ingest()`. `ingest` with an `expected`
  digest that is already stored returns at once without reading the stream. `delete` of
  an absent blob raises NotFound.
- archive: `Limits` (frozen) gains `max_header_size` (PAX/long-name records).
  `LayerDigests` is (diff_id, digest, size) with size and digest of the blob as written.
  `write_entries` is the writer behind write_diff for other entry sources. apply_tar also
  reads xz and bzip2, as Docker does, and takes a keyword `use_openat2` (tests only).
  `AppliedLayer.size` is the bytes of regular file content unpacked. write_diff and
  write_tree emit whole-second mtimes, no user/group names, sorted entries; gzip output
  is isal level 1 (fast; about 5% larger than gzip -6).
- LayerStore(root, content, limits=DEFAULT_LIMITS, durable=True): `unpack(blob_digest,
  parent, expected_diff_id=None)`; `add_tar(stream, parent, expected_diff_id=None)`.
  Also `lower_dirs(chain_id)`, `lower_links(chain_id)`, `clean()`, `forget_blob(digest)`.
  `remove` raises InUse while another layer has it as parent.
- Snapshotter: also `parent(key)`, `clean()`, and `diff(key, out, compression="gzip") ->
  LayerDigests`, which is how to commit a container: for overlay it is write_diff of the
  upper directory, for the copy snapshotter (whose upper() is the full tree) it diffs the
  tree against its layers. choose_snapshotter keeps each driver's snapshots in
  <root>/overlay2 or <root>/vfs, as Docker does; snapshot keys match
  [A-Za-z0-9][A-Za-z0-9_.-]{0,127}.
- gc: GcRoots(digests, chain_ids, snapshot_keys, min_age=0.0) (frozensets; anything
  younger than min_age seconds is kept); GcReport(blobs, layers, snapshots, skipped,
  reclaimed). Snapshots are not in DESIGN.md's containers/<id>/ but in their own root.
"""
