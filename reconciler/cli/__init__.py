"""Command-line interface: parses flags, wires the rooms together, maps errors to exit codes."""
