"""The exception libselfrl raises: :class:`Error`, a ``RuntimeError`` that carries the parts of
a libselfrl error message separately (what failed, where, and what to do about it)."""

from __future__ import annotations


class Error(RuntimeError):
    """A libselfrl error.

    ``str(e)`` reads ``"where: message (hint: ...)"``, exactly as the C++ library and the
    ``selfrl`` program print it. The parts are also available on their own:

    Attributes:
        message: what failed.
        where: the file, ``file:line``, recipe key or step it concerns ("" when none).
        hint: what to do about it ("" when none).
    """

    def __init__(self, text: str, message: str = "", where: str = "", hint: str = ""):
        super().__init__(text)
        self.message = message or text
        self.where = where
        self.hint = hint


class CollapseStopped(Error):
    """The collapse guard ended a GRPO run (``collapse_guard.action: stop`` or ``rollback``).

    Attributes:
        checkpoint_dir: stop: the checkpoint written at the step the guard fired; rollback: the
            checkpoint restored and saved as ``final/`` ("" when there was none to roll back to).
    """

    def __init__(self, text: str, message: str = "", where: str = "", hint: str = "", checkpoint_dir: str = ""):
        super().__init__(text, message, where, hint)
        self.checkpoint_dir = checkpoint_dir
