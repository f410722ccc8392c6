"""Audio files in and out of the harness: load, validate, pad, write.

Everything the reconstruction chain is fed goes through here, so a bad input fails
early with one readable line (:class:`AudioError`) instead of a NaN deep inside the VAE
or a shape error in the vocoder. :func:`valid_audio` is the one validator of waveforms: files,
front-end inputs and metric inputs pass it once, where they enter; the code behind it trusts them.

The conventions are AudioLDM2's training ones (``docs/AUDIOLDM2_REFERENCE.md`` section 1):
16 kHz mono, the **first** channel of a multi-channel file (no mix-down), zero padding
at the end (or cropping) to ``frames * 160`` samples, and a frame count that is a
multiple of the VAE's down-sampling factor 4 (one VAE block = 640 samples).

Examples
--------
>>> x = load_audio("clip.wav")                  # float32 [samples] at 16 kHz  # doctest: +SKIP
>>> x = pad_or_crop(x)               # normalised, then zero-padded to a multiple of 640  # doctest: +SKIP
>>> mel = get_frontend("audioldm2")(to_tensor(x))                               # doctest: +SKIP
"""
from __future__ import annotations

import math
import os
import struct
import warnings
from typing import Any, Dict, Optional

import numpy as np
import soundfile as sf

from harness import atomic
from harness.errors import AudioError, InputError, PathLike, _one_line

__all__ = [
    "AudioWarning",
    "SAMPLE_RATE",
    "HOP",
    "VAE_FACTOR",
    "BLOCK",
    "N_MELS",
    "MIN_SAMPLES",
    "MIN_RATE",
    "MAX_RATE",
    "MAX_SECONDS",
    "SILENCE_PEAK",
    "CHANNEL_POLICIES",
    "load_audio",
    "load_info",
    "header",
    "valid_audio",
    "normalize_waveform",
    "pad_or_crop",
    "quantize_16bit",
    "frames_for",
    "grid_frames",
    "write_audio",
    "to_tensor",
]


#: sample rate of every AudioLDM2 component (Hz).
SAMPLE_RATE = 16000
#: STFT hop of the front-end: one mel frame per 160 samples (10 ms).
HOP = 160
#: VAE down-sampling factor along time: the frame count must be a multiple of it.
VAE_FACTOR = 4
#: samples per VAE latent step: 640 samples = 40 ms.
BLOCK = HOP * VAE_FACTOR
#: mel bands of the front-end's log-mel ``[frames, 64]``
N_MELS = 64
#: the front-end's n_fft: anything shorter cannot be framed (64 ms at 16 kHz).
MIN_SAMPLES = 1024
#: the longest file (s) a command reads whole (``--max-seconds`` of a command): memory and time grow with the
#: length, and AudioLDM2 itself works on 10.24 s clips
MAX_SECONDS = 60.0
#: lowest sample rate accepted from a file header (Hz); lower ones are a broken header.
MIN_RATE = 4000
#: highest sample rate accepted from a file header (Hz).
MAX_RATE = 384000
#: peak below which audio counts as silent (-100 dBFS). AudioLDM2 normalises by
#: ``max|x| + 1e-8``, which would blow such a signal's noise up to full scale.
SILENCE_PEAK = 1e-5
#: channel policies of :func:`load_audio`.
CHANNEL_POLICIES = ("first", "mean")
#: ``|x| >= CLIP_LEVEL`` counts as clipped in :func:`load_info`.
CLIP_LEVEL = 0.999


class AudioWarning(UserWarning):
    """A usable but suspicious input (e.g. a WAV whose header claims more data than the file holds)."""


def _dbfs(value: float) -> float:
    """Amplitude -> dBFS (``-inf`` for 0)."""
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def _fmt_db(value: float) -> str:
    return "-inf dBFS" if value == -math.inf else f"{value:.1f} dBFS"


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


def _check_path(path: PathLike) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise AudioError(p, "file not found", f"check the path; working directory is {os.getcwd()}")
    if os.path.isdir(p):
        raise AudioError(p, "is a directory, not an audio file", "pass one file inside it")
    return p


def _soundfile_message(exc: Exception, path: str) -> str:
    msg = _one_line(str(exc))
    # libsndfile repeats the path: "Error opening 'x.wav': Format not recognised."
    for quoted in (repr(path), f"'{path}'", f'"{path}"'):
        prefix = f"Error opening {quoted}: "
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _unreadable(path: str, exc: Exception) -> AudioError:
    return AudioError(
        path,
        f"not a readable audio file: {_soundfile_message(exc, path)}",
        "expected a format libsndfile decodes: WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF and others; re-export "
        "it, e.g. ffmpeg -i IN -ar 16000 OUT.wav",
    )


def _read_raw(path: str, max_seconds: Optional[float] = None, truncate: bool = False):
    """Read a file: ``(data float32 [frames, channels], sf.SoundFile metadata dict)``.

    A file longer than ``max_seconds`` (by its header, before any sample is read) is refused with an
    :class:`AudioError`, or with ``truncate`` read up to ``max_seconds`` only. Errors from libsndfile (at
    open *or* while decoding, e.g. a truncated FLAC that loses sync) become :class:`AudioError`.
    """
    try:
        with sf.SoundFile(path) as f:
            meta = dict(samplerate=f.samplerate, channels=f.channels, frames=f.frames,
                        format=f.format, subtype=f.subtype)
            limit = -1
            if max_seconds is not None and f.samplerate > 0 and f.frames > max_seconds * f.samplerate:
                if not truncate:
                    raise AudioError(path, f"{f.frames / f.samplerate:.0f} s long, over the {max_seconds:g} s "
                                     "limit of this command (memory grows with the length)",
                                     f"cut it into parts (e.g. sox IN OUT trim 0 {max_seconds:g}) or raise "
                                     "the limit with --max-seconds")
                limit = int(math.ceil(max_seconds * f.samplerate))
            data = f.read(frames=limit, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError) as exc:
        # SoundFileError covers LibsndfileError; TypeError is raised for some unknown formats.
        raise _unreadable(path, exc) from exc
    except OSError as exc:  # permission denied and friends
        raise AudioError(path, f"cannot open: {exc.strerror or exc}", "check file permissions") from exc
    meta["frames"] = data.shape[0]  # what was actually decoded (a truncated file gives fewer)
    return data, meta


def _wav_data_chunk(path: str):
    """``(declared_bytes, available_bytes)`` of a RIFF/WAVE file's ``data`` chunk, or None.

    None when the file is not a plain RIFF WAV, has no ``data`` chunk, or uses a
    "streaming" size (0 or 0xFFFFFFFF) that libsndfile resolves from the file size.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            for _ in range(64):  # WAVs have a handful of chunks; don't loop on garbage
                hdr = fh.read(8)
                if len(hdr) < 8:
                    return None
                cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"data":
                    if csize in (0, 0xFFFFFFFF):
                        return None
                    return csize, size - fh.tell()
                fh.seek(csize + (csize & 1), os.SEEK_CUR)
    except OSError:
        return None
    return None


def _wav_truncated(path: str, meta: Dict[str, Any]) -> Optional[bool]:
    """True if a WAV's header claims more sample data than the file holds (None: not a WAV)."""
    if meta.get("format") not in ("WAV", "WAVEX"):
        return None
    chunk = _wav_data_chunk(path)
    if chunk is None:
        return None
    declared, available = chunk
    return declared > available


def load_audio(path: PathLike, sr: Optional[int] = SAMPLE_RATE, channel: str = "first",
               max_seconds: Optional[float] = None, truncate: bool = False) -> np.ndarray:
    """Load an audio file as a validated mono float32 waveform.

    Parameters
    ----------
    path : str or path-like
        An audio file libsndfile decodes: WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF and others.
    sr : int or None, default 16000
        Target sample rate in Hz; the file is resampled with soxr (``librosa.resample``,
        ``res_type="soxr_hq"``) when its rate differs. ``None`` keeps the file's rate.
    channel : {"first", "mean"}, default "first"
        How a multi-channel file becomes mono. ``"first"`` keeps channel 0, as
        AudioLDM2's training code does (no mix-down); ``"mean"`` averages all channels.
    max_seconds : float, optional
        Longest file accepted, judged from its header before any sample is read (memory stays bounded
        on any input): a longer one raises :class:`AudioError`, or with ``truncate`` only its first
        ``max_seconds`` are read. ``None``: no limit.
    truncate : bool, default False
        Read the first ``max_seconds`` of a longer file instead of refusing it.

    Returns
    -------
    np.ndarray, float32, shape [samples]
        Full-scale is 1.0. ``samples`` is ``ceil(frames * sr / file_rate)`` after resampling.

    Raises
    ------
    AudioError
        Missing file, a directory, a file libsndfile cannot decode (including a
        truncated FLAC), 0 frames, a sample rate outside [4000, 384000] Hz, and
        everything :func:`valid_audio` rejects (NaN/Inf, silent, too short).
    ValueError
        Unknown ``channel`` policy or an unusable ``sr``.

    Warns
    -----
    AudioWarning
        A WAV whose header claims more data than the file holds. libsndfile then
        returns the frames that are present; the result is shorter than intended.

    Notes
    -----
    NaN/Inf are checked on the file's own samples (indices are file frames), before
    resampling, which would otherwise smear them over neighbouring samples.
    """
    if channel not in CHANNEL_POLICIES:
        raise ValueError(f"unknown channel policy {channel!r}; choose one of {', '.join(CHANNEL_POLICIES)}")
    if sr is not None and (isinstance(sr, bool) or int(sr) != sr or not MIN_RATE <= sr <= MAX_RATE):
        raise ValueError(f"sr must be an integer in [{MIN_RATE}, {MAX_RATE}] Hz or None, got {sr!r}")
    p = _check_path(path)
    data, meta = _read_raw(p, max_seconds, truncate)
    rate = meta["samplerate"]
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(p, f"absurd sample rate {rate} Hz",
                         f"expected {MIN_RATE}..{MAX_RATE} Hz; the header is probably wrong")
    if data.shape[0] == 0:
        raise AudioError(p, "empty: 0 audio frames",
                         "the file has a header but no samples: a failed or truncated export")
    if _wav_truncated(p, meta):
        warnings.warn(
            f"{p}: truncated WAV: the header claims more data than the file holds; "
            f"read the {data.shape[0]} frames present",
            AudioWarning,
            stacklevel=2,
        )

    x = data[:, 0] if channel == "first" else data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if sr is not None and sr != rate:
        import librosa

        _check_finite(x, p)  # at the file's own indices: resampling would smear a NaN over its neighbours
        x = librosa.resample(np.ascontiguousarray(x), orig_sr=rate, target_sr=int(sr), res_type="soxr_hq")
    return valid_audio(x, name=p, sr=int(sr) if sr is not None else rate)


def header(path: PathLike):
    """A file's header (``frames``, ``samplerate``, ``channels``: ``soundfile.info``) without reading its audio.

    Raises
    ------
    AudioError
        Missing file, a directory, a file libsndfile cannot open (as :func:`load_audio`).
    """
    p = _check_path(path)
    try:
        return sf.info(p)
    except Exception as exc:  # noqa: BLE001  libsndfile's errors have no common type
        raise _unreadable(p, exc) from None


def load_info(path: PathLike, max_seconds: Optional[float] = None) -> Dict[str, Any]:
    """Diagnostics of an audio file as stored (no resampling, no channel selection).

    Parameters
    ----------
    path : str or path-like
    max_seconds : float, optional
        Measure the levels on the first ``max_seconds`` only (what a command analyses; memory stays
        bounded on a long file); ``frames`` and ``duration`` still describe the whole file.

    Returns
    -------
    dict
        ``path`` (str), ``sample_rate`` (Hz), ``channels``, ``frames`` (decoded),
        ``duration`` (s), ``format`` / ``subtype`` (libsndfile names, e.g. ``"WAV"`` /
        ``"PCM_16"``), ``peak_dbfs`` and ``rms_dbfs`` (over all channels; ``-inf`` for
        digital silence), ``clipped_fraction`` (share of samples with ``|x| >= 0.999``), ``dc_offset``
        (mean sample value, full scale = 1),
        ``nonfinite`` (count of NaN/Inf samples) and ``truncated`` (True if a WAV header
        claims more data than present, None for other formats).

    Raises
    ------
    AudioError
        Missing file, a directory, or a file libsndfile cannot decode. Empty, silent or
        odd-rate files are reported, not rejected: this is for diagnosing them.
    """
    p = _check_path(path)
    data, meta = _read_raw(p, max_seconds, truncate=True)
    if max_seconds is not None and data.shape[0] >= int(math.ceil(max_seconds * meta["samplerate"])):
        meta["frames"] = header(p).frames  # only the start was read: the length comes from the header
    finite = np.isfinite(data)
    vals = np.abs(data[finite]).astype(np.float64)
    peak = float(vals.max()) if vals.size else 0.0
    rms = float(np.sqrt(np.mean(vals ** 2))) if vals.size else 0.0
    rate = meta["samplerate"]
    return {
        "path": p,
        "sample_rate": rate,
        "channels": meta["channels"],
        "frames": meta["frames"],
        "duration": meta["frames"] / rate if rate > 0 else float("nan"),
        "format": meta["format"],
        "subtype": meta["subtype"],
        "peak_dbfs": _dbfs(peak),
        "rms_dbfs": _dbfs(rms),
        "clipped_fraction": float(np.count_nonzero(vals >= CLIP_LEVEL) / data.size) if data.size else 0.0,
        "dc_offset": float(np.mean(data[finite])) if vals.size else 0.0,
        "nonfinite": int(data.size - np.count_nonzero(finite)),
        "truncated": _wav_truncated(p, meta),
    }


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


def _check_finite(x: np.ndarray, name: Optional[str]) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        n_bad = int(np.count_nonzero(bad))
        first = int(np.flatnonzero(bad)[0])
        raise AudioError(name, f"{n_bad} NaN/Inf samples (first at index {first})",
                         "the file or the code that produced it is broken; re-export it")


def valid_audio(x, name: Optional[str] = None, *, sr: int = SAMPLE_RATE, batch: bool = False,
                min_samples: int = MIN_SAMPLES, allow_silence: bool = False, dtype=None):
    """The one validator of audio samples: every waveform is checked here, once, where it enters the harness.

    It stands at the boundary, as librosa's ``util.valid_audio`` does for librosa: :func:`load_audio` runs it
    on every file, :func:`write_audio` on what it writes, a front-end (:class:`harness.signal.frontend.Frontend`)
    on the waveforms it is called with, each metric of :mod:`harness.signal.metrics` on its two signals (once
    per call, :func:`~harness.signal.metrics.compute` included), the golden generation on the pipeline's
    output. Code behind the boundary (the front-ends' building blocks, the metrics' kernels, the chain's
    stages) trusts what passed and checks nothing again.

    Two forms: one clip (a file's samples, named by its path) or, with ``batch``, the ``[batch, samples]``
    tensor the front-ends and metrics compute on (named by its role).

    Parameters
    ----------
    x : array-like or torch.Tensor
        One mono clip ``[samples]``; with ``batch``, ``[batch, samples]`` or ``[samples]`` (a batch of one).
        Full scale 1.0.
    name : str, optional
        What the input is. One clip: a path, and the message reads ``"<name>: <reason> (<hint>)"``; a batch:
        a role (``"front-end input"``, ``"estimate"``; default ``"waveform"``) that starts the message.
    sr : int, default 16000
        Sample rate in Hz, only used to express a clip's length in milliseconds.
    batch : bool, default False
        Take a batch and return it as a torch tensor, on its device; otherwise one clip, returned as NumPy.
    min_samples : int, default 1024
        Fewest samples accepted (an empty input is refused by any positive value); the default,
        :data:`MIN_SAMPLES`, is one STFT window of the front-end.
    allow_silence : bool, default False
        Accept silent audio. A clip to be judged may not be silent: AudioLDM2 normalises by
        ``max|x| + 1e-8`` and would blow its noise up to full scale. A front-end maps silence to its log
        floor, and a metric says itself where a silent reference leaves it undefined: both allow it.
    dtype : torch.dtype, optional
        With ``batch``: convert to it (the metrics compute in float64). By default integer samples become
        float32 and floating ones keep their dtype.

    Returns
    -------
    np.ndarray float32 [samples], or with ``batch`` a torch.Tensor [batch, samples]

    Raises
    ------
    AudioError
        One clip, naming it, in one line with a hint: not 1-D (a stereo ``[2, n]`` / ``[n, 2]`` array is
        told to pick a channel), not floating point (integers are told their scale, e.g. ``x / 32768``),
        NaN/Inf samples (count and first index), shorter than ``min_samples`` (in ms too), or silent (peak
        below :data:`SILENCE_PEAK`, -100 dBFS).
    InputError
        A batch, in one line starting with its role: not 1-D or 2-D, complex, shorter than ``min_samples``,
        NaN/Inf samples (naming the batch items), or silent items (unless ``allow_silence``).
    """
    if batch:
        import torch

        what = name or "waveform"
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x, dtype=np.float64 if dtype == torch.float64 else np.float32))
        x = x[None] if x.ndim == 1 else x
    else:
        # a tensor without importing torch (numpy has no bfloat16: a low-precision tensor is read as float32)
        x = np.asarray(x.detach().cpu().float() if hasattr(x, "detach") and x.is_floating_point() else
                       x.detach().cpu() if hasattr(x, "detach") else x)

    # 1. dimensionality: mono
    if batch and x.ndim != 2:
        raise InputError(f"{what} must be [batch, samples] or [samples], got shape {tuple(x.shape)}")
    if not batch and x.ndim == 2:
        ch_axis = 0 if x.shape[0] <= x.shape[1] else 1
        pick = "x[0]" if ch_axis == 0 else "x[:, 0]"
        mean = f"x.mean(axis={ch_axis})"
        raise AudioError(name, f"expected a 1-D mono waveform, got shape {x.shape} ({x.shape[ch_axis]} channels?)",
                         f"pick a channel: {pick} as AudioLDM2 does, or mix down with {mean}")
    if not batch and x.ndim != 1:
        raise AudioError(name, f"expected a 1-D mono waveform, got shape {x.shape}",
                         "pick a channel and pass [samples]")

    # 2. dtype: real floating point
    if batch:
        if x.is_complex():
            raise InputError(f"{what} must be real, got dtype {x.dtype}")
        x = x.to(dtype) if dtype is not None else (x if x.is_floating_point() else x.float())
    elif not np.issubdtype(x.dtype, np.floating):
        hint = "convert to float in [-1, 1]"
        if np.issubdtype(x.dtype, np.integer):
            hint += f", e.g. x / {2 ** (8 * x.dtype.itemsize - 1)}"
        raise AudioError(name, f"samples have dtype {x.dtype}, expected floating point", hint)

    # 3. length (an empty input included)
    n = x.shape[-1]
    if n < min_samples:
        window = " (one 1024-sample STFT window, 64 ms at 16 kHz)" if min_samples == MIN_SAMPLES else ""
        if batch:
            raise InputError(f"{what} has {n} samples; at least {min_samples} are needed{window}")
        raise AudioError(
            name,
            f"too short: {n} samples ({1000.0 * n / sr:.1f} ms at {sr} Hz); "
            f"minimum is {min_samples} samples ({1000.0 * min_samples / sr:.0f} ms)",
            ("the front-end needs one full 1024-sample STFT window; " if window else "") + "use a longer clip",
        )

    # 4. NaN/Inf
    if batch:
        # NaN propagates to both ends: one pass, and no [batch, samples] bool temporary unless one is there
        lo, hi = torch.aminmax(x) if x.numel() else (x.new_zeros(()),) * 2
        if not (torch.isfinite(lo) and torch.isfinite(hi)):
            bad = ~torch.isfinite(x)
            items = torch.nonzero(bad.any(dim=-1)).flatten().tolist()
            kinds = " and ".join(k for k, m in (("NaN", torch.isnan(x)), ("Inf", torch.isinf(x))) if m.any())
            raise InputError(f"{what} contains {kinds} samples (batch items {items})")
    else:
        _check_finite(x, name)

    # 5. silence
    if not allow_silence:
        if batch:
            silent = x.abs().amax(dim=-1) < SILENCE_PEAK if n else x.new_ones(x.shape[0], dtype=torch.bool)
            if silent.any():
                items = torch.nonzero(silent).flatten().tolist()
                raise InputError(f"{what} is silent (peak below {_fmt_db(_dbfs(SILENCE_PEAK))}) in batch items {items}")
        else:
            peak = float(np.max(np.abs(x))) if n else 0.0
            if peak < SILENCE_PEAK:
                raise AudioError(
                    name,
                    f"silent: peak {_fmt_db(_dbfs(peak))} is below {_fmt_db(_dbfs(SILENCE_PEAK))}",
                    "AudioLDM2 normalises by max|x| + 1e-8 and would blow the noise up to full scale",
                )
    return x if batch else x.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------
# length
# ---------------------------------------------------------------------------


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def frames_for(n_samples: int, multiple: int = VAE_FACTOR) -> int:
    """Smallest mel frame count that covers ``n_samples`` and is a multiple of ``multiple``.

    Parameters
    ----------
    n_samples : int
        Waveform length in samples (>= 0).
    multiple : int, default 4
        Frame granularity; 4 is the VAE's down-sampling factor.

    Returns
    -------
    int
        ``k`` with ``k % multiple == 0`` and ``k * 160 >= n_samples`` (0 for 0 samples).

    Examples
    --------
    >>> frames_for(16000)     # 1 s -> 100 frames, already a multiple of 4
    100
    >>> frames_for(16001)
    104
    """
    multiple = _positive_int(multiple, "multiple")
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 0:
        raise ValueError(f"n_samples must be a non-negative integer, got {n_samples!r}")
    frames = -(-int(n_samples) // HOP)
    return -(-frames // multiple) * multiple


def normalize_waveform(waveform):
    """AudioLDM2's waveform normalisation: remove the mean, peak-normalise, halve.

    ``x = x - mean(x); x = x / (max|x| + 1e-8); x = 0.5 x`` per row of a tensor ``[batch, samples]``.
    Peak of the result is 0.5. The front-ends' first step (:mod:`harness.signal.frontend` re-exports it) and
    the matrix's, before padding (:func:`pad_or_crop`).
    """
    x = waveform - waveform.mean(dim=-1, keepdim=True)
    # max|x| as max(max x, -min x): no |x| temporary (and aminmax(dim=...) is ~30x slower on CPU)
    peak = x.amax(dim=-1, keepdim=True).maximum(-x.amin(dim=-1, keepdim=True))
    return x.mul_(0.5 / (peak + 1e-8))


def grid_frames(n_samples: int) -> int:
    """Mel frames a clip of ``n_samples`` is padded to: the smallest multiple of 4 that covers it
    (:func:`frames_for`), and never exactly 64 (= :data:`N_MELS`), where a transposed ``[b, 64, T]`` mel would
    pass a shape check.

    Examples
    --------
    >>> grid_frames(16000), grid_frames(64 * 160)
    (100, 68)
    """
    frames = frames_for(n_samples)
    return frames + VAE_FACTOR if frames == N_MELS else frames


def pad_or_crop(x, frames: Optional[int] = None, multiple: int = VAE_FACTOR, normalize: bool = True) -> np.ndarray:
    """Crop, normalise (AudioLDM2's order), then zero-pad at the end to ``frames * 160`` samples.

    AudioLDM2 normalises the waveform (mean removal, 0.5 peak) *before* padding it to the frame
    grid. Normalising the padded signal instead leaves a residual DC of ``mean * pad / n`` on the
    real samples, which lands in the lowest mel band (up to ~1e-2 nats on real clips whose length
    is not a multiple of 640). The front-ends normalise again; on an already normalised, zero-padded
    signal that is the identity (mean 0, peak 0.5) up to float round-off.

    Parameters
    ----------
    x : array-like, shape [samples] or [batch, samples]
    frames : int, optional
        Target mel frame count. Default: ``frames_for(samples, multiple)``, the smallest
        multiple of ``multiple`` frames that covers the input (so never a crop).
    multiple : int, default 4
        Only used when ``frames`` is None.
    normalize : bool, default True
        Apply :func:`normalize_waveform` (``x - mean``, then ``0.5 x / (max|x| + 1e-8)``)
        to the kept samples, row by row, before padding. ``False`` pads the samples as they are.

    Returns
    -------
    np.ndarray, shape [frames * 160] or [batch, frames * 160], same dtype as ``x``
        ``out[..., :n]`` is ``x[..., :n]`` (normalised if ``normalize``) for ``n = min(len, target)``;
        zeros after.
    """
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"pad_or_crop expects [samples] or [batch, samples], got shape {x.shape}")
    n = x.shape[-1]
    target = (frames_for(n, multiple) if frames is None else _positive_int(frames, "frames")) * HOP
    kept = x[..., :target].copy()
    if normalize and kept.shape[-1]:
        import torch

        kept = normalize_waveform(torch.from_numpy(kept.astype(np.float64))).numpy().astype(x.dtype)
    if target <= n:
        return kept
    pad = [(0, 0)] * (x.ndim - 1) + [(0, target - n)]
    return np.pad(kept, pad, mode="constant")


# ---------------------------------------------------------------------------
# writing and conversion
# ---------------------------------------------------------------------------


def quantize_16bit(x: np.ndarray) -> np.ndarray:
    """``x`` with the resolution of a 16-bit PCM file: ``round(x * 32767) / 32767``, clipped to [-1, 1].

    Parameters
    ----------
    x : ndarray, float, any shape
        Samples, full scale 1.0.

    Returns
    -------
    ndarray, the dtype of ``x``
        What writing ``x`` as a 16-bit WAV and reading it back gives (no dither).
    """
    return (np.round(np.clip(x, -1.0, 1.0) * 32767.0) / 32767.0).astype(x.dtype, copy=False)


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor without importing torch
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def write_audio(path: PathLike, x, sr: int = SAMPLE_RATE) -> str:
    """Write a mono waveform; parent directories are created.

    Parameters
    ----------
    path : str or path-like
        ``.flac`` -> FLAC PCM_24 (samples clipped to [-1, 1]); anything else -> WAV
        with 32-bit float samples (no clipping).
    x : array-like or torch.Tensor, shape [samples] or [1, samples]
    sr : int, default 16000
        Sample rate in Hz.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    AudioError
        What :func:`valid_audio` refuses in any clip: more than one channel / batch item, samples that are
        not floating point, NaN/Inf samples. Any length, and silence, are written.
    """
    p = os.fspath(path)
    x = _to_numpy(x)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:  # a chain's output batch, not channels of one clip: no mix-down advice
        raise AudioError(p, f"write_audio writes mono [samples], got shape {x.shape}",
                         "write one channel / batch item at a time")
    x = valid_audio(x, p, min_samples=0, allow_silence=True)  # any length, silence too: it is what was made
    sr = _positive_int(sr, "sr")
    with atomic.temporary_sibling(p) as tmp:  # killed while writing, the previous file stays
        _write(str(tmp), x, sr, p.lower().endswith(".flac"))
    return p


def _write(p: str, x: np.ndarray, sr: int, flac: bool) -> None:
    if flac:
        sf.write(p, np.clip(x, -1.0, 1.0), sr, format="FLAC", subtype="PCM_24")
    else:
        with sf.SoundFile(p, "w", sr, 1, subtype="FLOAT", format="WAV") as f:
            _no_peak_chunk(f)
            f.write(x)


def _no_peak_chunk(f) -> None:
    """Drop libsndfile's PEAK chunk from a float WAV: it carries a timestamp, so identical samples would
    give different bytes (and sha256) on every write, and every regenerated golden would look changed.

    Uses soundfile's low-level handle (``SFC_SET_ADD_PEAK_CHUNK``); if a soundfile version lacks it,
    the file is written with the chunk, which is still a valid WAV.
    """
    try:
        sf._snd.sf_command(f._file, 0x1050, sf._ffi.NULL, 0)  # SFC_SET_ADD_PEAK_CHUNK, SF_FALSE
    except AttributeError:
        pass


def to_tensor(x, device=None):
    """Waveform(s) -> float32 ``torch.Tensor [batch, samples]`` for the front-ends.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape [samples] or [batch, samples]
    device : torch.device or str, optional

    Returns
    -------
    torch.Tensor, float32, shape [batch, samples] (batch 1 for 1-D input)
    """
    import torch

    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = t.to(device=device, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2:
        raise ValueError(f"to_tensor expects [samples] or [batch, samples], got shape {tuple(t.shape)}")
    return t
