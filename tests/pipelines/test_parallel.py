from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from models.threads import thread_count
from pipelines.parallel import in_background

two_cores = pytest.mark.skipif(thread_count() < 2, reason="a second process needs a second usable core")


@two_cores
def test_the_step_runs_in_another_process_and_returns_its_result():
    with in_background(os.getpid) as pending:
        assert pending.background
        child = pending.result()
    assert isinstance(child, int) and child != os.getpid()
    with in_background(divmod, 17, 5) as pending:
        assert pending.result() == (3, 2)


def test_disabled_or_a_single_core_runs_the_step_here(monkeypatch):
    with in_background(os.getpid, enabled=False) as pending:
        assert not pending.background and pending.result() == os.getpid()
    monkeypatch.setenv("STOREFRONT_THREADS", "1")
    with in_background(os.getpid) as pending:
        assert not pending.background and pending.result() == os.getpid()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_steps_error_is_raised_again(enabled):
    with pytest.raises(ValueError, match="invalid literal for int"):
        with in_background(int, "not a number", enabled=enabled) as pending:
            pending.result()


def test_the_peak_memory_counts_the_children(child_env):
    # a fresh interpreter, whose own memory stays at its peak while a child holds 300 MB for a second
    script = textwrap.dedent("""
        import subprocess, sys, time
        from pipelines.parallel import _status_kb, peak_memory_gb, watch_memory
        watch_memory(interval=0.05)
        own = _status_kb("self", "VmHWM") / 1024**2
        alone = peak_memory_gb()
        subprocess.run([sys.executable, "-c", "import time; x = bytearray(300_000_000); time.sleep(1)"], check=True)
        print(own, alone, peak_memory_gb())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=child_env(), cwd=os.getcwd())
    assert done.returncode == 0, done.stderr[-2000:]
    own, alone, peak = map(float, done.stdout.split())
    assert alone == pytest.approx(own, abs=0.01)
    assert peak >= own + 0.28  # the child's bytes, not the parent's memory counted twice
    assert peak < own + 0.6
