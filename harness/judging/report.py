"""Matrix records for users' own files and their table (the evidence figures: :mod:`harness.judging.evidence`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm.auto import tqdm

from harness import machine
from harness.errors import AudioError
from harness.vocabulary import CLIP_STAGES
from harness.signal.audio import MAX_SECONDS, load_audio
from harness.model import loading
from harness.judging import golden, matrix, thresholds
from harness.judging.golden import CLIPS_DIR, locate, sha256
from harness.judging.quality import MatrixRun, precision
from harness.judging.records import Expected, Policy, Record, StageRecord, Status
from harness.judging.stages import StageResult
from harness.judging.verdicts import FAILING, Judge


def find_thresholds(source: Optional[loading.ModelSource], golden_dir: Optional[str] = None,
                    dtype: str = "fp32") -> Path:
    """``thresholds.toml`` of a model: in :func:`harness.judging.golden.locate`'s directory (``--golden-dir``, else
    ``golden/<slug>`` here, else the copy shipped with a bundled model), else in the model's own directory;
    the file of the run's precision (:func:`harness.judging.thresholds.file_name`)."""
    candidates = []
    if golden_dir or source is not None:
        candidates.append(locate(source.spec if source else "", golden_dir) / thresholds.file_name(dtype))
    if source is not None:
        candidates.append(source.path / thresholds.file_name(dtype))
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"no {dtype} thresholds for model {source.spec if source else '?'} (looked in "
                            f"{', '.join(map(str, candidates))}): run `harness golden --model MODEL` then "
                            f"`harness thresholds --calibrate --dtype {dtype}`")


def default_files() -> List[str]:
    """The shipped reference clips (``harness/clips/*.flac``), sorted."""
    return sorted(str(p) for p in CLIPS_DIR.glob("*.flac"))


def baseline_names(golden_dir: Path) -> Dict[str, str]:
    """sha256 of each golden clip file -> its name in the thresholds (``clip:<name>``): the files that
    have a stored per-clip baseline. Empty when the golden set has no manifest."""
    path = Path(golden_dir) / "manifest.json"
    if not path.exists():
        return {}
    files = json.loads(path.read_text()).get("files", {})
    return {entry["sha256"]: "clip:" + Path(rel).stem for rel, entry in files.items() if rel.startswith("clips/")}


class RecordJudge:
    """Turns matrix results into records, clip by clip, with the thresholds of the chain's model and precision.

    A clip that is one of the golden set's clips (same sha256) is judged against its stored per-clip
    limits (policy ``absolute``); any other clip against the reference combination on the same clip
    (policy ``relative``); the judging engine chooses (:meth:`harness.judging.verdicts.Judge.file_stage`).
    Every stage record says which.

    Example::

        judge = RecordJudge(chain)
        run = MatrixRun(chain, {"my.wav": audio.load_audio("my.wav")})
        records = judge.records(run, matrix.combinations(), {})
    """

    def __init__(self, chain, golden_dir: Optional[str] = None, max_seconds: Optional[float] = None):
        self.max_seconds = MAX_SECONDS if max_seconds is None else max_seconds  # longer files are refused unread
        self.path = find_thresholds(chain.source, golden_dir, precision(chain))
        self.thresholds = thresholds.load(self.path)
        thresholds.check_kernel_path(self.thresholds, machine.kernel_path(str(chain.device)), self.path)
        self.scope = self.thresholds.get("meta", {}).get("scope", "all")
        self._baselines = baseline_names(self.path.parent)
        self._known = list(self.thresholds.get("meta", {}).get("clips", []))

    def baseline(self, path) -> Optional[str]:
        """The thresholds' name (``clip:<name>``) of a file that is a golden clip, else ``None``."""
        name = self._baselines.get(sha256(Path(path)))
        return name if name in self._known else None

    def load(self, files: Sequence[str]) -> Tuple[Dict[str, np.ndarray], Dict[str, str], List["AudioError"]]:
        """Read ``files`` for judging: ``(clips, baseline_of, errors)``, the clips by file name, the stored
        baseline of each file that is a golden clip (:meth:`baseline`), an AudioError per unusable file
        (the others are still read)."""
        clips, baseline_of, errors = {}, {}, []
        for f in files:
            try:
                clips[f] = load_audio(f, max_seconds=self.max_seconds)
            except AudioError as exc:
                errors.append(exc)
                continue
            name = self.baseline(f)
            if name:
                baseline_of[f] = name
        return clips, baseline_of, errors

    def require_scope(self, without_baseline: bool) -> None:
        """Refuse (ValueError naming the command) when the thresholds cannot judge these files."""
        if self.scope == "golden" or (self.scope != "all" and without_baseline):
            what = ("it holds no matrix limits, so no file can be judged" if self.scope == "golden" else
                    "it holds no relative margins, so audio without a stored baseline cannot be judged")
            raise ValueError(f"{self.path} was calibrated with --scope {self.scope}: {what}; run "
                             "`harness thresholds --calibrate --scope all` (with the --dtype of this run)")

    def records(self, run, combos, baseline_of: Dict[str, str]) -> List[Record]:
        """One :class:`~harness.judging.records.Record` per clip of ``run`` x combination, combination-major;
        ``baseline_of`` maps a clip name to its stored baseline (:meth:`baseline`)."""
        judge, records = Judge(self.thresholds), []
        for combo in combos:
            res = run.result(combo)
            exp = combo.verdicts()
            for i, f in enumerate(run.clip_names):
                stages, flat, ok_all = {}, {}, True
                for stage, r in res.items():
                    one = _clip(r, i)
                    baseline = self._known.index(baseline_of[f]) if f in baseline_of else None
                    verdict = judge.file_stage(combo, stage, one, baseline,
                                               lambda: _clip(run.result(combo.reference(stage))[stage], i))
                    ok, policy, source, limits = verdict.ok, Policy(verdict.policy), verdict.source, verdict.limits
                    ok_all &= ok
                    reference = {Policy.ABSOLUTE: baseline_of.get(f),
                                 Policy.RELATIVE: combo.reference(stage).id}.get(policy)
                    stages[stage] = StageRecord(
                        expected=Expected(exp[stage]), ok=bool(ok), error=r.error, policy=policy, reference=reference,
                        limits_from=source if policy != Policy.NONE else None,
                        limits=_applied(limits) if policy in (Policy.ABSOLUTE, Policy.RELATIVE) else None)
                    for k, v in one.metrics.items():
                        flat[f"{stage}.{k}"] = round(float(v[0]), 4)
                expected = Expected.PASS if all(e != Expected.DETECT for e in exp.values()) else Expected.DETECT
                records.append(Record(file=f, frontend=combo.frontend, vae=combo.vae, vocoder=combo.vocoder,
                                      expected=expected, ok=bool(ok_all), status=Judge.status(expected, ok_all, stages),
                                      baseline=baseline_of.get(f), metrics=flat, stages=stages))
        return records


def matrix_records(chain, files: Sequence[str] = (), golden_dir: Optional[str] = None, frontends_=None, vaes=None,
                   vocoders=None, progress: bool = True, clips: Optional[Dict[str, np.ndarray]] = None,
                   judged_only: bool = False, max_seconds: Optional[float] = None) -> Tuple[List[Record], List[str]]:
    """Evaluate combinations on audio files (or named ``clips``); one record per clip x combination,
    judged by :class:`RecordJudge`.

    ``files`` may name directories (their audio files are taken, sorted). ``judged_only`` skips the
    stages after a broken combination's culprit (reported only; :meth:`harness.judging.matrix.Evaluator.run`).
    A file longer than ``max_seconds`` (default :data:`harness.signal.audio.MAX_SECONDS`) is refused from its
    header, unread, as an error line.

    Returns ``(records, errors)``: the :class:`~harness.judging.records.Record` s, and a line in ``errors`` per
    file that cannot be read (the others are still evaluated).
    """
    judge = RecordJudge(chain, golden_dir, max_seconds)
    read, baseline_of, unusable = judge.load(
        [str(f) for f in golden.audio_files(list(files) or ([] if clips else default_files()))])
    clips = {**(clips or {}), **read}
    errors = [str(e) for e in unusable]
    if not clips:
        return [], errors
    judge.require_scope(any(f not in baseline_of for f in clips))
    run = MatrixRun(chain, clips, judged_only=judged_only, keep_outputs=False)  # records write no evidence
    records = []
    for combo in tqdm(matrix.combinations(frontends_, vaes, vocoders), desc="matrix", disable=not progress):
        records += judge.records(run, [combo], baseline_of)
    order = {f: k for k, f in enumerate(clips)}
    records.sort(key=lambda r: order[r.file])  # file by file, combinations in matrix order
    return records, errors


def _applied(limits: Optional[Dict]) -> Optional[Dict[str, float]]:
    """The limits one clip was judged by, as plain numbers (``{"mel_l1_max": 0.61, ...}``)."""
    if not limits:
        return None
    return {k: round(float(np.asarray(v, dtype=float).reshape(-1)[0]), 4) for k, v in limits.items()}


def _clip(result: "StageResult", i: int) -> "StageResult":
    return StageResult({k: v[i:i + 1] for k, v in result.metrics.items()}, result.error)


def matrix_table(records: Sequence[Record]) -> str:
    """A fixed-width table: file, combination, expected, ok, and the key metric of each stage (units in
    the header; a stage that stopped shows its error's type and a note number, one not measured ``-``), then each
    error whole below the table under its note number (a table cell would cut it)."""
    head = ["file", "combination", "expected", "status", "frontend mel_l1 (nats)", "vae mel_l1 (nats)",
            "vocoder mel_l1 (nats)", "chain mel_l1 (nats)", "chain lsd (dB)", "chain mrstft"]
    rows = [head]
    notes: Dict[str, int] = {}  # each distinct error once, numbered in order of appearance
    for r in records:
        m = r.metrics

        def cell(key):
            stage = r.stages.get(key.split(".")[0])
            if key in m:
                return f"{m[key]:.3f}"
            error = stage.error if stage is not None else None
            if not error:
                return "-"
            number = notes.setdefault(error, len(notes) + 1)
            return f"{error.split(':')[0]} [{number}]"

        rows.append([Path(r.file).name, r.combination, r.expected.value,
                     r.status.value, cell("frontend.mel_l1"), cell("vae.mel_l1"),
                     cell("vocoder.mel_l1"), cell("chain.mel_l1"), cell("chain.lsd"), cell("chain.mrstft")])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    table = "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)
    return table + "".join(f"\n[{n}] {error}" for error, n in notes.items())


def matrix_summary(records: Sequence[Record], errors: Sequence[str] = ()) -> str:
    """What a person reads first: correct combinations per stage, known mistakes detected, the verdict."""
    files = sorted({r.file for r in records})
    correct = [r for r in records if r.expected == Expected.PASS]
    broken = [r for r in records if r.expected == Expected.DETECT]
    lines = [f"{len(files)} file(s) x {len(records) // max(1, len(files))} combinations"
             + (f"; {len(errors)} file(s) unusable (above)" if errors else "")]
    per_stage = []
    for stage in CLIP_STAGES:
        judged = [r for r in correct if r.stages[stage].policy != Policy.YARDSTICK]
        ok = sum(r.stages[stage].ok for r in judged)
        yard = len(correct) - len(judged)
        per_stage.append(f"{stage} {ok}/{len(judged)}" + (f" (+{yard} yardstick)" if yard else ""))
    lines.append(f"correct combinations ({len(correct)} records) pass:  " + ", ".join(per_stage))
    if any(r.status == Status.YARDSTICK for r in correct):
        lines.append(f"yardstick: {matrix.REFERENCE.id} on files without a stored baseline is what the others are "
                     "judged against (not itself judged)")
    detected = sum(r.status == Status.DETECTED for r in broken)
    unseparable = [r for r in broken if r.status == Status.NOT_SEPARABLE]
    lines.append(f"known mistakes ({len(broken)} records): detected {detected} of {len(broken)} at their culprit "
                 "stage" + (f"; {len(unseparable)} not separable on these clips (the mistake changes them too "
                            "little to tell: not a failure)" if unseparable else ""))
    bad = [r for r in records if r.status in FAILING]
    for title, group in (("NOT OK:", bad), ("not separable:", unseparable)):
        if group:
            lines.append(title)
        for r in group[:20]:
            lines.append(f"  {Path(r.file).name}: {r.combination} ({r.status}) at {', '.join(r.failed_stages)}")
        if len(group) > 20:
            lines.append(f"  ... and {len(group) - 20} more (--json for all)")
    if not records:
        lines.append("verdict: NOTHING EVALUATED (no usable file)")
    else:
        lines.append("verdict: " + ("OK" if not bad else f"NOT OK ({len(bad)} of {len(records)} records)"))
    return "\n".join(lines)
