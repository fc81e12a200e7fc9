"""The container runtime: OCI bundles to isolated processes on the real kernel."""
