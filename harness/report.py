"""Matrix records for users' own files, their table, and the pictures/sounds of the evidence."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import loading, matrix, thresholds



def find_thresholds(source: Optional[loading.ModelSource], golden_dir: Optional[str] = None) -> Path:
    """``thresholds.toml`` of a model: ``--golden-dir``, else ``golden/<slug>`` here, else the bundled copy."""
    candidates = []
    if golden_dir:
        candidates.append(Path(golden_dir) / "thresholds.toml")
    if source is not None:
        candidates.append(Path("golden") / source.slug / "thresholds.toml")
        candidates.append(source.path / "thresholds.toml")
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"no thresholds.toml for model {source.spec if source else '?'} (looked in "
                            f"{', '.join(map(str, candidates))}): run `harness golden --model MODEL` then "
                            "`harness thresholds --calibrate`")


def default_files() -> List[str]:
    from .golden import CLIPS_DIR

    return sorted(str(p) for p in CLIPS_DIR.glob("*.flac"))


def matrix_records(chain, files: Sequence[str], golden_dir: Optional[str] = None, frontends_=None, vaes=None,
                   vocoders=None, progress: bool = True) -> Tuple[List[dict], List[str]]:
    """Evaluate combinations on audio files; one record per file x combination.

    Returns ``(records, errors)``: a file that cannot be read becomes one line in ``errors`` and
    the others are still evaluated.
    """
    from tqdm.auto import tqdm

    from . import audio

    files = list(files) or default_files()
    th = thresholds.load(find_thresholds(chain.source, golden_dir))
    errors, groups = [], defaultdict(dict)
    for f in files:
        try:
            x = audio.pad_or_crop(audio.load_audio(f))
        except audio.AudioError as exc:
            errors.append(str(exc))
            continue
        groups[len(x)][f] = x
    combos = matrix.combinations(frontends_, vaes, vocoders)
    records = []
    bar = tqdm(total=len(combos) * len(groups), desc="matrix", disable=not progress)
    for clips in groups.values():
        ev = matrix.Evaluator(chain, clips)
        cache: Dict[str, dict] = {}

        def run(c):
            if c.id not in cache:
                cache[c.id] = ev.run(c)
            return cache[c.id]

        for combo in combos:
            res = run(combo)
            exp = combo.expected()
            for i, f in enumerate(ev.names):
                stages, flat, ok_all = {}, {}, True
                for stage, r in res.items():
                    one = matrix.StageResult({k: v[i:i + 1] for k, v in r.metrics.items()}, r.error)
                    if exp[stage] == "detect":
                        # on a file outside the calibration set, the margin policy is applied to the
                        # correct sibling measured on this same file: 1.2 x its pass ceiling
                        sib = run(combo.sibling(stage))[stage]
                        key = matrix.JUDGED[stage][0]
                        limits = None if sib.error else thresholds.detect_limit(
                            thresholds.pass_limits({key: sib.metrics[key][i:i + 1]}, [key]), key)
                    else:
                        limits, _ = thresholds.limits_for_verdict(th, combo, stage, exp[stage], "")
                    ok, _ = thresholds.judge(one, limits or {}, exp[stage]) if limits is not None else (True, [])
                    ok_all &= ok
                    stages[stage] = {"expected": exp[stage], "ok": ok, "error": r.error}
                    for k, v in one.metrics.items():
                        flat[f"{stage}.{k}"] = round(float(v[0]), 4)
                records.append({"file": f, "frontend": combo.frontend, "vae": combo.vae, "vocoder": combo.vocoder,
                                "expected": "pass" if all(e != "detect" for e in exp.values()) else "detect",
                                "ok": bool(ok_all), "metrics": flat, "stages": stages})
            bar.update(1)
    bar.close()
    return records, errors


def matrix_table(records: List[dict]) -> str:
    """A fixed-width table: file, combination, expected, ok, and the key metric of each stage."""
    head = ["file", "combination", "expected", "ok", "frontend", "vae", "vocoder", "chain mel_l1", "chain lsd",
            "chain snr"]
    rows = [head]
    for r in records:
        m = r["metrics"]
        g = lambda k: (f"{m[k]:.3f}" if k in m else "err")  # noqa: E731
        rows.append([Path(r["file"]).name, f"{r['frontend']}-{r['vae']}-{r['vocoder']}", r["expected"],
                     "ok" if r["ok"] else "NOT OK", g("frontend.mel_l1"), g("vae.mel_l1"), g("vocoder.mel_l1"),
                     g("chain.mel_l1"), g("chain.lsd"), g("chain.snr")])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)


# ---------------------------------------------------------------------------
# pictures
# ---------------------------------------------------------------------------


def mel_figure(panels: Sequence[Tuple[str, np.ndarray]], reference: Optional[np.ndarray] = None, path=None):
    """Side-by-side log-mels ``[frames, 64]`` (nats), plus ``|panel - reference|`` under each one.

    Saves a PNG to ``path`` if given; returns the matplotlib figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if reference is not None else 1
    fig, axes = plt.subplots(rows, len(panels), figsize=(3.2 * len(panels), 2.6 * rows), squeeze=False)
    vmin, vmax = -11.5, max(float(np.max(p)) for _, p in panels if p is not None)
    for j, (title, mel) in enumerate(panels):
        ax = axes[0, j]
        if mel is None:
            ax.text(0.5, 0.5, "stage failed", ha="center", va="center")
            ax.set_axis_off()
            continue
        im = ax.imshow(mel.T, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("frame")
        ax.set_ylabel("mel bin")
        if reference is not None:
            ax2 = axes[1, j]
            diff = np.abs(mel - reference[: mel.shape[0]])
            im2 = ax2.imshow(diff.T, origin="lower", aspect="auto", vmin=0, vmax=4, cmap="viridis")
            ax2.set_title(f"|diff| mean {diff.mean():.2f} nats", fontsize=9)
            ax2.set_xlabel("frame")
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label="nats")
    if reference is not None:
        fig.colorbar(im2, ax=axes[1, :].tolist(), shrink=0.8, label="|diff| nats")
    if path is not None:
        fig.savefig(path, dpi=80)
        plt.close(fig)
    return fig


def write_evidence(directory: Path, name: str, wave_in: np.ndarray, wave_out: Optional[np.ndarray],
                   mel_in: np.ndarray, mel_out: Optional[np.ndarray]) -> None:
    """Input/output WAVs and a side-by-side mel PNG with the difference, for a failing check."""
    from . import audio

    directory.mkdir(parents=True, exist_ok=True)
    audio.write_audio(directory / f"{name}-input.wav", wave_in)
    if wave_out is not None:
        audio.write_audio(directory / f"{name}-output.wav", wave_out)
    mel_figure([("input mel", mel_in), ("output mel", mel_out)], reference=mel_in,
               path=directory / f"{name}-mel.png")
