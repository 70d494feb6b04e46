"""`nbflow.local.interrupt`: SIGTERM and SIGHUP stop a local run or search as Ctrl-C does."""

from __future__ import annotations

import signal

import pytest

from nbflow.errors import Interrupted
from nbflow.local.interrupt import interruptible


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_raises_interrupted_naming_it_then_the_handlers_are_put_back(sig: str) -> None:
    signum = getattr(signal, sig)
    before = signal.getsignal(signum)
    seen: list[int] = []
    with pytest.raises(Interrupted) as caught, interruptible(on_signal=seen.append):
        signal.raise_signal(signum)
    assert isinstance(caught.value, KeyboardInterrupt)  # what cleans up after Ctrl-C runs
    assert caught.value.signal == sig and str(caught.value) == f"interrupted by {sig}"
    assert seen == [signum]
    assert signal.getsignal(signum) == before


def test_a_second_signal_during_the_cleanup_only_hurries_it() -> None:
    hurried: list[int] = []
    cleaned = False
    with interruptible(again=hurried.append):
        try:
            signal.raise_signal(signal.SIGTERM)
        except Interrupted:
            signal.raise_signal(signal.SIGINT)  # a second Ctrl-C while the steps stop
            cleaned = True
    assert cleaned and hurried == [signal.SIGINT]


def test_an_ignored_signal_stays_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """`nohup` ignores SIGHUP; the run must not take it back."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interruptible():
            signal.raise_signal(signal.SIGHUP)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
