"""Bounded memory on any input: a 1-hour file is refused at once, from its header, by the commands that would
read it whole, and ``harness diagnose`` reads only the 10.24 s it analyses."""
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from harness.signal import audio
from harness.errors import AudioError

RATE = 44100


@pytest.fixture(scope="module")
def hour_wav(tmp_path_factory):
    """A 1-hour 44.1 kHz 16-bit WAV (318 MB as a file, sparse on disk): 20 s of sound, then silence."""
    path = tmp_path_factory.mktemp("long") / "hour.wav"
    t = np.arange(20 * RATE) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32),
             RATE, subtype="PCM_16")
    data_bytes = 3600 * RATE * 2
    with open(path, "r+b") as f:
        head = f.read(256)
        at = head.index(b"data")
        f.seek(4)
        f.write(struct.pack("<I", at + 8 + data_bytes - 8))
        f.seek(at + 4)
        f.write(struct.pack("<I", data_bytes))
        f.truncate(at + 8 + data_bytes)  # the rest reads as zeros and takes no disk space
    assert sf.info(str(path)).frames == 3600 * RATE
    return path


# a fresh parent per command, so that its children's peak resident memory is that command's alone
MEASURED = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
            "sys.exit(code)")


def harness(*args, cwd):
    """``(completed process, peak resident memory in kB)`` of ``harness ARGS``."""
    done = subprocess.run([sys.executable, "-c", MEASURED, sys.executable, "-m", "harness", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return done, int(done.stderr.rsplit("PEAK_KB", 1)[1].split()[0])


@pytest.mark.parametrize("command", [["matrix"], ["reconstruct", "--out", "rec.wav"], ["mel", "--out", "mels"],
                                     ["golden", "--model", "tiny", "--out", "g/tiny", "--clips"]])
def test_commands_that_read_a_file_whole_refuse_it_unread(hour_wav, tmp_path, command):
    name, *rest = command
    done, _ = harness(name, *rest, hour_wav, cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"3600 s long, over the {audio.MAX_SECONDS:g} s limit" in done.stderr and "--max-seconds" in done.stderr
    assert "Traceback" not in done.stderr


def test_load_audio_refuses_from_the_header_or_reads_the_start(hour_wav):
    with pytest.raises(AudioError, match="3600 s long"):
        audio.load_audio(hour_wav, max_seconds=60)
    x = audio.load_audio(hour_wav, max_seconds=10.24, truncate=True)
    assert abs(len(x) - 10.24 * audio.SAMPLE_RATE) <= 2
    info = audio.load_info(hour_wav, max_seconds=10.24)
    assert info["duration"] == 3600 and info["peak_dbfs"] > -12


def test_diagnose_reads_only_what_it_analyses(hour_wav, tmp_path):
    done, peak_kb = harness("diagnose", hour_wav, "--json", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert '"verdict"' in done.stdout
    assert peak_kb < 2 * 1024 * 1024, peak_kb  # kB: under 2 GB
