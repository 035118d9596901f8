"""Error types that the CLI turns into one clear line and an exit code.

UsageError  -> exit 2: the user asked for something malformed (bad argument, bad prompt).
SAM2Error   -> exit 1: a runtime failure (missing/corrupt file, download failed, ...).
"""


class SAM2Error(Exception):
    """A runtime failure with a one-line, user-facing message (exit code 1)."""

    exit_code = 1


class UsageError(SAM2Error):
    """Malformed input from the user: arguments, prompts, values (exit code 2)."""

    exit_code = 2


class CheckpointError(SAM2Error):
    """A checkpoint file that is missing, truncated, foreign or of an unknown variant."""
