"""The exceptions of ondemand-stage: one root, one noun per kind of failure."""


class StageError(Exception):
    """Root of every error ondemand-stage reports; the CLI prints its message and exits 1."""

    exit_code = 1


class UsageError(StageError):
    """The command line itself is wrong (exit code 2)."""

    exit_code = 2


class ConfigError(StageError):
    """stage.yml is unreadable, not owned by root, or holds an unknown key or a bad value."""


class InvalidUserError(StageError):
    """The user name or the account it names is refused."""


class PunError(StageError):
    """A PUN could not be started, stopped or inspected."""
