"""The evidence a failing check leaves: a mel figure (stages and their differences) and the WAVs.

Used by the quality check on failure (:class:`harness.judging.quality.QualityCheck`, via
:meth:`harness.judging.quality.MatrixRun`) and by ``harness diagnose``'s HTML page.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from harness import atomic
from harness.signal import audio, frontend, metrics


def mel_figure(panels: Sequence[Tuple[str, Optional[np.ndarray]]], reference: Optional[np.ndarray] = None,
               path=None, fmt: Optional[str] = None, dpi: int = 72):
    """One row per panel: its log-mel and, beside it, ``|panel - reference|``.

    Parameters
    ----------
    panels : sequence of (title, mel or None)
        Log-mels ``[frames, 64]`` in nats, top to bottom; ``None`` marks a stage that failed.
    reference : np.ndarray, optional
        The mel the differences are taken against (``[frames, 64]``). Its own row shows, instead of an
        empty difference, the mean spectrum (nats per mel bin) of every panel, where a lost band or a
        level offset is seen at a glance.
    path : str, Path or file object, optional
        Where to save the figure (then closed).
    fmt : str, optional
        Image format when ``path`` is a file object (``png``, ``webp``, ...); default from the suffix.
    dpi : int
        Resolution of the saved image; 72 keeps a report small.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if reference is not None else 1
    fig, axes = plt.subplots(len(panels), cols, figsize=(5.2 * cols + 1.6, 1.75 * len(panels) + 0.5),
                             squeeze=False, layout="constrained")
    vmin = -11.5
    vmax = max([float(np.max(m)) for _, m in panels if m is not None] + [vmin + 1])
    im = diff_im = None
    for i, (title, mel) in enumerate(panels):
        ax = axes[i, 0]
        ax.set_title(title, loc="left", fontsize=9)
        ax.set_ylabel("mel bin", fontsize=8)
        ax.tick_params(labelsize=7)
        if mel is None:
            ax.text(0.5, 0.5, "stage failed", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(" ")
            if cols == 2:
                axes[i, 1].set_axis_off()
            continue
        im = ax.imshow(mel.T, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma")
        if cols == 1:
            continue
        ax2 = axes[i, 1]
        ax2.tick_params(labelsize=7)
        if mel is reference:
            _spectra(ax2, panels)
            continue
        frames = min(len(mel), len(reference))
        diff = np.abs(mel[:frames] - reference[:frames])
        diff_im = ax2.imshow(diff.T, origin="lower", aspect="auto", vmin=0, vmax=4, cmap="viridis")
        ax2.set_title(f"|difference| to the input, mean {diff.mean():.2f} nats", loc="left", fontsize=9)
    for ax in axes.flat:
        if ax.axison and not ax.get_xlabel():
            ax.set_xlabel("frame (10 ms)", fontsize=7, labelpad=1)
    if im is not None:
        fig.colorbar(im, ax=axes[:, 0].tolist(), shrink=0.6, label="log-mel (nats)")
    if diff_im is not None:
        fig.colorbar(diff_im, ax=axes[:, 1].tolist(), shrink=0.6, label="|difference| (nats)")
    if path is not None:
        save = dict(dpi=dpi, format=fmt, **({"pil_kwargs": {"quality": 80}} if fmt == "webp" else {}))
        if hasattr(path, "write"):  # a buffer (the HTML report embeds its figures)
            fig.savefig(path, **save)
        else:
            with atomic.temporary_sibling(path) as tmp:  # killed while writing, no half-written figure
                fig.savefig(tmp, **save)
        plt.close(fig)
    return fig


def _spectra(ax, panels) -> None:
    """Mean log-mel per bin of every panel: where a stage loses a band or shifts the level."""
    for k, (title, mel) in enumerate(panels):
        if mel is not None:
            ax.plot(mel.mean(axis=0), lw=1.6 if k == 0 else 0.9, label=title[:32])
    ax.set_title("mean spectrum of each row (nats per mel bin)", loc="left", fontsize=9)
    ax.set_xlabel("mel bin", fontsize=8)
    ax.figure.legend(fontsize=7, loc="outside upper center", ncols=3, frameon=False)
    ax.grid(alpha=0.3)


def write_evidence(directory: Path, name: str, wave_in: np.ndarray, wave_out: Optional[np.ndarray],
                   mel_in: np.ndarray, mel_out: Optional[np.ndarray], mel_correct: Optional[np.ndarray] = None) -> None:
    """Input/output WAVs and a mel PNG with the difference, for a failing check.

    The differences are taken against ``mel_correct`` (the correct call's output on the same input,
    ``[frames, 64]``) when given, else against ``mel_in``: the figure shows the comparison that failed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    audio.write_audio(directory / f"{name}-input.wav", wave_in)
    if wave_out is not None:
        audio.write_audio(directory / f"{name}-output.wav", wave_out)
    panels = [("input mel", mel_in)] + ([("correct call's output", mel_correct)] if mel_correct is not None else [])
    mel_figure(panels + [("output mel", mel_out)], reference=mel_in if mel_correct is None else mel_correct,
               path=directory / f"{name}-mel.png")


def write_golden_evidence(directory: Path, name: str, stage: str, output, reference, index: int,
                          golden_wave: np.ndarray) -> None:
    """A failing golden stage's evidence for one case: the output's mel against the mel it was compared with
    (both re-analysed by AudioLDM2's front-end for the vocoder stage, whose WAVs are written too; the
    closer of the two framings for a front-end, whose input WAV is written).

    ``output``: this case's output (mel ``[1, T, 64]`` or waveform ``[samples]``, a tensor); ``reference``:
    the stage's reference for the whole batch (:meth:`harness.judging.stages.GoldenInputs.reference`), of which item
    ``index`` is this case's.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if stage == "vocoder":
        golden, out = reference[index], output
        audio.write_audio(directory / f"{name}-golden.wav", golden.float().cpu().numpy())
        audio.write_audio(directory / f"{name}-output.wav", out.float().cpu().numpy())
        ref_mel, out_mel = (frontend.audioldm2(w.float()[None])[0, 0] for w in (golden, out))
        titles = ("golden waveform, analysed", "output, analysed")
    else:
        out_mel = output[0]
        # a front-end is judged against the closer of AudioLDM2's two framings (by log-mel L1, as the judge
        # measures it: harness.judging.stages.frontend_distance): the figure draws that one
        closer = lambda m: float(metrics.mel_l1(mel_estimate=output[None], mel_reference=m[index:index + 1])[0])  # noqa: E731
        ref_mel = (min(reference, key=closer) if stage == "frontend" else reference)[index, 0]
        if stage == "frontend":
            audio.write_audio(directory / f"{name}-input.wav", golden_wave)
        titles = ({"decode": "golden mel", "roundtrip": "correct round trip",
                   "frontend": "AudioLDM2's mel"}[stage], "output mel")
    ref_mel, out_mel = (m.float().cpu().numpy() for m in (ref_mel, out_mel))
    mel_figure([(titles[0], ref_mel), (titles[1], out_mel)], reference=ref_mel, path=directory / f"{name}-mel.png")


def golden_description(stage: str, compared_with: str) -> str:
    """What :func:`write_golden_evidence` leaves for ``stage``, for a failure message."""
    wavs = {"vocoder": "golden and output WAVs, ", "frontend": "input WAV, "}.get(stage, "")
    return f"{wavs}mel figure of the output with the difference from {compared_with}"
