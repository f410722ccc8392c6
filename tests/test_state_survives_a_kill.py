"""State that survives a kill: a ``harness golden`` or ``harness thresholds --calibrate`` killed with SIGKILL
leaves the previous set (or the new one), never a mix; a second writer of a directory is refused, naming the
holder's pid; the goldens of the bundled model are in place in seconds."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import atomic
from harness.judging import golden, thresholds
from harness.errors import GoldenError

pytest_plugins = ["pytester"]


def harness_cmd(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def shipped_copy(tmp_path) -> Path:
    out = tmp_path / "golden" / "tiny"
    done = subprocess.run([sys.executable, "-m", "harness", "golden", "--model", "tiny", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def kill_when(proc, ready, timeout=300.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (fails if it ends first)."""
    start = time.monotonic()
    while not ready():
        assert proc.poll() is None, f"it ended before the kill point: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() - start < timeout
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_the_bundled_model_s_goldens_are_copied_and_checked_in_seconds(tmp_path):
    start = time.monotonic()
    out = shipped_copy(tmp_path)
    assert time.monotonic() - start < 10
    assert snapshot(out) == snapshot(golden.BUNDLED_DIR / "tiny")
    golden.check(out)


@pytest.mark.slow  # a real kill mid-generation; the writers' other kills are in the default suite
def test_a_killed_harness_golden_leaves_the_previous_set_and_pytest_passes_on_it(tmp_path, pytester):
    out = shipped_copy(tmp_path)
    before = snapshot(out)
    # new settings, so every file would change: killed as soon as the first new file exists
    proc = harness_cmd("golden", "--model", "tiny", "--out", str(out), "--regenerate", "--no-calibrate",
                       "--seconds", "2.56")
    staged = lambda: any(out.parent.glob(".tiny.staging-*/cases/*/audio.wav"))  # noqa: E731
    kill_when(proc, staged)
    assert snapshot(out) == before
    golden.check(out)
    pytester.makepyfile(test_quality="from harness.surfaces.suite import *  # noqa: F401,F403\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--harness-golden-dir={out}",
                                           "-k", "decode-scaled or audioldm2-scaled-hifigan:chain")
    result.assert_outcomes(passed=2)
    # the next writer clears what the killed one left, and a complete run swaps the new set in whole
    done = subprocess.run([sys.executable, "-m", "harness", "golden", "--model", "tiny", "--out", str(out),
                           "--regenerate", "--no-calibrate", "--seconds", "2.56"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "manifest.json").read_text())["audio_length_in_s"] == 2.56
    golden.check(out)
    assert not list(out.parent.glob(".tiny.*"))


def test_a_kill_between_the_two_renames_is_finished_by_the_next_reader(tmp_path):
    out = shipped_copy(tmp_path)
    before = snapshot(out)
    os.replace(out, out.parent / ".tiny.previous")  # where a kill between the renames leaves things
    golden.check(out)
    assert snapshot(out) == before


def test_a_killed_calibration_leaves_a_whole_thresholds_file(tmp_path):
    out = shipped_copy(tmp_path)
    before = (out / "thresholds.toml").read_bytes()
    proc = harness_cmd("thresholds", "--calibrate", "--model", "tiny", "--scope", "golden", f"--golden-dir={out}")
    time.sleep(4.0)  # the model is loaded and calibration is measuring
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = (out / "thresholds.toml").read_bytes()
    assert after == before or thresholds.load(out / "thresholds.toml")["meta"]["scope"] == "golden"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_second_writer_is_refused_with_the_holder_s_pid(tmp_path):
    out = shipped_copy(tmp_path)
    with atomic.locked(out):
        done = subprocess.run([sys.executable, "-m", "harness", "golden", "--model", "tiny", "--out", str(out),
                               "--regenerate", "--no-calibrate"], capture_output=True, text=True)
        assert done.returncode == 2
        assert f"another process (pid {os.getpid()}) is writing it" in done.stderr
        with pytest.raises(GoldenError, match=f"pid {os.getpid()}"):
            with atomic.replacing(out):
                pass
    with atomic.replacing(out) as stage:  # released: the next writer gets it
        assert (stage / "manifest.json").exists()


def test_a_failing_writer_leaves_the_previous_set(tmp_path):
    out = shipped_copy(tmp_path)
    before = snapshot(out)
    with pytest.raises(RuntimeError):
        with atomic.replacing(out) as stage:
            (stage / "manifest.json").write_text("{}")
            raise RuntimeError("calibration failed")
    assert snapshot(out) == before and not list(out.parent.glob(".tiny.*"))


def test_a_file_write_is_atomic(tmp_path):
    target = tmp_path / "summary.md"
    atomic.write_text(target, "old")
    with pytest.raises(ZeroDivisionError):
        with atomic.temporary_sibling(target) as tmp:
            tmp.write_text("half")
            1 / 0
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.md"]


def test_a_rewritten_file_keeps_its_permissions_and_a_new_one_follows_the_umask(tmp_path):
    """Atomic writes go through a private temporary file; what lands must be readable as a plain write's."""
    import os

    fresh = atomic.write_text(tmp_path / "thresholds.toml", "new")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask
    shared = tmp_path / "manifest.json"
    shared.write_text("old")
    shared.chmod(0o664)
    atomic.write_text(shared, "new")
    with atomic.temporary_sibling(shared) as tmp:
        tmp.write_text("newer")
    assert shared.stat().st_mode & 0o777 == 0o664 and shared.read_text() == "newer"
