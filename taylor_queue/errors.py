"""The failures the client reports and the exit status each maps to (documented in the README)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """The process exit status."""

    DONE = 0
    USAGE = 2  # bad command line or workflow file (argparse's own status too)
    VALIDATION = 3  # the graph does not match the server's /object_info: nothing was queued
    SERVER = 4  # the server refused the prompt (node_errors) or failed running it (execution_error)
    TIMEOUT = 5  # the prompt did not finish within --timeout; it was cancelled on the server
    UNREACHABLE = 6  # no ComfyUI answers at --server (refused connection, unknown host, lost connection)
    INTERRUPTED = 130  # Ctrl-C; the prompt was cancelled on the server


class QueueError(RuntimeError):
    """A failure with a readable message and the exit status it maps to."""

    def __init__(self, exit_code: Exit, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
