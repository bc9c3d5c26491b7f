"""The one-line notes the loaders print: where a dataset was found, or what stands in for it.

A student must learn, once, that the practical runs on the bundled Fashion-MNIST sample or
on the synthetic spectra rather than on the full set (and how to get the full set), and
where a full dataset was found. Not once per call (a practical loads ``"train"`` and then
``"test"``), and not as a 700-character warning with a traceback line under it.

So the notes go through :mod:`logging`, on the logger ``"nn.data"``, each at most once per
process (keyed by what it says, e.g. ``"fashion-mnist: sample"``):

- a stand-in or a sample used in place of the full set: ``WARNING``;
- where a full dataset was found: ``INFO``.

Where the program has not configured logging (a script, a notebook), a small handler of
ours writes the line to ``sys.stderr`` as ``nn.data: <message>`` (a notebook shows it under
the cell). Once the program configures logging (``logging.basicConfig``, pytest), the
record goes to its handlers instead, and ours stays quiet. To silence the notes::

    import logging
    logging.getLogger("nn.data").setLevel(logging.ERROR)

``warnings.warn`` was the other candidate; it prints the file and line of the call and the
source line under the message (two lines, per call site), which is noise here: the user
did nothing wrong, the note only says what data they get.
"""
from __future__ import annotations

import logging
import sys

logger = logging.getLogger("nn.data")
_said: set[str] = set()


class _StderrUnlessConfigured(logging.Handler):
    """Writes ``nn.data: message`` to the current ``sys.stderr`` while the root logger has
    no handler; steps aside once the program configures logging (no line twice)."""

    def emit(self, record):
        if logging.getLogger().handlers:
            return
        try:
            sys.stderr.write(f"{record.name}: {self.format(record)}\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - logging must never break a loader
            self.handleError(record)


_handler = _StderrUnlessConfigured()


def _setup():
    """Attach our handler and let INFO through, the first time a note is made (not at import)."""
    if _handler not in logger.handlers:
        logger.addHandler(_handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def note_once(key: str, message: str, level: int = logging.INFO) -> bool:
    """Log ``message`` on ``"nn.data"`` unless a note with ``key`` was made in this process.

    Returns True when the message was logged now.
    """
    if key in _said:
        return False
    _said.add(key)
    _setup()
    logger.log(level, message)
    return True


def found(dataset: str, where) -> bool:
    """One line saying where a full dataset was read from, e.g. ``Fashion-MNIST: /usr/...``."""
    return note_once(f"{dataset}: found {where}", f"{dataset}: {where}", logging.INFO)


def standing_in(dataset: str, message: str) -> bool:
    """One line saying what is used in place of a dataset, and how to get the real one."""
    return note_once(f"{dataset}: stand-in", f"{dataset}: {message}", logging.WARNING)


def forget():
    """Forget which notes were made (tests use it to see a note again)."""
    _said.clear()


__all__ = ["logger", "note_once", "found", "standing_in", "forget"]
