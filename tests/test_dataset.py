"""``harness matrix --out DIR``: a dataset in batches of one length, sharded over torchrun, resumable."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from harness.surfaces import cli
from harness.judging import dataset
from harness.judging.records import SCHEMA_VERSION, Record

#: a small slice of the matrix: a correct and a broken front-end, a correct and a broken VAE
COMBOS = ["--frontend", "audioldm2", "--frontend", "power-mel", "--vae", "scaled", "--vae", "no-decode-scale",
          "--vocoder", "hifigan"]


def make_files(directory, n, seed=5):
    """``n`` synthetic clips of three lengths at two sample rates, plus a corrupt and a silent file."""
    from harness.signal import synth

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        x, _ = synth.synth_clip(rng, [1.0, 1.28, 2.0][i % 3])
        sf.write(directory / f"clip{i:03d}.wav", (0.5 * x / np.abs(x).max()).astype(np.float32), 16000)
    (directory / "corrupt.wav").write_bytes(b"RIFF garbage" * 10)
    sf.write(directory / "silent.wav", np.zeros(16000, np.float32), 16000)
    return directory


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("dataset"), 10)


def run_in_process(out, files, *extra):
    """``harness matrix --out`` in this process, at one torch thread: what each torchrun rank runs with
    (torchrun sets OMP_NUM_THREADS=1), so the figures are bit-identical, not only equal to rounding."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return cli.main(["matrix", "--out", str(out), "--batch-size", "3", *COMBOS, *extra, str(files)])
    finally:
        torch.set_num_threads(threads)


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def torchrun(out, files, nproc=2, **popen):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m", "harness", "matrix",
           "--out", str(out), "--batch-size", "3", *COMBOS, str(files)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if os.path.exists("/sys/class/net/lo"):  # one machine: gloo on loopback, whatever the host name resolves to
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_a_dataset_gives_records_errors_and_a_summary(tmp_path, files, capsys):
    out = tmp_path / "run"
    assert run_in_process(out, files) == 2  # all verdicts fine, two files unusable
    printed = capsys.readouterr().out
    records = [Record.from_dict(line) for line in read_lines(out / "records.jsonl")]
    assert len(records) == 10 * 4 and {r.file for r in records} == {str(files / f"clip{i:03d}.wav") for i in range(10)}
    assert {r.status for r in records} <= {"pass", "yardstick", "detected", "not separable"}
    assert json.loads((out / "run.json").read_text())["record_schema"] == SCHEMA_VERSION
    errors = {os.path.basename(e["file"]): e["error"] for e in read_lines(out / "errors.jsonl")}
    assert set(errors) == {"corrupt.wav", "silent.wav"} and "silent" in errors["silent.wav"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == 10 and summary["records"] == 40 and summary["unusable_files"] == 2
    reference = summary["combinations"]["audioldm2-scaled-hifigan"]
    assert reference["judged_at"] == "chain" and sum(reference["status"].values()) == 10
    lsd = reference["metrics"]["chain.lsd"]
    assert lsd["p5"] <= lsd["p50"] <= lsd["p95"] and lsd["n"] == 10
    assert lsd["mean"] == pytest.approx(np.mean([r.metrics["chain.lsd"] for r in records
                                                 if r.vae == "scaled" and r.frontend == "audioldm2"]), abs=1e-3)
    assert len(reference["worst"]) == dataset.WORST
    mistake = summary["combinations"]["power-mel-scaled-hifigan"]
    assert mistake["judged_at"] == "frontend" and "chain.lsd" not in mistake["metrics"]  # measured up to its culprit
    assert "verdict: OK" in printed and "2 file(s) unusable" in printed


def test_the_same_command_after_a_kill_finishes_what_is_left(tmp_path, files):
    out = tmp_path / "run"
    run_in_process(out, files)
    before = (out / "records.jsonl").read_bytes()
    parts = sorted((out / "parts").glob("*.jsonl"))
    assert len(parts) == 4  # 1.0 s x4, 1.28 s x3, 2.0 s x3 in batches of 3
    # a run killed after its first batches: one part missing, the merge never happened
    parts[2].unlink()
    (out / "records.jsonl").unlink()
    (out / "parts" / ".000002.jsonl.999.tmp").write_text('{"half": ')
    stamps = {p.name: p.stat().st_mtime_ns for p in parts if p.exists()}
    run_in_process(out, files)
    assert {p.name: p.stat().st_mtime_ns for p in parts if p.name in stamps} == stamps  # nothing recomputed
    assert (out / "records.jsonl").read_bytes() == before  # nothing lost, nothing twice
    assert not list((out / "parts").glob(".*.tmp"))


def test_a_directory_of_another_run_is_refused(tmp_path, files, capsys):
    out = tmp_path / "run"
    run_in_process(out, files)
    capsys.readouterr()
    assert run_in_process(out, files, "--vocoder", "griffin-lim") == 2
    err = capsys.readouterr().err
    assert "holds a run with other settings (combinations differ" in err and "another --out" in err
    # a file edited since the run started: its old records must not be mixed with new ones
    clip = files / "clip000.wav"
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert run_in_process(out, files) == 2
        assert "plan differ (files were added, removed or changed since it started)" in capsys.readouterr().err
    finally:
        os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_torchrun_shards_the_files_and_writes_the_same_records(tmp_path, files):
    """Two processes (gloo) write, byte for byte, the records one process writes."""
    single = tmp_path / "single"
    run_in_process(single, files)
    sharded = tmp_path / "sharded"
    proc = torchrun(sharded, files)
    output, _ = proc.communicate(timeout=300)
    assert "verdict: OK" in output, output[-3000:]
    assert (sharded / "records.jsonl").read_bytes() == (single / "records.jsonl").read_bytes()
    assert (sharded / "errors.jsonl").read_bytes() == (single / "errors.jsonl").read_bytes()
    assert json.loads((sharded / "summary.json").read_text()) == json.loads((single / "summary.json").read_text())


@pytest.mark.slow
def test_torchrun_killed_midway_and_started_again_loses_and_repeats_nothing(tmp_path):
    many = make_files(tmp_path / "files", 120, seed=11)
    single = tmp_path / "single"
    run_in_process(single, many)
    out = tmp_path / "killed"
    proc = torchrun(out, many, start_new_session=True)
    deadline = time.time() + 300
    while len(list((out / "parts").glob("*.jsonl"))) < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "parts").glob("*.jsonl")))
    assert 8 <= done < 41 and not (out / "records.jsonl").exists(), done
    output, _ = torchrun(out, many).communicate(timeout=600)
    assert "verdict: OK" in output, output[-3000:]
    assert (out / "records.jsonl").read_bytes() == (single / "records.jsonl").read_bytes()
    shutil.rmtree(many)
