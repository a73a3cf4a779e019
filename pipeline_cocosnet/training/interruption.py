"""Stopping training cleanly on SIGTERM / SIGINT (preemption, a scheduler's time limit, Ctrl-C).

The first signal only sets a flag. After each optimizer step the loop asks :meth:`StopRequest.agreed`
(accelerate's ``set_trigger``/``check_trigger``); with several processes that is one all-reduce of
the flag on every rank at the same place in every step, so all ranks stop after the same step and none is left waiting in a collective. The
loop then writes a checkpoint, flushes its logs and raises :class:`TrainingInterrupted`; the CLI
exits with :data:`EXIT_INTERRUPTED` (75, ``EX_TEMPFAIL``: "try again", i.e. resume).

A second signal stops the process at once (the default action of that signal, no checkpoint).
Launchers forward signals: under ``torchrun``/``accelerate launch`` a worker can get the same
SIGTERM twice within milliseconds (once from the scheduler, once forwarded by the launcher), so
a repeat within :data:`REPEAT_WINDOW_S` seconds counts as the same request (docs/training.md,
"Interruption and resume").
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, Optional

__all__ = ["EXIT_INTERRUPTED", "REPEAT_WINDOW_S", "StopRequest", "TrainingInterrupted"]

#: exit code of an interrupted run that saved a checkpoint (os.EX_TEMPFAIL)
EXIT_INTERRUPTED = 75
#: a repeated signal sooner than this after the first is taken as a duplicate delivery, not as "stop now"
REPEAT_WINDOW_S = 2.0


class TrainingInterrupted(Exception):
    """Raised by the loop after it stopped on a signal and saved ``checkpoint`` at ``step``."""

    def __init__(self, signal_name: str, step: int, checkpoint: Any):
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint
        super().__init__(f"interrupted by {signal_name} at step {step}; checkpoint saved to {checkpoint}")


class StopRequest:
    """Installs SIGTERM/SIGINT handlers (as a context manager) and records the first signal.

    Only the main thread can install handlers; elsewhere (e.g. a training started from a worker
    thread) nothing is installed and :attr:`signal_name` stays ``None``.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.signals = signals
        self.signal_name: Optional[str] = None
        self._received_at = 0.0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        """Whether this process received a stop signal."""
        return self.signal_name is not None

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        now = time.monotonic()
        if self.signal_name is None:
            self.signal_name, self._received_at = name, now
            print(
                f"cocosnet train: {name} received: finishing the current step, then saving a checkpoint and "
                f"stopping (send it again to stop at once, without a checkpoint)",
                file=sys.stderr,
                flush=True,
            )
            return
        if now - self._received_at < REPEAT_WINDOW_S:
            return  # the same request delivered twice (scheduler + launcher)
        print(f"cocosnet train: second {name}: stopping at once, no checkpoint", file=sys.stderr, flush=True)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def agreed(self, accelerator: Any) -> bool:
        """Whether any process asked to stop: accelerate's trigger (``set_trigger`` here, ``check_trigger``: one
        all-reduce of the flag when there are several processes). Call on every rank at the same place."""
        if self.requested:
            accelerator.set_trigger()
        return accelerator.check_trigger()
