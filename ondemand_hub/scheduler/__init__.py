"""Scheduler layer: one module per scheduler, command wrappers that take argv lists only,
pure parsers of their output, and the shared status cache every session's poll reads."""
