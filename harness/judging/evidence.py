"""The evidence a failing check leaves: a mel figure (stages and their differences) and the WAVs.

Used by the quality check on failure (:class:`harness.judging.quality.QualityJudge`, via
:meth:`harness.judging.quality.MatrixRun`) and by ``harness diagnose``'s HTML page.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from harness import atomic
from harness.errors import describe
from harness.signal import audio, frontend, metrics


def mel_figure(panels: Sequence[Tuple[str, object]], reference: Optional[np.ndarray] = None,
               path=None, fmt: Optional[str] = None, dpi: int = 72, reference_name: str = "the input"):
    """One row per panel: its log-mel and, beside it, ``|panel - reference|``.

    Parameters
    ----------
    panels : sequence of (title, mel, None or str)
        Log-mels ``[frames, bins]`` in nats, top to bottom, of any shape (a component's output is drawn as it
        came); ``None`` marks a stage that failed, a string says in the panel why there is no mel.
    reference : np.ndarray, optional
        The mel the differences are taken against (``[frames, 64]``). Its own row shows, instead of an
        empty difference, the mean spectrum (nats per mel bin) of every panel, where a lost band or a
        level offset is seen at a glance. A panel whose shape differs from it says so instead of a
        difference.
    reference_name : str
        What ``reference`` is, named in each difference's title (``|difference| to the golden mel``).
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
    drawn = [m for _, m in panels if isinstance(m, np.ndarray) and m.size and np.isfinite(m).any()]
    vmax = max([float(np.nanmax(np.where(np.isfinite(m), m, np.nan))) for m in drawn] + [vmin + 1])
    im = diff_im = None
    for i, (title, mel) in enumerate(panels):
        ax = axes[i, 0]
        ax.set_title(title, loc="left", fontsize=9)
        ax.set_ylabel("mel bin", fontsize=8)
        ax.tick_params(labelsize=7)
        if not isinstance(mel, np.ndarray):
            ax.text(0.5, 0.5, "stage failed" if mel is None else _wrap(str(mel), 70), ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
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
        if mel.shape != reference.shape and title.startswith("input:"):  # a stage's input is not compared
            ax2.set_axis_off()
            continue
        if mel.shape != reference.shape:
            # a mel of another shape has no difference to draw: the figure says so, and shows the mel as it came
            ax2.text(0.5, 0.5, _wrap(f"shape {mel.shape} differs from {reference_name}'s {reference.shape}: "
                                     "no difference drawn", 60), ha="center", va="center", transform=ax2.transAxes,
                     fontsize=8)
            ax2.set_xticks([])
            ax2.set_yticks([])
            continue
        diff = np.abs(mel - reference)
        diff_im = ax2.imshow(diff.T, origin="lower", aspect="auto", vmin=0, vmax=4, cmap="viridis")
        ax2.set_title(f"|difference| to {reference_name}, mean {_mean(diff)} nats", loc="left", fontsize=9)
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


def _mean(x: np.ndarray) -> str:
    """The mean of the finite values of ``x`` to two decimals, or ``nan`` when there is none."""
    finite = x[np.isfinite(x)]
    return f"{finite.mean():.2f}" if finite.size else "nan"


def _wrap(text: str, width: int) -> str:
    """``text`` wrapped to lines of ``width`` characters: a figure shows a message whole."""
    return "\n".join(textwrap.wrap(text, width)) or text


def _short(description: str) -> str:
    """``a Tensor [1, 256, 64] torch.float32 on cpu`` -> ``Tensor [1, 256, 64] float32``: a figure title's length."""
    words = description.removeprefix("a ").replace("torch.", "")
    return words.split(" on ")[0]


def as_panel(x) -> Tuple[object, str]:
    """What a component returned, as a 2-D array a figure can draw, and how it came.

    Parameters
    ----------
    x : object
        A tensor, numpy array, list or tuple of any shape and dtype (a tuple: its first element), or
        anything else.

    Returns
    -------
    (np.ndarray or str, str)
        ``[rows, columns]`` float array (leading dimensions of size 1 dropped, then the first item of any
        other; complex values as magnitudes; a 1-D output as one row), or a string saying why nothing can be
        drawn; and a description of ``x`` as it came (``a Tensor [1, 1, 161, 64] torch.float32 on cpu``).
    """
    how = _short(describe(x))
    if isinstance(x, (tuple, list)) and x and not isinstance(x[0], (int, float)):
        inner, _ = as_panel(x[0])
        return inner, f"{how} of {len(x)}, the first drawn"
    try:
        if hasattr(x, "detach"):
            x = x.detach().cpu()
            x = x.abs() if x.is_complex() else x
            x = x.double().numpy()
        a = np.asarray(x)
        a = np.abs(a) if np.iscomplexobj(a) else a.astype(float)
    except Exception as exc:  # the evidence of what cannot be read says so
        return f"{how}: not an array ({type(exc).__name__})", how
    while a.ndim > 2:
        a = a[0]
    if a.ndim == 1:
        a = a[None]
    if a.ndim == 0 or a.size == 0:
        return f"{how}: nothing to draw", how
    return a, how


def _spectra(ax, panels) -> None:
    """Mean log-mel per bin of every panel: where a stage loses a band or shifts the level."""
    first = panels[0][1]
    bins = first.shape[-1] if isinstance(first, np.ndarray) and first.ndim == 2 else None  # spectra of like bins
    for k, (title, mel) in enumerate(panels):
        if isinstance(mel, np.ndarray) and mel.ndim == 2 and mel.shape[-1] == bins:
            ax.plot(mel.mean(axis=0), lw=1.6 if k == 0 else 0.9, label=title[:32])
    ax.set_title("mean spectrum of each row (nats per mel bin)", loc="left", fontsize=9)
    ax.set_xlabel("mel bin", fontsize=8)
    ax.figure.legend(fontsize=7, loc="outside upper center", ncols=3, frameon=False)
    ax.grid(alpha=0.3)


def write_evidence(directory: Path, name: str, wave_in: np.ndarray, wave_out: Optional[np.ndarray],
                   mel_in: np.ndarray, mel_out: Optional[np.ndarray], mel_correct: Optional[np.ndarray] = None,
                   failure: Optional[Tuple[str, str, object]] = None) -> None:
    """Input/output WAVs and a mel PNG with the difference, for a failing check.

    The differences are taken against ``mel_correct`` (the correct call's output on the same input,
    ``[frames, 64]``) when given, else against ``mel_in``: the figure shows the comparison that failed.
    ``failure``: ``(stage, error, output)`` of a stage whose component raised (``output`` None: the figure
    says so) or returned what the stage refused (``output`` drawn as it came, whatever its shape).
    """
    directory.mkdir(parents=True, exist_ok=True)
    audio.write_audio(directory / f"{name}-input.wav", wave_in)
    if wave_out is not None:
        audio.write_audio(directory / f"{name}-output.wav", wave_out)
    panels = [("input mel", mel_in)] + ([("correct call's output", mel_correct)] if mel_correct is not None else [])
    if failure is None:
        panels.append(("output mel", mel_out))
    else:
        stage, error, raw = failure
        kind = {"frontend": "front-end", "vae": "VAE round trip", "vocoder": "vocoder"}[stage]
        if raw is None:
            panels.append((f"{kind} output", f"the {stage} stage raised before returning an output: {error}"))
        elif stage == "vocoder":
            try:
                audio.write_audio(directory / f"{name}-output.wav", np.nan_to_num(np.asarray(
                    raw.detach().float().cpu() if hasattr(raw, "detach") else raw, dtype=np.float32).reshape(-1)))
            except Exception:  # noqa: BLE001  an output that is no waveform: the figure says what it was
                pass
            panels.append((f"vocoder output as returned ({_short(describe(raw))}), analysed", _mel_of_wave(raw)))
        else:
            drawn, how = as_panel(raw)
            panels.append((f"{kind} output as returned: {how}", drawn))
    reference = mel_in if mel_correct is None else mel_correct
    mel_figure(panels, reference=reference, path=directory / f"{name}-mel.png",
               reference_name="the input" if mel_correct is None else "the correct call's output")


#: what each golden stage's output is compared with, named in its figure's titles
GOLDEN_REFERENCE_NAME = {"decode": "the golden mel", "roundtrip": "the correct round trip",
                         "frontend": "AudioLDM2's mel", "vocoder": "the golden waveform, analysed"}
#: what each golden stage's input is, named in its figure when the stage raised
GOLDEN_INPUT_NAME = {"decode": "input: the pipeline's latents (channels x latent bins per row)",
                     "roundtrip": "input: the golden mel", "vocoder": "input: the golden mel",
                     "frontend": "input: the golden waveform, AudioLDM2's mel of it"}


def _mel_of_wave(wave) -> object:
    """AudioLDM2's log-mel ``[frames, 64]`` of a waveform as it came, or why there is none."""
    try:
        w = torch.as_tensor(np.asarray(wave, dtype=np.float32) if not hasattr(wave, "detach") else
                            wave.detach().float().cpu()).reshape(-1)
        return frontend.audioldm2(w[None])[0, 0].numpy()
    except Exception as exc:  # evidence of a waveform too short or unreadable says so
        return f"no mel of the output ({type(exc).__name__}: {exc})"


def write_golden_evidence(directory: Path, name: str, stage: str, output, reference, index: int,
                          golden_wave: np.ndarray, error: Optional[str] = None, stage_input=None) -> None:
    """A failing golden stage's evidence for one case: the output as it came against what it was compared with
    (both re-analysed by AudioLDM2's front-end for the vocoder stage, whose WAVs are written too; the
    closer of the two framings for a front-end, whose input WAV is written).

    Never raises on what a component returned: an output of another shape or dtype is drawn as it came,
    its shape named where the difference would be; a stage that raised (``output`` None) is said so, with
    its input drawn.

    Parameters
    ----------
    output : object or None
        This case's output as the component returned it (mel ``[1, T, 64]``, waveform ``[samples]``, or
        anything else), None when the stage raised before returning.
    reference : object or None
        The stage's reference for the whole batch (:meth:`harness.judging.stages.GoldenInputs.reference`), of
        which item ``index`` is this case's.
    error : str, optional
        What the stage raised, shown in the figure.
    stage_input : Tensor, optional
        This case's input to the stage, drawn when the stage raised.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ref_name = GOLDEN_REFERENCE_NAME[stage]
    ref_mel = None
    if stage == "vocoder":
        golden = reference[index] if reference is not None else torch.as_tensor(golden_wave)
        audio.write_audio(directory / f"{name}-golden.wav", golden.float().cpu().numpy())
        ref_mel = _mel_of_wave(golden)
        if output is not None:
            try:
                wave = np.asarray(output.detach().float().cpu() if hasattr(output, "detach") else output,
                                  dtype=np.float32).reshape(-1)
                audio.write_audio(directory / f"{name}-output.wav", np.nan_to_num(wave))
            except Exception:  # noqa: BLE001  an output that is no waveform: the figure says what it was
                pass
        out_panel = _mel_of_wave(output) if output is not None else None
        how = describe(output)
    else:
        if stage == "frontend":
            audio.write_audio(directory / f"{name}-input.wav", golden_wave)
        if reference is not None:
            refs = reference if isinstance(reference, (list, tuple)) else [reference]
            ref_mel = refs[0][index, 0].float().cpu().numpy()
        out_panel, how = as_panel(output) if output is not None else (None, "")
        if stage == "frontend" and isinstance(out_panel, np.ndarray) and reference is not None:
            # a front-end is judged against the closer of AudioLDM2's two framings (by log-mel L1, as the judge
            # measures it: harness.judging.stages.frontend_distance): the figure draws that one
            mels = [r[index, 0].float().cpu().numpy() for r in reference]
            same = [m for m in mels if m.shape == out_panel.shape]
            if same:
                ref_mel = min(same, key=lambda m: float(np.mean(np.abs(np.maximum(m, metrics.MEL_FLOOR_NATS)
                                                                   - np.maximum(out_panel, metrics.MEL_FLOOR_NATS)))))
    ref_panel = ref_mel if ref_mel is not None else "no reference"
    panels = [(ref_name[0].upper() + ref_name[1:] if not ref_name.startswith("the ") else ref_name[4:], ref_panel)]
    if output is None:
        if stage_input is not None:
            if stage == "frontend":
                inp = _mel_of_wave(stage_input)
            elif stage == "decode" and stage_input.ndim == 3:  # latents [8, T/4, 16]: a row per latent frame
                inp = as_panel(stage_input.permute(1, 0, 2).reshape(stage_input.shape[1], -1))[0]
            else:
                inp = as_panel(stage_input)[0]
            panels.append((GOLDEN_INPUT_NAME[stage], inp))
        panels.append(("output", f"the stage raised before returning an output: {error or 'an error'}"))
    else:
        title = f"output as returned: {how}" if stage != "vocoder" else f"output ({_short(how)}), analysed"
        panels.append((title, out_panel))
    mel_figure(panels, reference=ref_mel if isinstance(ref_mel, np.ndarray) else None,
               path=directory / f"{name}-mel.png", reference_name=ref_name)


def golden_description(stage: str, compared_with: str, raised: bool = False, returned: bool = True) -> str:
    """What :func:`write_golden_evidence` leaves for ``stage``, for a failure message: ``raised`` when the stage
    raised, ``returned`` when the component had returned an output all the same (of a shape the stage refused)."""
    wavs = {"vocoder": "golden and output WAVs, ", "frontend": "input WAV, "}.get(stage, "")
    if raised and not returned:
        return f"{wavs}mel figure of the stage's input and {compared_with}: the stage raised before any output"
    if raised:
        return f"{wavs}mel figure of the output as it came beside {compared_with} (its shape or values refused)"
    return f"{wavs}mel figure of the output with the difference from {compared_with}"
