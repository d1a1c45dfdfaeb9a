"""The one exception a stage raises for a bad *piece* (as opposed to a bug or a bad config).

A :class:`PieceError` is caught by the stage CLI, written to the piece's ``status.json``
(stage + reason) and logged; the workflow goes on with the other pieces and the piece lands
in the quarantine table. Anything else is a real error and stops the job.
"""


class PieceError(Exception):
    """A piece cannot go through a stage. ``reason`` is a short machine-readable category."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ConfigError(Exception):
    """params.yaml (or a file it names) is invalid; raised before any work is done."""
