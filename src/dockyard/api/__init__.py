"""The Docker Engine API over HTTP: one module per API area, JSON in and out, no business
logic (that is the engine's)."""
