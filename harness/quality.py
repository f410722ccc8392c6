"""Measuring the matrix on a golden set, calibrating thresholds, and the ``check()`` behind the fixture."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from . import golden as golden_mod
from . import matrix, thresholds
from .matrix import Combination, StageResult


def clip_groups(gset: golden_mod.GoldenSet) -> List[Dict[str, np.ndarray]]:
    """Golden case waveforms and reference clips, grouped by length (one batch per group)."""
    groups: Dict[int, Dict[str, np.ndarray]] = defaultdict(dict)
    for c in gset.cases:
        groups[len(c.audio)][f"golden:{c.name}"] = c.audio
    for name, x in gset.clips.items():
        groups[len(x)][f"clip:{name}"] = x
    return list(groups.values())


class MatrixRun:
    """Lazily evaluates combinations over every clip group and merges the per-clip values."""

    def __init__(self, chain, gset: golden_mod.GoldenSet, seed: int = 0):
        self.evaluators = [matrix.Evaluator(chain, g, seed) for g in clip_groups(gset)]
        self.clip_names = [n for e in self.evaluators for n in e.names]
        self._cache: Dict[str, Dict[str, StageResult]] = {}

    def result(self, combo: Combination) -> Dict[str, StageResult]:
        if combo.id not in self._cache:
            parts = [e.run(combo, keep_outputs=True) for e in self.evaluators]
            merged = {}
            for stage in matrix.CLIP_STAGES:
                errs = [p[stage].error for p in parts if p[stage].error]
                if errs:
                    merged[stage] = StageResult({}, errs[0])
                else:
                    keys = parts[0][stage].metrics.keys()
                    merged[stage] = StageResult({k: np.concatenate([p[stage].metrics[k] for p in parts]) for k in keys})
            self._cache[combo.id] = merged
        return self._cache[combo.id]

    def evidence(self, combo: Combination):
        """A callable writing each clip's input/output WAV and mel PNG into a directory."""
        from . import report

        def write(directory: Path) -> None:
            self.result(combo)
            for e in self.evaluators:
                o = e.outputs.get(combo.id, {})
                for i, name in enumerate(e.names):
                    wave_out = o["wave_out"][i].cpu().numpy() if "wave_out" in o else None
                    mel_out = o["mel_out"][i, 0].cpu().numpy() if "mel_out" in o and \
                        not isinstance(o["mel_out"], Exception) else None
                    report.write_evidence(directory, name.replace(":", "-"), e.reference_wave[i].cpu().numpy(),
                                          wave_out, e.reference_mel[i, 0].cpu().numpy(), mel_out)
        return write

    def golden(self, chain, gset) -> Dict[str, Dict[str, StageResult]]:
        """Golden stage isolation results (computed once)."""
        if not hasattr(self, "_golden"):
            self._golden = golden_results(chain, gset)
        return self._golden


def golden_results(chain, gset: golden_mod.GoldenSet, seed: int = 0):
    lat = np.stack([c.latents for c in gset.cases])
    mel = np.stack([c.mel for c in gset.cases])
    wav = np.stack([c.audio for c in gset.cases])
    return matrix.golden_stages(chain, lat, mel, wav, seed)


def exact_key(chain) -> str:
    dev = chain.device.type
    dt = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}[
        str(next(chain.vocoder.parameters()).dtype)]
    return f"{dev}-{dt}"


def calibrate(chain, golden_dir: str | Path, out: Optional[str | Path] = None, progress: bool = True) -> Path:
    """Measure every combination and golden stage and write ``thresholds.toml`` (see :mod:`harness.thresholds`)."""
    from tqdm.auto import tqdm

    gset = golden_mod.load(golden_dir)
    run = MatrixRun(chain, gset)
    combos = matrix.combinations()
    tables: Dict[str, Dict] = {}
    problems = []
    results = {c.id: run.result(c) for c in tqdm(combos, desc="calibrate", disable=not progress)}
    # pass limits first, so detect limits can refer to their siblings
    for combo in combos:
        for stage, exp in combo.expected().items():
            r = results[combo.id][stage]
            entry = {"expected": exp, **{f"measured_{k}": [round(float(x), 4) for x in v]
                                         for k, v in r.metrics.items() if k in matrix.JUDGED[stage]}}
            if exp == "pass":
                if r.error:
                    problems.append(f"{combo.id} {stage}: expected to pass but failed: {r.error}")
                    continue
                entry.update(thresholds.pass_limits(r.metrics, matrix.JUDGED[stage]))
            if r.error:
                entry["error"] = r.error[:200]
            tables[thresholds.table_key(combo.id, stage)] = entry
    for combo in combos:
        for stage, exp in combo.expected().items():
            if exp != "detect":
                continue
            entry = tables[thresholds.table_key(combo.id, stage)]
            sib = tables.get(thresholds.table_key(combo.sibling(stage).id, stage), {})
            key = matrix.JUDGED[stage][0]
            lim = thresholds.detect_limit(sib, key)
            entry.update(lim)
            r = results[combo.id][stage]
            if r.error is None:
                ok, _ = thresholds.judge(r, lim, "detect")
                if not ok:
                    problems.append(f"{combo.id} {stage}: known mistake NOT detectable: {key} "
                                    f"{np.round(r.metrics[key], 3).tolist()} vs detect limit {lim}")
    gres = golden_results(chain, gset)
    ek = exact_key(chain)
    for stage, by_name in gres.items():
        for name, r in by_name.items():
            exp = matrix.golden_expected(stage, name)
            judged = ["mel_l1"]
            entry = {"expected": exp, **{f"measured_{k}": [round(float(x), 4) for x in v]
                                         for k, v in r.metrics.items()}}
            if r.error:
                entry["error"] = r.error[:200]
            if exp == "pass" and not r.error:
                entry.update(thresholds.pass_limits(r.metrics, judged))
                if stage == "vocoder" and name == "hifigan":  # sample-exact: phase is reproduced here
                    entry["snr_min"] = [thresholds.EXACT_SNR_DB[ek]] * len(r.metrics["snr"])
                    entry["correlation_min"] = [thresholds.EXACT_CORRELATION[ek.split("-")[1]]] * len(r.metrics["snr"])
                if stage == "decode":  # deterministic: only float noise is allowed
                    entry["mel_l1_max"] = [max(x, 1e-3) for x in entry["mel_l1_max"]]
            tables[thresholds.table_key(f"golden-{stage}-{name}", stage)] = entry
    for stage, by_name in gres.items():
        for name, r in by_name.items():
            entry = tables[thresholds.table_key(f"golden-{stage}-{name}", stage)]
            if entry["expected"] != "detect":
                continue
            ref = {"decode": "scaled", "roundtrip": "scaled", "vocoder": "hifigan", "frontend": "audioldm2"}[stage]
            lim = thresholds.detect_limit(tables[thresholds.table_key(f"golden-{stage}-{ref}", stage)], "mel_l1")
            entry.update(lim)
            if r.error is None and not thresholds.judge(r, lim, "detect")[0]:
                problems.append(f"golden {stage} {name}: known mistake NOT detectable: "
                                f"{np.round(r.metrics['mel_l1'], 3).tolist()} vs {lim}")
    meta = {"model": chain.source.spec if chain.source else "?", "golden_dir": str(golden_dir),
            "weights_sha256": gset.manifest["weights_sha256"], "exact_key": ek,
            "clips": run.clip_names, "problems": problems}
    path = Path(out or Path(golden_dir) / "thresholds.toml")
    thresholds.write(path, tables, meta)
    if problems:
        raise thresholds.CalibrationError("calibration found problems (also written to [meta].problems):\n  "
                                          + "\n  ".join(problems))
    return path


class QualityCheck:
    """Judges one stage of one combination against the thresholds; writes evidence on failure.

    The logic behind the ``harness_quality`` fixture (see :mod:`harness.plugin`).
    """

    def __init__(self, thresholds_data: Dict, report_dir: Optional[Path] = None):
        self.thresholds = thresholds_data
        self.report_dir = Path(report_dir) if report_dir else None

    def limits(self, combo, stage: str, expected: str):
        return thresholds.limits_for_verdict(self.thresholds, combo, stage, expected, matrix.JUDGED[stage][0])

    def check(self, combo: Combination, stage: str, result: StageResult, expected: str, clip_names=None,
              evidence=None) -> None:
        """Assert ``result`` behaved as ``expected``; on failure raise AssertionError with a table.

        ``evidence`` is an optional callable ``evidence(dir) -> None`` that writes WAVs/PNGs.
        """
        import pytest

        limits, source = self.limits(combo, stage, expected)
        if limits is None:
            pytest.skip(f"no thresholds for {combo.id}:{stage} (nor its sibling {source}); "
                        "run `harness thresholds --calibrate`")
        ok, rows = thresholds.judge(result, limits, expected, clip_names)
        if ok:
            return
        table = format_table(rows, stage)
        where = ""
        if self.report_dir is not None and evidence is not None:
            d = self.report_dir / f"{combo.id}-{stage}"
            d.mkdir(parents=True, exist_ok=True)
            evidence(d)
            where = f"\nevidence: {d}"
        what = "lost quality" if expected == "pass" else "was NOT detected (a known mistake now passes)"
        clips = f" on clips {', '.join(clip_names)}" if clip_names else ""
        raise AssertionError(f"{combo.id} {what} at stage '{stage}'{clips} (limits from {source}):\n{table}{where}")


@dataclass(frozen=True)
class GoldenTarget:
    """A golden stage of one variant, keyed like a combination (``golden-vocoder-hifigan``)."""

    stage: str
    name: str

    @property
    def id(self) -> str:
        return f"golden-{self.stage}-{self.name}"

    def sibling(self, stage: str) -> "GoldenTarget":
        return GoldenTarget(self.stage, matrix.GOLDEN_REFERENCE[self.stage])


def format_table(rows, stage: str) -> str:
    head = ("metric", "worst value", "threshold", "verdict")
    rows = [head] + [tuple(str(x) for x in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"  stage {stage}"]
    for r in rows:
        lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(4)))
    return "\n".join(lines)
