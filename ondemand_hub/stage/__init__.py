"""ondemand-stage: the privileged helper that starts, stops and inspects per-user PUNs.

This package is the only code of ondemand-hub that runs as root. It imports only the Python
standard library and jinja2, never the rest of the project: whatever it imports runs as root.
"""
