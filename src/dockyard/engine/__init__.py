"""The engine: containers, images, volumes, exec, events, health and restart policies as state
machines over the stores below. The api layer maps its typed errors to HTTP."""
