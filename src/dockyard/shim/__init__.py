"""The per-container monitor: holds the container's stdio or pty, writes its json-file log,
records its exit status, and outlives the daemon (live restore). Stdlib and dockyard.runtime
only: it runs once per container, so its memory is a tracked figure."""
