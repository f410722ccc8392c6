"""A file's records do not depend on the files beside it: the same alone, among 8 files of its length, in
reverse order, and sharded over 2 torchrun processes (verdicts identical, figures within 1e-4 relative).

The slice of the matrix holds every random draw there is (Griffin-Lim's initial phases, the posterior
sample) and Griffin-Lim, whose 32 iterations turn float round-off into ~1 % when clips are batched.
Everything runs at one torch thread, as each torchrun rank does: across thread counts Griffin-Lim
figures move by float round-off amplified the same way (verdicts unchanged).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from harness.judging import report
from harness.judging.records import Record

COMBOS = dict(frontends_=["audioldm2", "audioldm2-tacotron"], vaes=["scaled", "sample", "none"],
              vocoders=["hifigan", "griffin-lim"])
FLAGS = [flag for key, opt in (("frontends_", "--frontend"), ("vaes", "--vae"), ("vocoders", "--vocoder"))
         for name in COMBOS[key] for flag in (opt, name)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The shipped speech clip and 7 other 16 kHz files of the same length (so they would share a batch)."""
    from harness.signal import synth

    directory = tmp_path_factory.mktemp("batch")
    speech, sr = sf.read([f for f in report.default_files() if f.endswith("speech.flac")][0], dtype="float32")
    target = directory / "speech.wav"
    sf.write(target, speech, sr)
    rng = np.random.default_rng(3)
    for i in range(7):
        x, _ = synth.synth_clip(rng, len(speech) / sr)
        x = np.resize(x, len(speech))
        sf.write(directory / f"other{i}.wav", (0.4 * x / np.abs(x).max()).astype(np.float32), sr)
    return str(target), sorted(str(p) for p in directory.glob("other*.wav"))


def _records_of(target, records):
    return {(r.frontend, r.vae, r.vocoder): r for r in records if r.file == target}


def _in_process(chain, file_list, target):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        records, errors = report.matrix_records(chain, file_list, progress=False, **COMBOS)
    finally:
        torch.set_num_threads(threads)
    assert not errors
    return _records_of(target, records)


def _assert_same(alone, other, how):
    assert alone.keys() == other.keys(), how
    for combo, a in alone.items():
        b = other[combo]
        assert a.status == b.status, (how, combo, a.status, b.status)
        for metric, v in a.metrics.items():
            w = b.metrics[metric]
            # records keep 4 decimals: a figure may round to a neighbour
            assert abs(v - w) <= max(1e-4 * abs(v), 1e-4), (how, combo, metric, v, w)


def test_a_files_records_are_the_same_alone_in_a_batch_reversed_and_sharded(harness_chain, files, tmp_path):
    target, others = files
    alone = _in_process(harness_chain, [target], target)
    assert len(alone) == 12 and all(r.status in ("pass", "yardstick") for r in alone.values())
    _assert_same(alone, _in_process(harness_chain, [target, *others], target), "first of 8")
    _assert_same(alone, _in_process(harness_chain, [*reversed(others), target], target), "last of 8, reversed")

    pytest.importorskip("torch.distributed")
    directory = os.path.dirname(target)
    out = tmp_path / "sharded"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "harness",
           "matrix", "--out", str(out), "--batch-size", "8", *FLAGS, directory]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if os.path.exists("/sys/class/net/lo"):
        env.update(GLOO_SOCKET_IFNAME="lo")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    sharded = [Record.from_dict(json.loads(line)) for line in (out / "records.jsonl").read_text().splitlines()]
    assert {r.file for r in sharded} == {target, *others}
    _assert_same(alone, _records_of(target, sharded), "sharded over 2 processes, batches of 8")
