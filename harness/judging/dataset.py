"""Dataset evaluation: the quality matrix over any number of files, in batches of one length, sharded over
the processes of a ``torchrun`` launch, resumable.

::

    harness matrix --out runs/audiocaps data/audiocaps/
    torchrun --nproc_per_node 8 -m harness matrix --out runs/audiocaps data/audiocaps/

Every process plans the same batches (files sorted by length then path, cut into batches of
``batch_size`` files of one length), takes every ``world_size``-th batch that is not done, and writes
each finished batch atomically to ``DIR/parts/``. A file's records do not depend on its batch
(:class:`harness.judging.quality.MatrixRun` computes each clip on its own), so they do not depend on the number
of processes either; a killed run started again with the same command
computes only the batches that have no part yet. When all are done, rank 0 merges the parts:

=================  ==========================================================================
``run.json``       what was asked: model, precision, combinations, thresholds, the plan's hash, the records'
                   schema version (``record_schema``: :data:`harness.judging.records.SCHEMA_VERSION`)
``parts/*.jsonl``  the records (and unusable files) of one finished batch
``records.jsonl``  one :class:`~harness.judging.records.Record` per file x combination
                   (:class:`harness.judging.report.RecordJudge`), in plan order, one JSON object a line
                   (:meth:`~harness.judging.records.Record.to_dict`); broken combinations are measured up to
                   their culprit stage only
``errors.jsonl``   one line per file that could not be used, with the reason
``summary.json``   per combination: status counts, mean and percentiles of each metric, worst files
=================  ==========================================================================
"""
from __future__ import annotations

import datetime
import hashlib
import heapq
import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm.auto import tqdm

from harness.machine import version
from harness.errors import AudioError
from harness.signal import audio
from harness.judging import matrix
from harness.judging.golden import sha256
from harness.judging.quality import MatrixRun, precision
from harness.judging.records import SCHEMA_VERSION, Expected, Record
from harness.judging.report import RecordJudge
from harness.judging.stages import JUDGED
from harness.judging.verdicts import FAILING

#: files per batch (one length): large enough to keep a GPU busy, small enough that a killed run loses little
BATCH_SIZE = 16
#: percentiles of each metric in ``summary.json``
PERCENTILES = (5, 50, 95)
#: worst files listed per combination in ``summary.json``
WORST = 5


@dataclass(frozen=True)
class Batch:
    """Files evaluated together: all of ``samples`` samples at 16 kHz once on the frame grid."""

    index: int
    files: Tuple[str, ...]
    samples: int

    @property
    def part(self) -> str:
        """This batch's file name under ``parts/``."""
        return f"{self.index:06d}.jsonl"


@dataclass(frozen=True)
class Shard:
    """This process's place in a ``torchrun`` launch (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


# ---------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------


def grid_samples(path: str) -> int:
    """Samples a file will have at 16 kHz on the frame grid, from its header alone (no audio read);
    :class:`harness.errors.AudioError` if it has none."""
    info = audio.header(path)
    return audio.grid_frames(math.ceil(info.frames * audio.SAMPLE_RATE / info.samplerate)) * audio.HOP


def plan(files: Sequence[str], batch_size: int = BATCH_SIZE) -> Tuple[List[Batch], List[dict]]:
    """Batches of equal-length files, and an error entry ``{"file", "error"}`` per file whose header cannot
    be read. The same files give the same batches on every process."""
    lengths, errors = [], []
    for f in files:
        try:
            lengths.append((grid_samples(f), f))
        except AudioError as exc:
            errors.append({"file": f, "error": str(exc)})
    lengths.sort()
    batches: List[Batch] = []
    for samples, group in itertools.groupby(lengths, key=lambda nf: nf[0]):
        same = [f for _, f in group]
        for k in range(0, len(same), batch_size):
            batches.append(Batch(len(batches), tuple(same[k:k + batch_size]), samples))
    return batches, errors


def plan_hash(batches: Sequence[Batch]) -> str:
    """Hash of the batches and of each file's size and modification time: a file replaced or edited since a
    run started changes it, so its records are never mixed with the old ones."""
    h = hashlib.sha256()
    for b in batches:
        stamps = [(st.st_size, st.st_mtime_ns) for st in map(os.stat, b.files)]
        h.update(json.dumps([b.samples, b.files, stamps]).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------


def shard_from_env() -> Shard:
    """The shard ``torchrun`` (or ``accelerate launch``) describes in ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``."""
    env = os.environ
    return Shard(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def _barrier(shard: Shard) -> None:
    if shard.distributed:
        import torch.distributed as dist

        dist.barrier()


def init_distributed(shard: Shard, device: str) -> str:
    """Join the launch's process group (NCCL on CUDA, gloo on CPU) and return this process's device:
    ``cuda:<LOCAL_RANK>`` when ``device`` is ``cuda`` or ``auto`` with CUDA present."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{shard.local_rank}" if shard.distributed else "cuda"
    elif device == "auto":
        device = "cpu"
    if shard.distributed:
        import torch.distributed as dist

        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        # a rank waits at the final barrier for the slowest one: allow a long dataset
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo",
                                timeout=datetime.timedelta(hours=24))
    return device


def run_settings(chain, judge, combos, batches: Sequence[Batch], batch_size: int) -> dict:
    """What a run's records depend on, and the schema version they are written in
    (``record_schema``); a directory holding another run's parts is refused."""
    return {"model": chain.source.spec if chain.source else None, "precision": precision(chain),
            "thresholds": str(judge.path.resolve()), "thresholds_sha256": sha256(judge.path)[:16],
            "combinations": [c.id for c in combos], "batch_size": batch_size, "plan": plan_hash(batches),
            "files": sum(len(b.files) for b in batches), "harness": version(), "record_schema": SCHEMA_VERSION}


def _check_settings(out: Path, settings: dict, shard: Shard) -> None:
    path = out / "run.json"
    if path.exists():
        old = json.loads(path.read_text())
        changed = [k for k in settings if old.get(k) != settings[k]]
        if changed:
            why = " (files were added, removed or changed since it started)" if "plan" in changed else ""
            raise ValueError(f"{out} holds a run with other settings ({', '.join(changed)} differ{why}; see "
                             f"{path}): pass another --out, or delete the directory to start over")
    elif shard.rank == 0:
        _write_atomic(path, json.dumps(settings, indent=1) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a reader (or a resumed run) sees the whole file or none of it


def evaluate_batch(chain, judge, combos, batch: Batch) -> Tuple[List[Record], List[dict]]:
    """``(records, errors)`` of one batch: its :class:`~harness.judging.records.Record` s, and an
    ``{"file", "error"}`` line per file that could not be used."""
    clips, baseline_of, unusable = judge.load(batch.files)
    errors = [{"file": e.path, "error": str(e)} for e in unusable]
    records = []
    if clips:
        run = MatrixRun(chain, clips, judged_only=True)
        records = judge.records(run, combos, baseline_of)
        order = {f: k for k, f in enumerate(clips)}
        records.sort(key=lambda r: order[r.file])  # file by file, combinations in matrix order
    return records, errors


def evaluate(chain, files: Sequence[str], out: str | Path, golden_dir: Optional[str] = None, combos=None,
             batch_size: int = BATCH_SIZE, shard: Shard = Shard(), progress: bool = True,
             max_seconds: Optional[float] = None) -> Optional[dict]:
    """Evaluate ``combos`` (default: all) on ``files`` into ``out``; this process's share of a launch.
    Files longer than ``max_seconds`` (default :data:`harness.signal.audio.MAX_SECONDS`) become error lines, unread.

    Returns the summary on rank 0 (``None`` on the others), after every batch is done and merged.
    """
    out = Path(out)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    combos = list(combos or matrix.combinations())
    judge = RecordJudge(chain, golden_dir, max_seconds)
    judge.require_scope(True)  # a dataset's files are judged relative to the reference (no stored baseline)
    # 1. the same plan on every process; a directory of another run is refused
    batches, header_errors = plan(files, batch_size)
    _check_settings(out, run_settings(chain, judge, combos, batches, batch_size), shard)
    # 2. what is left, listed by every process before any writes a part (a killed run's half-written
    #    temporary files go: nobody writes before the barrier)
    pending = [b for b in batches if not (out / "parts" / b.part).exists()]
    if shard.rank == 0:
        for tmp in (out / "parts").glob(".*.tmp"):
            tmp.unlink()
    _barrier(shard)
    mine = pending[shard.rank::shard.world_size]
    # 3. this process's batches, each written whole when done
    bar = tqdm(total=sum(len(b.files) for b in mine), unit="file", disable=not progress or shard.rank != 0,
               desc=f"matrix (rank 0 of {shard.world_size})" if shard.distributed else "matrix")
    for b in mine:
        records, errors = evaluate_batch(chain, judge, combos, b)
        lines = [r.to_dict() for r in records] + errors
        _write_atomic(out / "parts" / b.part, "".join(json.dumps(line) + "\n" for line in lines))
        bar.update(len(b.files))
    bar.close()
    # 4. rank 0 merges once every process is done
    _barrier(shard)
    if shard.rank != 0:
        return None
    return merge(out, batches, header_errors)


def _parts(out: Path, batches: Sequence[Batch]) -> Iterator[dict]:
    for b in batches:
        with open(out / "parts" / b.part) as fh:
            for line in fh:
                yield json.loads(line)


def merge(out: Path, batches: Sequence[Batch], header_errors: Sequence[dict] = ()) -> dict:
    """Write ``records.jsonl``, ``errors.jsonl`` and ``summary.json`` from the parts (streamed: memory holds
    the summary's per-combination figures, not the records)."""
    summary = Summary()
    tmp_records, tmp_errors = out / ".records.jsonl.tmp", out / ".errors.jsonl.tmp"
    with open(tmp_records, "w") as records, open(tmp_errors, "w") as errors:
        for e in header_errors:
            errors.write(json.dumps(e) + "\n")
        for line in _parts(out, batches):
            if "error" in line and "frontend" not in line:
                errors.write(json.dumps(line) + "\n")
                summary.errors += 1
            else:
                record = Record.from_dict(line)
                records.write(json.dumps(record.to_dict()) + "\n")
                summary.add(record)
    summary.errors += len(header_errors)
    os.replace(tmp_records, out / "records.jsonl")
    os.replace(tmp_errors, out / "errors.jsonl")
    result = summary.result()
    _write_atomic(out / "summary.json", json.dumps(result, indent=1) + "\n")
    return result


# ---------------------------------------------------------------------------
# the summary
# ---------------------------------------------------------------------------


class Summary:
    """Per combination: status counts, each metric's mean and percentiles, the worst files.

    "Worst" is by the key metric (:data:`harness.judging.stages.JUDGED`) of the stage the combination is judged at:
    the chain for a correct one, the culprit stage for a known mistake (the larger the loss, the worse;
    for a mistake, the *smaller*, since it is then closest to escaping detection).
    """

    def __init__(self):
        self.files: set = set()
        self.errors = 0
        self._status: Dict[str, Dict[str, int]] = {}
        self._values: Dict[str, Dict[str, List[float]]] = {}
        self._worst: Dict[str, List[Tuple[float, str]]] = {}
        self._combos: Dict[str, matrix.Combination] = {}

    def add(self, record: Record) -> None:
        """Count one :class:`~harness.judging.records.Record` (a file x combination) into the per-combination
        statistics."""
        combo = matrix.Combination(record.frontend, record.vae, record.vocoder)
        self._combos[combo.id] = combo
        self.files.add(record.file)
        status = self._status.setdefault(combo.id, {})
        status[record.status.value] = status.get(record.status.value, 0) + 1
        values = self._values.setdefault(combo.id, {})
        for k, v in record.metrics.items():
            values.setdefault(k, []).append(v)
        stage = combo.culprit() or "chain"
        key = f"{stage}.{JUDGED[stage][0]}"
        if key in record.metrics:
            badness = record.metrics[key] if stage == "chain" else -record.metrics[key]
            heapq.heappush(self._worst.setdefault(combo.id, []), (badness, record.file))
            if len(self._worst[combo.id]) > WORST:
                heapq.heappop(self._worst[combo.id])

    def result(self) -> dict:
        """``summary.json``'s content: per combination its status counts, mean/p5/p50/p95 per metric, worst files, verdict."""
        combos = {}
        for cid, status in self._status.items():
            combo = self._combos[cid]
            stage = combo.culprit() or "chain"
            key = f"{stage}.{JUDGED[stage][0]}"
            metrics = {k: {"mean": round(float(np.mean(v)), 4),
                           **{f"p{q}": round(float(np.percentile(v, q)), 4) for q in PERCENTILES}, "n": len(v)}
                       for k, v in sorted(self._values[cid].items())}
            worst = sorted(self._worst.get(cid, []), reverse=True)
            expected = Expected.PASS if combo.culprit() is None else Expected.DETECT
            combos[cid] = {"expected": expected.value, "judged_at": stage,
                           "status": dict(sorted(status.items())), "metrics": metrics,
                           "worst": [{"file": f, key: abs(b)} for b, f in worst]}
        failing = sum(n for c in combos.values() for s, n in c["status"].items() if s in FAILING)
        return {"files": len(self.files), "unusable_files": self.errors,
                "records": sum(sum(c["status"].values()) for c in combos.values()),
                "failing_records": failing, "verdict": "OK" if not failing else "NOT OK", "combinations": combos}


def summary_text(summary: dict, out: Path) -> str:
    """What a person reads first: files, records, status counts, the verdict and where the files are."""
    counts: Dict[str, int] = {}
    for c in summary["combinations"].values():
        for s, n in c["status"].items():
            counts[s] = counts.get(s, 0) + n
    lines = [f"{summary['files']} file(s) x {len(summary['combinations'])} combinations = {summary['records']} "
             f"records" + (f"; {summary['unusable_files']} file(s) unusable ({out / 'errors.jsonl'})"
                           if summary["unusable_files"] else ""),
             "status: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))]
    for cid, c in summary["combinations"].items():
        bad = {s: n for s, n in c["status"].items() if s in FAILING}
        if bad:
            worst = ", ".join(Path(w["file"]).name for w in c["worst"][:3])
            lines.append(f"  {cid}: {', '.join(f'{s} {n}' for s, n in bad.items())} (worst: {worst})")
    lines.append(f"records: {out / 'records.jsonl'}; summary: {out / 'summary.json'}")
    lines.append(f"verdict: {summary['verdict']}")
    return "\n".join(lines)
