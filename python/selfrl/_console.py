"""Progress bars and log messages of the C++ engine, shown where a Python user looks: tqdm bars
(the notebook widget inside Jupyter) and ``sys.stderr`` (which a notebook displays)."""

from __future__ import annotations

import atexit
import sys
import threading

from . import _selfrl

_LEVELS = "TDIWE"


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython  # type: ignore
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class _TqdmSink:
    """Receives the engine's ProgressBar calls (open / update / close) and draws tqdm bars."""

    def __init__(self, tqdm_cls):
        self._tqdm = tqdm_cls
        self._bars = {}
        self._next = 0
        self._lock = threading.Lock()

    def open(self, label: str, total: int, unit: str) -> int:
        with self._lock:
            handle = self._next
            self._next += 1
            self._bars[handle] = self._tqdm(total=total, desc=label, unit=unit, leave=False)
            return handle

    def update(self, handle: int, done: int, postfix: str) -> None:
        bar = self._bars.get(handle)
        if bar is None:
            return
        bar.update(done - bar.n)
        if postfix:
            bar.set_postfix_str(postfix, refresh=False)

    def close(self, handle: int) -> None:
        with self._lock:
            bar = self._bars.pop(handle, None)
        if bar is not None:
            bar.close()


def set_progress(mode: str = "auto") -> None:
    """Where the engine's progress bars go.

    ``"auto"`` (the default at import): tqdm bars (``tqdm.auto``: the notebook widget in Jupyter)
    when tqdm is installed and the output is a notebook or a terminal, nothing otherwise;
    ``"tqdm"``: always tqdm; ``"text"``: the engine's own one-line bars on stderr (terminals
    only); ``"off"``: none.
    """
    if mode not in ("auto", "tqdm", "text", "off"):
        raise ValueError(f"set_progress: unknown mode {mode!r}; use auto, tqdm, text or off")
    if mode in ("auto", "tqdm"):
        tqdm = None
        try:
            if _in_notebook():
                try:
                    import ipywidgets  # noqa: F401  (the notebook bar needs it)
                    from tqdm.notebook import tqdm  # type: ignore
                except ImportError:
                    from tqdm.std import tqdm  # type: ignore
            else:
                from tqdm.std import tqdm  # type: ignore
        except ImportError:
            tqdm = None
        wanted = mode == "tqdm" or _in_notebook() or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
        if tqdm is not None and wanted:
            _selfrl._set_progress_sink(_TqdmSink(tqdm))
            return
        if mode == "tqdm":
            raise ImportError("set_progress('tqdm') needs the tqdm package (Debian: python3-tqdm)")
        _selfrl._set_progress_sink(None)
        return
    _selfrl._set_progress_sink(None if mode == "text" else _OffSink())


class _OffSink:
    def open(self, label, total, unit):
        return 0

    def update(self, handle, done, postfix):
        pass

    def close(self, handle):
        pass


def _log(level: int, message: str) -> None:
    letter = _LEVELS[level] if 0 <= level < len(_LEVELS) else "?"
    print(f"[selfrl {letter}] {message}", file=sys.stderr, flush=True)


def set_log_level(level: str) -> None:
    """The engine's log level: trace, debug, info (default), warn, error or off."""
    _selfrl.set_log_level(level)


def _install() -> None:
    _selfrl._set_log_sink(_log)
    set_progress("auto")
    atexit.register(_uninstall)


def _uninstall() -> None:
    _selfrl._set_log_sink(None)
    _selfrl._set_progress_sink(None)


_install()
