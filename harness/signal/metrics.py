"""Reconstruction metrics: waveform and spectral, batched in torch.

Every metric is a small pure function ``metric(estimate, reference, **options)``
taking two 16 kHz mono signals ``[batch, samples]`` (a 1-D signal is a batch of
one; NumPy arrays are accepted) and returning a ``float64`` tensor ``[batch]``:
one score per item, computed without a Python loop over the batch, on the
device of the inputs. Arguments are ``(estimate, reference)`` in that order,
as in auraloss and torchmetrics.
Each call checks its two signals once, with :func:`harness.signal.audio.valid_audio`
(silence allowed: a metric says itself where a silent reference leaves it undefined); the kernels
behind it, and :func:`compute`'s metrics, trust the checked pair.

Two families, because they judge different things (``docs/AUDIOLDM2_REFERENCE.md``
section 5):

* **waveform** metrics (:func:`snr`, :func:`correlation`, :func:`mse`,
  :func:`si_sdr`) compare samples, so they punish any phase or lag difference:
  a vocoder never reproduces the original phase, and a one-sample shift already
  costs several dB. Use them for stages that should be sample-exact, and only
  after :func:`align` (lag) and :func:`match_gain` (level), which every
  waveform metric can apply itself (``align=True, match_gain=True``).
* **spectral** metrics (:func:`mel_l1`, :func:`mel_snr`, :func:`lsd`,
  :func:`mrstft`) compare magnitudes only: the judges of vocoder (phase-free)
  reconstructions.

:data:`METRICS` registers each one with its unit and direction;
:func:`compute` evaluates several at once and :func:`is_better` compares a
score with a threshold in the right direction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from harness.errors import InputError
from harness.signal import frontend
from harness.signal.audio import valid_audio

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[float]]

#: Cap (in dB) of every dB-ratio metric: the score of an exact reconstruction.
#: Finite so thresholds and means stay meaningful; float64 round-off alone
#: stays far below it (float32 round-off gives ~140 dB).
DB_CAP = 300.0
#: Default alignment search range: +-1600 samples = +-100 ms at 16 kHz.
MAX_LAG = 1600
#: Power floor of :func:`lsd` (``10 log10(1e-10) = -100 dB``).
LSD_EPS = 1e-10
#: log-mel comparisons count no difference below this level (nats, ``ln 3.4e-4``; the front-end's own floor
#: is ``ln 1e-5 = -11.5``): AudioLDM2's mel of 0.5-peak audio puts 16-bit quantisation noise near -9.5 nats,
#: so re-quantising a front-end's input or a vocoder's output to 16 bits (what reading or saving a WAV
#: does) changes nothing that counts. Absolute, not relative to the loudest bin: a decoded mel (the
#: pipeline's) can hold outliers far above the rest
MEL_FLOOR_NATS = -8.0
#: the log-spectral distance likewise ignores power more than this far below the reference's loudest bin (dB)
LSD_RANGE_DB = 60.0
#: auraloss' ``MultiResolutionSTFTLoss`` defaults (Parallel WaveGAN's resolutions).
MRSTFT_FFT_SIZES = (1024, 2048, 512)
MRSTFT_HOP_SIZES = (120, 240, 50)
MRSTFT_WIN_LENGTHS = (600, 1200, 240)
#: auraloss' magnitude floor: ``|X| = sqrt(max(re^2 + im^2, 1e-8))``.
MRSTFT_EPS = 1e-8


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------


def _check_pair(estimate: ArrayLike, reference: ArrayLike, min_samples: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """The metrics' boundary: each signal through :func:`harness.signal.audio.valid_audio` (float64
    ``[batch, samples]``, at least ``min_samples``, silence allowed), then what a pair needs: one device, one
    length, one batch size. Every public metric calls it once; the kernels behind it trust its result."""
    options = dict(batch=True, min_samples=min_samples, allow_silence=True, dtype=torch.float64)
    est, ref = valid_audio(estimate, "estimate", **options), valid_audio(reference, "reference", **options)
    if isinstance(estimate, torch.Tensor) and not isinstance(reference, torch.Tensor):
        ref = ref.to(est.device)
    elif isinstance(reference, torch.Tensor) and not isinstance(estimate, torch.Tensor):
        est = est.to(ref.device)
    if est.device != ref.device:
        raise InputError(f"estimate is on {est.device} but reference is on {ref.device}")
    if est.shape[-1] != ref.shape[-1]:
        raise InputError(
            f"length mismatch: estimate has {est.shape[-1]} samples, reference has {ref.shape[-1]}; "
            "crop or pad them to the same length first"
        )
    if est.shape[0] != ref.shape[0]:
        raise InputError(f"batch mismatch: estimate has {est.shape[0]} items, reference has {ref.shape[0]}")
    return est, ref


def _require_not_silent(ref: torch.Tensor, energy: torch.Tensor, what: str = "reference") -> None:
    silent = energy <= 0
    if silent.any():
        items = torch.nonzero(silent).flatten().tolist()
        raise InputError(f"{what} is silent (all zeros) in batch items {items}: the ratio is undefined")


def _db_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``10 log10(num / den)`` clamped to ``[-DB_CAP, DB_CAP]``; ``0 / 0`` gives ``-DB_CAP``."""
    db = 10.0 * (torch.log10(num) - torch.log10(den))
    db = torch.where(torch.isnan(db), torch.full_like(db, -DB_CAP), db)
    return db.clamp(-DB_CAP, DB_CAP)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=-1)


# ---------------------------------------------------------------------------
# alignment and gain
# ---------------------------------------------------------------------------


def _shift(x: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
    """``y[b, n] = x[b, n + lags[b]]``, zero where ``n + lags[b]`` falls outside the signal."""
    n = x.shape[-1]
    idx = torch.arange(n, device=x.device)[None] + lags[:, None]
    valid = (idx >= 0) & (idx < n)
    out = torch.gather(x, 1, idx.clamp(0, n - 1))
    return torch.where(valid, out, torch.zeros((), dtype=x.dtype, device=x.device))


def _align(est: torch.Tensor, ref: torch.Tensor, max_lag: int) -> Tuple[torch.Tensor, torch.Tensor]:
    n = est.shape[-1]
    if max_lag < 0:
        raise InputError(f"max_lag must be >= 0, got {max_lag}")
    max_lag = min(int(max_lag), n - 1)
    if max_lag == 0:
        return est, torch.zeros(est.shape[0], dtype=torch.long, device=est.device)
    # Linear (not circular) cross-correlation for lags in [-max_lag, max_lag]:
    # an FFT of length >= n + max_lag keeps wrapped terms out of that range.
    nfft = 1 << (n + max_lag - 1).bit_length()
    xc = torch.fft.irfft(torch.fft.rfft(est, nfft) * torch.fft.rfft(ref, nfft).conj(), nfft)
    # xc[k] = sum_n est[n + k] ref[n]; negative lags sit at the end.
    window = torch.cat([xc[:, nfft - max_lag:], xc[:, : max_lag + 1]], dim=-1)
    lags = window.argmax(dim=-1) - max_lag
    return _shift(est, lags), lags


def align(estimate: ArrayLike, reference: ArrayLike, max_lag: int = MAX_LAG) -> Tuple[torch.Tensor, torch.Tensor]:
    """Shift each estimate by the lag that best matches its reference.

    The lag maximises the cross-correlation ``sum_n est[n + lag] ref[n]`` (the
    inner product of the shifted estimate with the reference) over
    ``|lag| <= max_lag``, found for the whole batch with one FFT
    cross-correlation. The shift zero-fills (it is not circular): samples moved
    past the edge are lost and count as error in the metrics afterwards, so a
    delayed copy scores perfectly only if the reference's content is not in its
    last ``lag`` samples.

    Parameters
    ----------
    estimate, reference : Tensor or ndarray [batch, samples] or [samples]
        16 kHz waveforms of the same length.
    max_lag : int >= 0
        Largest shift tried, in samples (default 1600 = 100 ms). Clipped to
        ``samples - 1``; 0 disables alignment.

    Returns
    -------
    aligned : Tensor float64 [batch, samples]
        ``aligned[b, n] = estimate[b, n + lags[b]]``, zero outside the signal.
    lags : Tensor int64 [batch]
        Samples by which each estimate lags its reference: positive means the
        estimate is late (``estimate[n] ~ reference[n - lag]``).

    Raises
    ------
    ValueError
        Length mismatch, NaN/Inf samples, or a negative ``max_lag``.
    """
    est, ref = _check_pair(estimate, reference)
    return _align(est, ref, max_lag)


def _match_gain(est: torch.Tensor, ref: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    ee = _dot(est, est)
    gains = torch.where(ee > 0, _dot(est, ref) / torch.where(ee > 0, ee, torch.ones_like(ee)), torch.zeros_like(ee))
    return est * gains[:, None], gains


def match_gain(estimate: ArrayLike, reference: ArrayLike) -> Tuple[torch.Tensor, torch.Tensor]:
    """Scale each estimate by its least-squares gain onto the reference.

    ``g = <est, ref> / <est, est>`` minimises ``||ref - g est||^2``. The gain
    can be negative (an inverted estimate is flipped back); a silent estimate
    gets ``g = 0``.

    Parameters
    ----------
    estimate, reference : Tensor or ndarray [batch, samples] or [samples]

    Returns
    -------
    scaled : Tensor float64 [batch, samples]
        ``g[b] * estimate[b]``.
    gains : Tensor float64 [batch]
        The gains, unitless (``20 log10 |g|`` dB).
    """
    est, ref = _check_pair(estimate, reference)
    return _match_gain(est, ref)


def _prepare(estimate, reference, align: bool, max_lag: int, match_gain: bool, min_samples: int = 1):
    """A waveform metric's inputs: the pair validated (:func:`_check_pair`), then :func:`_adjust`."""
    return _adjust(*_check_pair(estimate, reference, min_samples), align, max_lag, match_gain)


def _adjust(est: torch.Tensor, ref: torch.Tensor, align: bool, max_lag: int, match_gain: bool):
    """The estimate aligned and/or gain-matched to the reference (a validated pair: nothing is checked again)."""
    if align:
        est, _ = _align(est, ref, max_lag)
    if match_gain:
        est, _ = _match_gain(est, ref)
    return est, ref


# ---------------------------------------------------------------------------
# waveform metrics
# ---------------------------------------------------------------------------

#: the Raises section of the metrics undefined for a silent reference (``{raises}`` in their docstrings)
_SILENT_REFERENCE_RAISES = """Raises
    ------
    ValueError
        Length mismatch, NaN/Inf samples, or a silent (all-zero) reference."""
#: the Parameters section every waveform metric's docstring shares (``{parameters}`` in it)
_WAVEFORM_PARAMETERS = """Parameters
    ----------
    estimate, reference : Tensor or ndarray [batch, samples] or [samples]
        16 kHz waveforms of the same length (correlation: at least 2 samples).
    align : bool, default False
        First shift the estimate by :func:`align` (zero-fill, ``|lag| <= max_lag``).
    max_lag : int, default 1600
        Alignment search range in samples (100 ms at 16 kHz).
    match_gain : bool, default False
        Then scale the estimate by its least-squares gain (:func:`match_gain`)."""


def snr(estimate: ArrayLike, reference: ArrayLike, *, align: bool = False, max_lag: int = MAX_LAG,
        match_gain: bool = False) -> torch.Tensor:
    """Signal-to-noise ratio of the estimate against the reference, in dB.

    ``10 log10(sum ref^2 / sum (ref - est)^2)`` per item. Higher is better;
    range ``(-inf, DB_CAP]``: an exact reconstruction scores ``DB_CAP`` (300 dB)
    rather than ``+inf``, a silent estimate 0 dB, an inverted one about -6 dB.
    Sensitive to level, lag and phase; with ``match_gain=True`` it is
    invariant to the estimate's level (and sign).

    {parameters}

    Returns
    -------
    Tensor float64 [batch]
        SNR in dB.

    {raises}
    """
    return _snr(*_prepare(estimate, reference, align, max_lag, match_gain))


def _snr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    signal = _dot(ref, ref)
    _require_not_silent(ref, signal)
    err = ref - est
    return _db_ratio(signal, _dot(err, err))


def correlation(estimate: ArrayLike, reference: ArrayLike, *, align: bool = False, max_lag: int = MAX_LAG,
                match_gain: bool = False) -> torch.Tensor:
    """Pearson correlation of the estimate with the reference.

    ``<e - mean e, r - mean r> / (||e - mean e|| ||r - mean r||)`` per item.
    Higher is better; range ``[-1, 1]``: 1 for an exact (or positively scaled
    and offset) copy, about 0 for unrelated signals; a constant estimate scores
    0. Invariant to the estimate's positive gain and DC offset; with
    ``match_gain=True`` also to its sign.

    {parameters}

    Returns
    -------
    Tensor float64 [batch]
        Correlation, unitless.

    Raises
    ------
    ValueError
        Length mismatch, NaN/Inf samples, or a constant reference.
    """
    return _correlation(*_prepare(estimate, reference, align, max_lag, match_gain, min_samples=2))


def _correlation(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    e = est - est.mean(dim=-1, keepdim=True)
    r = ref - ref.mean(dim=-1, keepdim=True)
    rr, ee = _dot(r, r), _dot(e, e)
    if (rr <= 0).any():
        items = torch.nonzero(rr <= 0).flatten().tolist()
        raise InputError(f"reference is constant (silent) in batch items {items}: correlation is undefined")
    denom = torch.sqrt(ee) * torch.sqrt(rr)
    corr = torch.where(ee > 0, _dot(e, r) / torch.where(ee > 0, denom, torch.ones_like(denom)), torch.zeros_like(ee))
    return corr.clamp(-1.0, 1.0)


def mse(estimate: ArrayLike, reference: ArrayLike, *, align: bool = False, max_lag: int = MAX_LAG,
        match_gain: bool = False) -> torch.Tensor:
    """Mean squared error between estimate and reference samples.

    ``mean (est - ref)^2`` per item, in squared full-scale units. Lower is
    better; range ``[0, inf)``, 0 for an exact copy.

    {parameters}

    Returns
    -------
    Tensor float64 [batch]
        MSE (full scale squared).

    Raises
    ------
    ValueError
        Length mismatch or NaN/Inf samples.
    """
    return _mse(*_prepare(estimate, reference, align, max_lag, match_gain))


def _mse(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return ((est - ref) ** 2).mean(dim=-1)


def si_sdr(estimate: ArrayLike, reference: ArrayLike, *, align: bool = False, max_lag: int = MAX_LAG,
           match_gain: bool = False) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio (Le Roux et al. 2019), in dB.

    With ``a = <est, ref> / <ref, ref>``: ``10 log10(||a ref||^2 / ||est - a ref||^2)``
    per item. Higher is better; range ``[-DB_CAP, DB_CAP]``: an exact (or
    scaled) copy scores ``DB_CAP`` (300 dB), a silent or orthogonal estimate
    ``-DB_CAP``. Invariant to the estimate's gain (any non-zero factor), so
    ``match_gain`` changes nothing; no mean removal.

    {parameters}

    Returns
    -------
    Tensor float64 [batch]
        SI-SDR in dB.

    {raises}
    """
    return _si_sdr(*_prepare(estimate, reference, align, max_lag, match_gain))


def _si_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    rr = _dot(ref, ref)
    _require_not_silent(ref, rr)
    a = _dot(est, ref) / rr
    target = a[:, None] * ref
    noise = est - target
    return _db_ratio(_dot(target, target), _dot(noise, noise))


for _f in (snr, correlation, mse, si_sdr):
    _f.__doc__ = _f.__doc__.replace("{parameters}", _WAVEFORM_PARAMETERS).replace("{raises}", _SILENT_REFERENCE_RAISES)


# ---------------------------------------------------------------------------
# spectral metrics
# ---------------------------------------------------------------------------


def _as_mel_batch(mel: ArrayLike, what: str) -> torch.Tensor:
    if not isinstance(mel, torch.Tensor):
        mel = torch.as_tensor(np.asarray(mel, dtype=np.float64))
    if mel.ndim == 2:  # [frames, mels]: a batch of one
        mel = mel[None]
    if mel.ndim not in (3, 4) or (mel.ndim == 4 and mel.shape[1] != 1):
        raise InputError(f"{what} must be a log-mel [batch, 1, frames, mels], [batch, frames, mels] or "
                         f"[frames, mels], got shape {tuple(mel.shape)}")
    mel = mel.reshape(mel.shape[0], -1, mel.shape[-1]).to(torch.float64)
    if not torch.isfinite(mel).all():
        raise InputError(f"{what} contains NaN or Inf")
    return mel


def _log_mels(estimate, reference, mel_estimate, mel_reference) -> Tuple[torch.Tensor, torch.Tensor]:
    """The two log-mels a mel metric compares: the ``audioldm2`` front-end of the waveforms, or the
    mels as given (librosa's ``y=None, S=None`` convention). float64 ``[batch, frames, mels]``."""
    waves, mels = (estimate, reference), (mel_estimate, mel_reference)
    if all(m is None for m in mels):
        if any(w is None for w in waves):
            raise InputError("give both waveforms (estimate, reference) or both log-mels (mel_estimate=, mel_reference=)")
        return _audioldm2_mels(*_check_pair(estimate, reference, min_samples=frontend.N_FFT))
    if any(m is None for m in mels) or any(w is not None for w in waves):
        raise InputError("give both waveforms (estimate, reference) or both log-mels (mel_estimate=, mel_reference=), "
                         "not a mix")
    m_est, m_ref = _as_mel_batch(mel_estimate, "mel_estimate"), _as_mel_batch(mel_reference, "mel_reference")
    if m_est.shape != m_ref.shape:
        raise InputError(f"mel shape mismatch: estimate {tuple(m_est.shape)}, reference {tuple(m_ref.shape)}")
    return m_est, m_ref.to(m_est.device)


def _audioldm2_mels(est: torch.Tensor, ref: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The ``audioldm2`` log-mels ``[batch, frames, mels]`` of a validated pair (the front-end checks nothing again)."""
    fe = frontend.get_frontend("audioldm2")
    return fe.mel(est)[:, 0], fe.mel(ref)[:, 0]


def mel_l1(estimate: Optional[ArrayLike] = None, reference: Optional[ArrayLike] = None, *,
           mel_estimate: Optional[ArrayLike] = None, mel_reference: Optional[ArrayLike] = None) -> torch.Tensor:
    """Mean absolute difference of the AudioLDM2 log-mels, in nats.

    Both signals go through the ``audioldm2`` front-end (normalise to 0.5 peak,
    ``|STFT|`` 1024/160, Slaney mel 64, ``ln(clamp(., 1e-5))``), both are floored at
    :data:`MEL_FLOOR_NATS` (what lies under a 16-bit recording's noise floor does not count) except
    where the reference is digitally silent (at the front-end's own floor, ``ln 1e-5``), then
    ``mean |mel_est - mel_ref|`` over frames and mel bins per item. Lower is
    better; range ``[0, ~23]`` (0 for a copy; the floor-to-peak span of the log
    is the practical maximum). Phase-free, and level- and DC-invariant
    because the front-end normalises: a judge of vocoder output. Log-mels
    already computed (a VAE's output, a golden mel) are given as
    ``mel_estimate=, mel_reference=`` instead, as librosa takes ``S=``.

    Parameters
    ----------
    estimate, reference : Tensor or ndarray [batch, samples] or [samples], optional
        16 kHz waveforms of the same length, at least 1024 samples.
    mel_estimate, mel_reference : Tensor or ndarray, optional
        Natural-log mels ``[batch, 1, frames, mels]``, ``[batch, frames, mels]`` or
        ``[frames, mels]``, of one shape; used as given.

    Returns
    -------
    Tensor float64 [batch]
        Mean absolute log-mel difference, nats.

    Raises
    ------
    ValueError
        Neither or both kinds of input, length or shape mismatch, NaN/Inf, or
        fewer than 1024 samples.
    """
    return _mel_l1(*_log_mels(estimate, reference, mel_estimate, mel_reference))


def _mel_l1(m_est: torch.Tensor, m_ref: torch.Tensor) -> torch.Tensor:
    # digital silence in the reference (a bin at the front-end's own floor: padding, gaps) is compared in full,
    # so a front-end with another log floor or a vocoder that fills silence with noise still counts there
    silent = m_ref <= frontend.LOG_FLOOR_NATS + 1e-4
    est = torch.where(silent, m_est, m_est.clamp(min=MEL_FLOOR_NATS))
    ref = torch.where(silent, m_ref, m_ref.clamp(min=MEL_FLOOR_NATS))
    return (est - ref).abs().flatten(1).mean(dim=-1)


def mel_snr(estimate: Optional[ArrayLike] = None, reference: Optional[ArrayLike] = None, *,
            mel_estimate: Optional[ArrayLike] = None, mel_reference: Optional[ArrayLike] = None) -> torch.Tensor:
    """SNR of the AudioLDM2 log-mel of the estimate, in dB.

    ``10 log10(sum (mel_ref - floor)^2 / sum (mel_ref - mel_est)^2)`` per item,
    with the log-mels of the ``audioldm2`` front-end (or given, as in
    :func:`mel_l1`) and ``floor = ln(1e-5) = frontend.LOG_FLOOR_NATS`` (the
    value of a silent bin): the signal is the reference's log-mel measured from
    silence, the noise the log-mel error. Higher is better; range
    ``(-inf, DB_CAP]``, ``DB_CAP`` (300 dB) for a copy, 0 dB for a silent
    estimate. Phase-free, level- and DC-invariant (the front-end normalises).
    This is the mel-domain quantity a VAE round trip should preserve.

    Parameters
    ----------
    estimate, reference : Tensor or ndarray [batch, samples] or [samples], optional
        16 kHz waveforms of the same length, at least 1024 samples.
    mel_estimate, mel_reference : Tensor or ndarray, optional
        Natural-log mels of one shape (see :func:`mel_l1`).

    Returns
    -------
    Tensor float64 [batch]
        Log-mel SNR in dB.

    Raises
    ------
    ValueError
        As :func:`mel_l1`, or a silent reference (its log-mel is all floor).
    """
    return _mel_snr(*_log_mels(estimate, reference, mel_estimate, mel_reference))


def _mel_snr(m_est: torch.Tensor, m_ref: torch.Tensor) -> torch.Tensor:
    sig = ((m_ref - frontend.LOG_FLOOR_NATS) ** 2).flatten(1).sum(dim=-1)
    _require_not_silent(m_ref, sig)
    err = ((m_ref - m_est) ** 2).flatten(1).sum(dim=-1)
    return _db_ratio(sig, err)


def lsd(estimate: ArrayLike, reference: ArrayLike, eps: float = LSD_EPS) -> torch.Tensor:
    """Log-spectral distance, in dB.

    Power STFT ``P = |STFT|^2`` with AudioLDM2's framing (n_fft 1024, hop 160,
    periodic Hann, reflect-pad 432, ``samples // 160`` frames), then per frame
    ``sqrt(mean_f (10 log10 max(P_ref, f) - 10 log10 max(P_est, f))^2)``, with the floor ``f`` at
    :data:`LSD_RANGE_DB` below the reference's loudest bin (and at least ``eps``),
    averaged over frames, per item. Lower is better; range ``[0, LSD_RANGE_DB]``,
    0 for a copy. Phase-free but level-sensitive (no normalisation): an
    estimate scaled by ``g`` scores ``|20 log10 g|`` dB.

    Parameters
    ----------
    estimate, reference : Tensor or ndarray [batch, samples] or [samples]
        16 kHz waveforms of the same length, at least 1024 samples.
    eps : float, default 1e-10
        Power floor (-100 dB) so silent bins stay finite.

    Returns
    -------
    Tensor float64 [batch]
        LSD in dB.

    Raises
    ------
    ValueError
        Length mismatch, NaN/Inf samples, or fewer than 1024 samples.
    """
    return _lsd(*_check_pair(estimate, reference, min_samples=frontend.N_FFT), eps)


def _lsd(est: torch.Tensor, ref: torch.Tensor, eps: float = LSD_EPS) -> torch.Tensor:
    p_est = frontend.stft_magnitude(est) ** 2  # [batch, 513, frames]
    p_ref = frontend.stft_magnitude(ref) ** 2
    floor = (p_ref.flatten(1).amax(dim=-1) * 10.0 ** (-LSD_RANGE_DB / 10)).clamp(min=eps)[:, None, None]
    diff = 10.0 * (torch.log10(p_ref.maximum(floor)) - torch.log10(p_est.maximum(floor)))
    per_frame = torch.sqrt((diff ** 2).mean(dim=1))  # [batch, frames]
    return per_frame.mean(dim=-1)


def magnitude_spectrogram(x: torch.Tensor, fft_size: int, hop: int, win: int, eps: float = MRSTFT_EPS) -> torch.Tensor:
    """``sqrt(max(|STFT|^2, eps))`` of ``x`` at one resolution (Hann window, ``center=True``, reflect padding).

    Parameters
    ----------
    x : Tensor [batch, samples]
        Waveforms, longer than ``fft_size / 2`` (inputs are trusted: :func:`mrstft` validates).
    fft_size, hop, win : int
        FFT size, hop and window length in samples (``win <= fft_size``).
    eps : float, default 1e-8
        Power floor, so the log and the square root stay finite.

    Returns
    -------
    Tensor [batch, fft_size // 2 + 1, frames]
        Magnitudes, in the dtype of ``x``; differentiable.
    """
    window = torch.hann_window(win, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, fft_size, hop, win, window, center=True, pad_mode="reflect", return_complex=True)
    return torch.sqrt(torch.clamp(spec.real ** 2 + spec.imag ** 2, min=eps))


def stft_distance(estimate_mag: torch.Tensor, reference_mag: torch.Tensor, w_sc: float = 1.0,
                  w_log_mag: float = 1.0) -> torch.Tensor:
    """Single-resolution STFT distance of two magnitude spectrograms, per item (auraloss' ``STFTLoss``).

    ``w_sc * ||Y - X||_F / ||Y||_F`` (spectral convergence, ``Y`` the reference)
    ``+ w_log_mag * mean |ln Y - ln X|`` (log-magnitude L1).

    Parameters
    ----------
    estimate_mag, reference_mag : Tensor [batch, bins, frames]
        Positive magnitudes (:func:`magnitude_spectrogram`).
    w_sc, w_log_mag : float
        Weights of the two terms.

    Returns
    -------
    Tensor [batch]
        The distance, unitless; differentiable (the training loss of the bundled vocoder uses it).
    """
    x, y = estimate_mag.flatten(1), reference_mag.flatten(1)
    sc = torch.linalg.vector_norm(y - x, dim=-1) / torch.linalg.vector_norm(y, dim=-1)
    return w_sc * sc + w_log_mag * (torch.log(y) - torch.log(x)).abs().mean(dim=-1)


def mrstft(estimate: ArrayLike, reference: ArrayLike, fft_sizes: Sequence[int] = MRSTFT_FFT_SIZES,
           hop_sizes: Sequence[int] = MRSTFT_HOP_SIZES, win_lengths: Sequence[int] = MRSTFT_WIN_LENGTHS,
           w_sc: float = 1.0, w_log_mag: float = 1.0) -> torch.Tensor:
    """Multi-resolution STFT distance (Yamamoto et al. 2020), unitless.

    The mean over resolutions of :func:`stft_distance` between the :func:`magnitude_spectrogram`
    of the two signals. Lower is better; range ``[0, inf)``, 0 for a copy. Phase-free and
    level-sensitive. The defaults are ``auraloss.freq.MultiResolutionSTFTLoss()``'s: FFT
    1024/2048/512, hop 120/240/50, window 600/1200/240 (the Parallel WaveGAN settings), and for a
    batch of one this equals that loss.

    Parameters
    ----------
    estimate, reference : Tensor or ndarray [batch, samples] or [samples]
        16 kHz waveforms of the same length, longer than ``max(fft_sizes) / 2``.
    fft_sizes, hop_sizes, win_lengths : sequences of int
        One entry per resolution (``win <= fft``).
    w_sc, w_log_mag : float
        Weights of the spectral convergence and log-magnitude terms.

    Returns
    -------
    Tensor float64 [batch]
        MR-STFT distance.

    Raises
    ------
    ValueError
        Length mismatch, NaN/Inf samples, inconsistent resolutions, or a
        signal too short for the largest FFT's reflect padding.
    """
    # Implemented here rather than calling auraloss at runtime: auraloss reduces
    # over the batch (one scalar per batch) and we need one score per item.
    # tests/test_metrics.py checks this against auraloss on batches of one.
    if not (len(fft_sizes) == len(hop_sizes) == len(win_lengths)) or len(fft_sizes) == 0:
        raise InputError("fft_sizes, hop_sizes and win_lengths must be non-empty and of equal length")
    est, ref = _check_pair(estimate, reference, min_samples=max(fft_sizes) // 2 + 1)
    return _mrstft(est, ref, fft_sizes, hop_sizes, win_lengths, w_sc, w_log_mag)


def _mrstft(est: torch.Tensor, ref: torch.Tensor, fft_sizes: Sequence[int] = MRSTFT_FFT_SIZES,
            hop_sizes: Sequence[int] = MRSTFT_HOP_SIZES, win_lengths: Sequence[int] = MRSTFT_WIN_LENGTHS,
            w_sc: float = 1.0, w_log_mag: float = 1.0) -> torch.Tensor:
    total = torch.zeros(est.shape[0], dtype=torch.float64, device=est.device)
    for resolution in zip(fft_sizes, hop_sizes, win_lengths):
        total = total + stft_distance(magnitude_spectrogram(est, *resolution),
                                      magnitude_spectrogram(ref, *resolution), w_sc, w_log_mag)
    return total / len(fft_sizes)


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A named metric with its unit and direction.

    Attributes
    ----------
    name : str
        Registry key (``"snr"``).
    fn : callable
        ``fn(estimate, reference, **options) -> Tensor float64 [batch]``.
    unit : str
        ``"dB"``, ``"nats"``, ``""`` (unitless) or ``"FS^2"`` (full scale squared).
    higher_is_better : bool
        Direction of improvement.
    domain : {"waveform", "spectral"}
        ``waveform`` metrics take ``align``/``max_lag``/``match_gain``;
        ``spectral`` ones are phase-free and take no such options.
    description : str
        One line.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    unit: str
    higher_is_better: bool
    domain: Literal["waveform", "spectral"]
    description: str

    def __call__(self, estimate: ArrayLike, reference: ArrayLike, **options) -> torch.Tensor:
        return self.fn(estimate, reference, **options)


METRICS: Dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("snr", snr, "dB", True, "waveform", "waveform SNR, 10 log10(|ref|^2 / |ref - est|^2), capped at 300 dB"),
        Metric("correlation", correlation, "", True, "waveform", "Pearson correlation of the samples, [-1, 1]"),
        Metric("mse", mse, "FS^2", False, "waveform", "mean squared sample error"),
        Metric("si_sdr", si_sdr, "dB", True, "waveform", "scale-invariant SDR, capped at +-300 dB"),
        Metric("mel_l1", mel_l1, "nats", False, "spectral", "mean |difference| of the audioldm2 log-mels"),
        Metric("mel_snr", mel_snr, "dB", True, "spectral", "SNR of the audioldm2 log-mel, measured from the ln(1e-5) floor"),
        Metric("lsd", lsd, "dB", False, "spectral", "log-spectral distance of the 1024/160 power STFT"),
        Metric("mrstft", mrstft, "", False, "spectral", "multi-resolution STFT distance (auraloss defaults)"),
    )
}
#: each built-in metric's kernel on a validated float64 pair of waveforms, and the fewest samples it needs:
#: :func:`compute` validates the pair once and calls these (a metric added to :data:`METRICS` without one is
#: called as it is, and checks its inputs itself)
_KERNELS: Dict[str, Tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], int]] = {
    "snr": (_snr, 1), "correlation": (_correlation, 2), "mse": (_mse, 1), "si_sdr": (_si_sdr, 1),
    "mel_l1": (lambda est, ref: _mel_l1(*_audioldm2_mels(est, ref)), frontend.N_FFT),
    "mel_snr": (lambda est, ref: _mel_snr(*_audioldm2_mels(est, ref)), frontend.N_FFT),
    "lsd": (_lsd, frontend.N_FFT), "mrstft": (_mrstft, max(MRSTFT_FFT_SIZES) // 2 + 1),
}


def get_metric(name: str) -> Metric:
    """Return the registered metric called ``name`` (ValueError listing the known ones)."""
    try:
        return METRICS[name]
    except KeyError:
        raise InputError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def compute(estimate: ArrayLike, reference: ArrayLike, names: Optional[Iterable[str]] = None, *,
            align: bool = True, match_gain: bool = True, max_lag: int = MAX_LAG) -> Dict[str, torch.Tensor]:
    """Evaluate several metrics on one batch.

    The pair is validated once; waveform metrics see the estimate aligned
    and/or gain-matched (done once, shared), spectral metrics see it as given.

    Parameters
    ----------
    estimate, reference : Tensor or ndarray [batch, samples] or [samples]
        16 kHz waveforms of the same length.
    names : iterable of str, optional
        Metric names (default: all of :data:`METRICS`, in registry order).
    align, match_gain : bool, default True
        Alignment (``|lag| <= max_lag``) and least-squares gain for the
        waveform metrics; ignored by spectral ones.
    max_lag : int, default 1600

    Returns
    -------
    dict of str -> Tensor float64 [batch]
    """
    metrics = [get_metric(n) for n in (list(METRICS) if names is None else names)]
    kernels = {m.name: _KERNELS.get(m.name, (m.fn, 1)) for m in metrics}
    est, ref = _check_pair(estimate, reference, max([need for _, need in kernels.values()], default=1))
    wave_est = None
    out: Dict[str, torch.Tensor] = {}
    for m in metrics:
        kernel = kernels[m.name][0]
        if m.domain == "waveform":
            if wave_est is None:
                wave_est, _ = _adjust(est, ref, align, max_lag, match_gain)
            out[m.name] = kernel(wave_est, ref)
        else:
            out[m.name] = kernel(est, ref)
    return out


def is_better(name: str, value, threshold) -> Union[bool, torch.Tensor]:
    """True where ``value`` is at least as good as ``threshold`` for metric ``name``.

    ``value >= threshold`` if the metric is higher-is-better, else
    ``value <= threshold``. NaN is never better. Returns a ``bool`` for scalar
    inputs, a bool tensor (elementwise) for tensors.

    Examples
    --------
    >>> is_better("snr", 25.0, 20.0), is_better("lsd", 3.0, 2.0)
    (True, False)
    """
    metric = get_metric(name)
    if isinstance(value, torch.Tensor) or isinstance(threshold, torch.Tensor):
        v = torch.as_tensor(value)
        return v >= threshold if metric.higher_is_better else v <= threshold
    v, t = float(value), float(threshold)
    return v >= t if metric.higher_is_better else v <= t
