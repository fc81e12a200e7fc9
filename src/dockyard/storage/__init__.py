"""Content store, layers, snapshotters and safe tar apply/diff."""
