"""The failures the client reports, each with its exit status (documented in the README)."""

from __future__ import annotations


class QueueError(RuntimeError):
    """A failure with a readable message; ``exit_code`` is the process exit status it maps to."""

    exit_code = 1


class UsageError(QueueError):
    """Bad command line or workflow file (also argparse's status)."""

    exit_code = 2


class ValidationError(QueueError):
    """The graph does not match the server's ``/object_info``: found before anything is queued."""

    exit_code = 3


class ServerError(QueueError):
    """The server rejected the prompt (``node_errors``) or failed running it (``execution_error``)."""

    exit_code = 4


class QueueTimeout(QueueError):
    """The prompt did not finish within ``--timeout``; it was taken off the server's queue."""

    exit_code = 5


class Unreachable(QueueError):
    """No ComfyUI answers at ``--server`` (refused connection, unknown host, network error)."""

    exit_code = 6
