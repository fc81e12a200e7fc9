"""The `dockyard` command: Docker's commands, flags, output and exit codes."""
