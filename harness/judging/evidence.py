"""The evidence a failing check leaves: a mel figure (stages and their differences) and the WAVs.

Used by the quality check on failure (:class:`harness.judging.quality.QualityJudge`, via
:meth:`harness.judging.quality.MatrixRun`) and by ``harness diagnose``'s HTML page.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

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
    vmin, vmax = _mel_range(panels)
    im = diff_im = None
    for i, (title, mel) in enumerate(panels):
        ax = axes[i, 0]
        ax.set_title(title, loc="left", fontsize=9)
        ax.set_ylabel("mel bin", fontsize=8)
        ax.tick_params(labelsize=7)
        if not isinstance(mel, np.ndarray):
            _no_mel(ax, mel)
            if cols == 2:
                axes[i, 1].set_axis_off()
            continue
        im = ax.imshow(mel.T, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma")
        if cols == 2:
            drawn = _difference(axes[i, 1], panels, title, mel, reference, reference_name)
            diff_im = drawn if drawn is not None else diff_im
    _frame_labels_and_colorbars(fig, axes, im, diff_im)
    if path is not None:
        _save(fig, path, fmt, dpi)
    return fig


def _mel_range(panels: Sequence[Tuple[str, object]]) -> Tuple[float, float]:
    """The log-mel colour range of a figure.

    Returns
    -------
    (float, float)
        ``(vmin, vmax)``: -11.5 nats, and the largest finite value of any panel's mel (at least a nat above).
    """
    vmin = -11.5
    drawn = [m for _, m in panels if isinstance(m, np.ndarray) and m.size and np.isfinite(m).any()]
    vmax = max([float(np.nanmax(np.where(np.isfinite(m), m, np.nan))) for m in drawn] + [vmin + 1])
    return vmin, vmax


def _no_mel(ax, mel) -> None:
    """A panel without a mel: ``stage failed`` (``mel`` None), or the message ``mel`` says why."""
    ax.text(0.5, 0.5, "stage failed" if mel is None else _wrap(str(mel), 70), ha="center", va="center",
            transform=ax.transAxes, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(" ")


def _difference(ax2, panels, title: str, mel: np.ndarray, reference: np.ndarray, reference_name: str):
    """The right-hand panel of a row: ``|mel - reference|``; for the reference's own row the mean spectrum of
    every panel; nothing for a stage's input of another shape; what differs for an output of another shape.

    Returns
    -------
    matplotlib.image.AxesImage or None
        The difference drawn, for its colour bar; None where none is.
    """
    ax2.tick_params(labelsize=7)
    if mel is reference:
        _spectra(ax2, panels)
        return None
    if mel.shape != reference.shape and title.startswith("input:"):  # a stage's input is not compared
        ax2.set_axis_off()
        return None
    if mel.shape != reference.shape:
        # a mel of another shape has no difference to draw: the figure says so, and shows the mel as it came
        ax2.text(0.5, 0.5, _wrap(f"shape {mel.shape} differs from {reference_name}'s {reference.shape}: "
                                 "no difference drawn", 60), ha="center", va="center", transform=ax2.transAxes,
                 fontsize=8)
        ax2.set_xticks([])
        ax2.set_yticks([])
        return None
    diff = np.abs(mel - reference)
    diff_im = ax2.imshow(diff.T, origin="lower", aspect="auto", vmin=0, vmax=4, cmap="viridis")
    ax2.set_title(f"|difference| to {reference_name}, mean {_mean(diff)} nats", loc="left", fontsize=9)
    return diff_im


def _frame_labels_and_colorbars(fig, axes, im, diff_im) -> None:
    """The frame axis named under every drawn panel still without a label, and the colour bars of the mels
    (``im``) and of the differences (``diff_im``), each where one was drawn."""
    for ax in axes.flat:
        if ax.axison and not ax.get_xlabel():
            ax.set_xlabel("frame (10 ms)", fontsize=7, labelpad=1)
    if im is not None:
        fig.colorbar(im, ax=axes[:, 0].tolist(), shrink=0.6, label="log-mel (nats)")
    if diff_im is not None:
        fig.colorbar(diff_im, ax=axes[:, 1].tolist(), shrink=0.6, label="|difference| (nats)")


def _save(fig, path, fmt: Optional[str], dpi: int) -> None:
    """Save ``fig`` to ``path`` (a file object, or a file written atomically), then close it."""
    import matplotlib.pyplot as plt

    save = dict(dpi=dpi, format=fmt, **({"pil_kwargs": {"quality": 80}} if fmt == "webp" else {}))
    if hasattr(path, "write"):  # a buffer (the HTML report embeds its figures)
        fig.savefig(path, **save)
    else:
        with atomic.temporary_sibling(path) as tmp:  # killed while writing, no half-written figure
            fig.savefig(tmp, **save)
    plt.close(fig)


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
    if stage == "vocoder":
        ref_mel, out_panel, how = _vocoder_pair(directory, name, output, reference, index, golden_wave)
    else:
        if stage == "frontend":
            audio.write_audio(directory / f"{name}-input.wav", golden_wave)
        ref_mel, out_panel, how = _mel_pair(stage, output, reference, index)
    panels = _golden_panels(stage, ref_mel, output, out_panel, how, error, stage_input)
    mel_figure(panels, reference=ref_mel if isinstance(ref_mel, np.ndarray) else None,
               path=directory / f"{name}-mel.png", reference_name=GOLDEN_REFERENCE_NAME[stage])


def _vocoder_pair(directory: Path, name: str, output, reference, index: int,
                  golden_wave: np.ndarray) -> Tuple[object, object, str]:
    """The vocoder stage's golden waveform and output for one case, each written as a WAV (an output that is no
    waveform is not) and analysed by AudioLDM2's front-end.

    Returns
    -------
    (np.ndarray or str, np.ndarray or str or None, str)
        The golden waveform's mel (or why there is none), the output's (None when the stage raised before
        returning one), and a description of the output as it came.
    """
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
    return ref_mel, out_panel, describe(output)


def _mel_pair(stage: str, output, reference, index: int) -> Tuple[Optional[np.ndarray], object, str]:
    """A mel stage's reference for one case and its output as a panel; a front-end's reference is the closer of
    AudioLDM2's two framings to the output.

    Returns
    -------
    (np.ndarray or None, np.ndarray or str or None, str)
        The reference mel (None without a reference), the output as :func:`as_panel` draws it (None when the
        stage raised before returning one), and a description of the output as it came.
    """
    ref_mel = None
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
    return ref_mel, out_panel, how


def _golden_panels(stage: str, ref_mel, output, out_panel, how: str, error: Optional[str],
                   stage_input) -> List[Tuple[str, object]]:
    """The rows of a golden stage's figure: its reference, then the output as it came, or, when the stage raised
    before returning one, its input (where given) and what it raised.

    Returns
    -------
    list of (str, object)
        ``(title, mel or message)`` panels for :func:`mel_figure`.
    """
    ref_name = GOLDEN_REFERENCE_NAME[stage]
    ref_panel = ref_mel if ref_mel is not None else "no reference"
    panels = [(ref_name[0].upper() + ref_name[1:] if not ref_name.startswith("the ") else ref_name[4:], ref_panel)]
    if output is None:
        if stage_input is not None:
            panels.append((GOLDEN_INPUT_NAME[stage], _input_panel(stage, stage_input)))
        panels.append(("output", f"the stage raised before returning an output: {error or 'an error'}"))
    else:
        title = f"output as returned: {how}" if stage != "vocoder" else f"output ({_short(how)}), analysed"
        panels.append((title, out_panel))
    return panels


def _input_panel(stage: str, stage_input) -> object:
    """A golden stage's input as a panel: a front-end's waveform as AudioLDM2's mel, a decode's latents
    ``[8, T/4, 16]`` a row per latent frame, anything else as :func:`as_panel` draws it."""
    if stage == "frontend":
        return _mel_of_wave(stage_input)
    if stage == "decode" and stage_input.ndim == 3:
        return as_panel(stage_input.permute(1, 0, 2).reshape(stage_input.shape[1], -1))[0]
    return as_panel(stage_input)[0]


def golden_description(stage: str, compared_with: str, raised: bool = False, returned: bool = True) -> str:
    """What :func:`write_golden_evidence` leaves for ``stage``, for a failure message: ``raised`` when the stage
    raised, ``returned`` when the component had returned an output all the same (of a shape the stage refused)."""
    wavs = {"vocoder": "golden and output WAVs, ", "frontend": "input WAV, "}.get(stage, "")
    if raised and not returned:
        return f"{wavs}mel figure of the stage's input and {compared_with}: the stage raised before any output"
    if raised:
        return f"{wavs}mel figure of the output as it came beside {compared_with} (its shape or values refused)"
    return f"{wavs}mel figure of the output with the difference from {compared_with}"
