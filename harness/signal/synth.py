"""Audio made by code: the training data of the bundled model and the shipped reference clips.

Two sources, both seeded and reproducible:

* speech from ``espeak-ng`` (Debian package) in many languages, voice variants, rates and pitches;
* music-like and effect-like signals synthesised in NumPy: harmonic tones and chords with
  envelopes and vibrato, chirps, filtered noise bursts, percussive hits, and mixtures.

Debian's sample-sound packages and General MIDI soundfonts are deliberately *not* used here:
they are kept for independent evaluation.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Iterator, List, Tuple

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from harness.signal.audio import SAMPLE_RATE as SR

#: languages and voice variants for the training speech; HELDOUT_* are never trained on.
TRAIN_LANGS = ["en", "en-us", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "cs", "ru", "fi", "hu", "tr", "id"]
TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4", "klatt", "croak", ""]
HELDOUT_LANGS = ["en-gb-x-rp", "da", "ro", "el", "hi", "vi"]
HELDOUT_VARIANTS = ["m5", "m7", "f5", "klatt3", "whisper"]

_SYLLABLES = ["ka", "lo", "mi", "ne", "ta", "ru", "so", "pe", "di", "ga", "fo", "ve", "zu", "bal", "tor",
              "men", "sil", "dra", "kon", "pli", "ster", "wan", "rix", "ol", "ab", "que", "ish", "ump"]
_WORDS = ["the", "sound", "of", "a", "quiet", "morning", "river", "machine", "voice", "over", "under",
          "seven", "bright", "yellow", "window", "table", "running", "water", "music", "station", "number",
          "forty", "three", "people", "walking", "slowly", "through", "garden", "tomorrow", "never", "again"]


def have_espeak() -> bool:
    """True when the ``espeak-ng`` binary is on PATH."""
    return shutil.which("espeak-ng") is not None


def _sentence(rng: np.random.Generator) -> str:
    words = []
    for _ in range(rng.integers(4, 12)):
        if rng.random() < 0.6:
            words.append(_WORDS[rng.integers(len(_WORDS))])
        else:
            words.append("".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), rng.integers(1, 4))))
    return " ".join(words)


def espeak(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """Speak ``text`` with espeak-ng; float32 mono at 16 kHz.

    Parameters
    ----------
    voice : str  espeak voice such as ``"en+f3"``
    rate : int   words per minute (80..450)
    pitch : int  0..99
    """
    import librosa

    if not have_espeak():
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", path, text],
                       check=True, capture_output=True, timeout=60)
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio[:, 0]
    if sr != SR:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=SR, res_type="soxr_hq")
    return audio.astype(np.float32)


def speech_clip(rng: np.random.Generator, heldout: bool = False) -> Tuple[np.ndarray, str]:
    """One espeak-ng utterance with a random language, variant, rate and pitch."""
    langs, variants = (HELDOUT_LANGS, HELDOUT_VARIANTS) if heldout else (TRAIN_LANGS, TRAIN_VARIANTS)
    lang = langs[rng.integers(len(langs))]
    variant = variants[rng.integers(len(variants))]
    voice = f"{lang}+{variant}" if variant else lang
    rate, pitch = int(rng.integers(110, 260)), int(rng.integers(15, 90))
    return espeak(_sentence(rng), voice, rate, pitch), f"speech:{voice}:r{rate}:p{pitch}"


# ---------------------------------------------------------------------------
# synthesised signals
# ---------------------------------------------------------------------------


def _envelope(n: int, rng: np.random.Generator) -> np.ndarray:
    a, d = int(rng.uniform(0.002, 0.15) * SR), int(rng.uniform(0.05, 0.4) * SR)
    s, r = rng.uniform(0.2, 0.9), int(rng.uniform(0.05, 0.5) * SR)
    env = np.full(n, s)
    env[: min(a, n)] = np.linspace(0, 1, a)[: min(a, n)]
    if a < n:
        k = min(d, n - a)
        env[a:a + k] = np.linspace(1, s, d)[:k]
    if r < n:
        env[n - r:] *= np.linspace(1, 0, r)
    return env


def harmonic_tone(rng: np.random.Generator, n: int, f0: float | None = None) -> np.ndarray:
    """A pitched note: up to 20 harmonics with a random spectral tilt, vibrato and ADSR envelope."""
    f0 = f0 or 55.0 * 2 ** rng.uniform(0, 4.5)
    t = np.arange(n) / SR
    vib = 1 + rng.uniform(0, 0.01) * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
    phase = 2 * np.pi * f0 * np.cumsum(vib) / SR
    tilt = rng.uniform(0.5, 2.0)
    out = np.zeros(n)
    for h in range(1, 21):
        if f0 * h > 7800:
            break
        out += (h ** -tilt) * np.sin(h * phase + rng.uniform(0, 2 * np.pi)) * (1 if rng.random() > 0.2 else 0)
    return out * _envelope(n, rng)


def chord(rng: np.random.Generator, n: int) -> np.ndarray:
    """Three or four harmonic notes of a major/minor/seventh chord."""
    root = 65.0 * 2 ** rng.uniform(0, 3)
    steps = [[0, 4, 7], [0, 3, 7], [0, 4, 7, 10], [0, 3, 7, 10], [0, 5, 7, 12]][rng.integers(5)]
    return sum(harmonic_tone(rng, n, root * 2 ** (s / 12)) for s in steps) / len(steps)


def melody(rng: np.random.Generator, n: int) -> np.ndarray:
    """A sequence of notes on a pentatonic scale."""
    out = np.zeros(n)
    pos, base = 0, 110.0 * 2 ** rng.uniform(0, 2)
    while pos < n:
        ln = int(rng.uniform(0.1, 0.6) * SR)
        k = min(ln, n - pos)
        out[pos:pos + k] += harmonic_tone(rng, ln, base * 2 ** ([0, 2, 4, 7, 9, 12][rng.integers(6)] / 12))[:k]
        pos += ln
    return out


def chirp(rng: np.random.Generator, n: int) -> np.ndarray:
    """A linear or exponential sine sweep between random frequencies."""
    f1, f2 = 2 ** rng.uniform(5, 12.9, size=2)
    t = np.arange(n) / SR
    dur = n / SR
    if rng.random() < 0.5:
        phase = 2 * np.pi * (f1 * t + (f2 - f1) * t ** 2 / (2 * dur))
    else:
        k = (f2 / f1) ** (1 / dur)
        phase = 2 * np.pi * f1 * (k ** t - 1) / np.log(k) if abs(np.log(k)) > 1e-6 else 2 * np.pi * f1 * t
    return np.sin(phase) * _envelope(n, rng)


def noise_burst(rng: np.random.Generator, n: int) -> np.ndarray:
    """Band-passed white noise with an envelope (wind, hiss, rain-like textures)."""
    from scipy.signal import butter, sosfilt

    lo = 2 ** rng.uniform(5.5, 12)
    hi = min(lo * 2 ** rng.uniform(0.5, 4), 7900)
    sos = butter(4, [lo, hi], btype="band", fs=SR, output="sos")
    return sosfilt(sos, rng.standard_normal(n)) * _envelope(n, rng)


def percussion(rng: np.random.Generator, n: int) -> np.ndarray:
    """A train of percussive hits: kick (falling sine), snare/hat (decaying noise), clicks."""
    out = np.zeros(n)
    t_hit = 0
    while t_hit < n:
        ln = min(int(rng.uniform(0.05, 0.5) * SR), n - t_hit)
        t = np.arange(ln) / SR
        kind = rng.integers(3)
        if kind == 0:
            f = 50 + 120 * np.exp(-t * rng.uniform(20, 60))
            hit = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t * rng.uniform(8, 25))
        elif kind == 1:
            hit = rng.standard_normal(ln) * np.exp(-t * rng.uniform(15, 60))
        else:
            hit = np.zeros(ln)
            hit[: min(40, ln)] = rng.standard_normal(min(40, ln))
        out[t_hit:t_hit + ln] += hit * rng.uniform(0.3, 1)
        t_hit += int(rng.uniform(0.1, 0.5) * SR)
    return out


SYNTH_KINDS = {"tone": harmonic_tone, "chord": chord, "melody": melody, "chirp": chirp,
               "noise": noise_burst, "percussion": percussion}


def synth_clip(rng: np.random.Generator, seconds: float) -> Tuple[np.ndarray, str]:
    """A music- or effect-like clip: one kind, or a mix of two, with random gain and optional silence."""
    n = int(seconds * SR)
    names = list(SYNTH_KINDS)
    picked = [names[i] for i in rng.choice(len(names), size=rng.integers(1, 3), replace=False)]
    x = sum(SYNTH_KINDS[k](rng, n) * rng.uniform(0.3, 1.0) for k in picked)
    x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.05, 0.9)
    return x.astype(np.float32), "synth:" + "+".join(picked)


def make_corpus(n_speech: int, n_synth: int, seed: int, heldout: bool = False,
                seconds: Tuple[float, float] = (1.6, 4.0), progress: bool = True) -> List[Tuple[np.ndarray, str]]:
    """Build a list of ``(waveform float32 [samples], description)`` clips at 16 kHz.

    Speech needs espeak-ng; without it the corpus is synthesised signals only (a warning is printed).
    """
    rng = np.random.default_rng(seed)
    clips: List[Tuple[np.ndarray, str]] = []
    if n_speech and not have_espeak():
        print("warning: espeak-ng not found; the corpus has no speech")
        n_speech = 0
    for i in tqdm(range(n_speech + n_synth), desc="making audio", disable=not progress):
        if i < n_speech:
            x, desc = speech_clip(rng, heldout)
            if len(x) < int(seconds[0] * SR):
                x = np.pad(x, (0, int(seconds[0] * SR) - len(x)))
        else:
            x, desc = synth_clip(rng, rng.uniform(*seconds))
        clips.append((x, desc))
    return clips


#: more espeak-ng languages for the vocoder's adversarial stage (none of :data:`HELDOUT_LANGS`)
EXTRA_TRAIN_LANGS = ["af", "bg", "ca", "cy", "eu", "hr", "is", "lv", "lt", "sk", "sl", "sq", "sw", "ta", "uk",
                     "ms", "ka", "hy", "ja", "cmn", "ar", "he", "ko", "th", "fa", "bn", "pt-br", "es-419"]


def vocoder_clip(rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    """One clip of the vocoder's adversarial-stage corpus, float32 at 16 kHz, 1.2-4 s.

    Speech in :data:`TRAIN_LANGS` plus :data:`EXTRA_TRAIN_LANGS`, music/effects, coloured noise,
    runs of transients separated by silence, and speech over a noise or music bed; then silent gaps
    and level steps, so the vocoder also learns quiet passages and true silence.
    """
    n = int(rng.uniform(1.2, 4.0) * SR)
    kind = ["speech", "speech", "synth", "noise", "transients", "mix"][rng.integers(6)]
    if kind in ("speech", "mix") and have_espeak():
        langs = TRAIN_LANGS + EXTRA_TRAIN_LANGS
        lang, variant = langs[rng.integers(len(langs))], TRAIN_VARIANTS[rng.integers(len(TRAIN_VARIANTS))]
        voice = f"{lang}+{variant}" if variant else lang
        x = espeak(_sentence(rng), voice, int(rng.integers(90, 320)), int(rng.integers(5, 99))).astype(np.float64)
        desc = f"{kind}:{voice}"
        if kind == "mix":
            bed = coloured_noise(rng, len(x), rng.uniform(0, 2)) if rng.random() < 0.5 else \
                synth_clip(rng, len(x) / SR)[0][: len(x)]
            bed = np.pad(bed, (0, len(x) - len(bed)))
            x = x / (np.abs(x).max() + 1e-9) + bed / (np.abs(bed).max() + 1e-9) * 10 ** (-rng.uniform(6, 30) / 20)
    elif kind == "noise":
        x, desc = coloured_noise(rng, n, rng.uniform(0, 2)) * _envelope(n, rng), "noise"
    elif kind == "transients":
        x, desc = np.zeros(n), "transients"
        for start in np.sort(rng.integers(0, n, size=rng.integers(2, 7))):
            ln = min(int(rng.uniform(0.05, 0.5) * SR), n - start)
            x[start:start + ln] += transient(rng, ln) * rng.uniform(0.2, 1)
    else:
        x, desc = synth_clip(rng, n / SR)
        x = x.astype(np.float64)
    for _ in range(rng.integers(0, 3)):  # silent gaps and level steps
        a = int(rng.integers(0, len(x)))
        b = min(len(x), a + int(rng.uniform(0.05, 0.6) * SR))
        x[a:b] *= 0.0 if rng.random() < 0.5 else 10 ** (-rng.uniform(10, 40) / 20)
    if not np.abs(x).max() > 0:
        x[: SR // 10] = transient(rng, SR // 10)
    return x.astype(np.float32), desc


def vocoder_corpus(n: int, seed: int, progress: bool = True) -> List[Tuple[np.ndarray, str]]:
    """``n`` clips of :func:`vocoder_clip`, seeded: ``[(float32 [samples], description)]``."""
    rng = np.random.default_rng(seed)
    return [vocoder_clip(rng) for _ in tqdm(range(n), desc="making audio", disable=not progress)]


def iter_reference_clips() -> Iterator[Tuple[str, np.ndarray]]:
    """The shipped reference clips (speech, music, effects, noise), deterministic, 2.56 s each."""
    n = 256 * 160
    rng = np.random.default_rng(20261125)
    if have_espeak():
        x = espeak("the quick brown fox jumps over the lazy dog near the river bank", "en-gb-x-rp+m7", 165, 45)
        yield "speech", np.pad(x, (0, max(0, n - len(x))))[:n]
    yield "music", (0.6 * melody(rng, n) + 0.4 * chord(rng, n)).astype(np.float32) * 0.3
    yield "effects", (0.7 * percussion(rng, n) + 0.3 * chirp(rng, n)).astype(np.float32) * 0.3
    yield "noise", (noise_burst(rng, n) * 0.2 + 0.02 * rng.standard_normal(n)).astype(np.float32)


# ---------------------------------------------------------------------------
# the judging sets: where the relative margins are calibrated, and where they are validated
# ---------------------------------------------------------------------------

#: seeds of the two disjoint judging sets (different voices and languages for speech, too)
JUDGING_SEEDS = {"calibration": 101, "validation": 202, "test": 303, "holdout": 404}


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with a ``1 / f ** exponent`` power spectrum (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[1:] /= f[1:] ** (exponent / 2)
    spec[0] = 0
    return np.fft.irfft(spec, n)


def transient(rng: np.random.Generator, n: int) -> np.ndarray:
    """A short UI-like sound: a bell (inharmonic partials, exponential decay), a click, or a blip."""
    t = np.arange(n) / SR
    kind = rng.integers(3)
    if kind == 0:
        f0 = 2 ** rng.uniform(9, 11.5)
        ratios = [1.0, 2.76, 5.40, 8.93][: rng.integers(2, 5)]
        return sum(np.sin(2 * np.pi * f0 * r * t) * np.exp(-t * rng.uniform(8, 30) * r) for r in ratios)
    if kind == 1:
        out = np.zeros(n)
        for start in rng.integers(0, max(1, n - 80), size=rng.integers(1, 4)):
            out[start:start + 80] += rng.standard_normal(min(80, n - start)) * np.exp(-np.arange(min(80, n - start)) / 15)
        return out
    f = 2 ** rng.uniform(8, 12)
    return np.sin(2 * np.pi * f * t) * np.exp(-t * rng.uniform(5, 40)) * (t < n / SR * rng.uniform(0.3, 1))


def judging_set(split: str, progress: bool = False) -> List[Tuple[str, np.ndarray]]:
    """A broad, deterministic set of ``(name, float32 [samples] at 16 kHz)`` clips for relative judging.

    ``calibration`` and ``validation`` share no clip: other seeds, and speech in other languages and
    voices (:data:`TRAIN_LANGS` vs :data:`HELDOUT_LANGS`). ``test`` is a third split (held-out voices,
    another seed) for a check after anything was tuned by looking at ``validation``; ``holdout`` a fourth, for
    the check after a policy was chosen by looking at ``test``. Each holds speech (espeak-ng, skipped
    without it), two 10 s clips (speech and a music/effect mix), music- and effect-like clips of
    1.6-4 s, white/pink/brown noise, and short transients of 0.1-0.5 s (bells, clicks, blips; 40 in
    ``calibration``, 20 in the others): 69 or 49 clips, about 100 s of audio. Levels vary from -26 to -1 dBFS.
    """
    if split not in JUDGING_SEEDS:
        raise ValueError(f"unknown judging split {split!r}; known: {', '.join(JUDGING_SEEDS)}")
    rng = np.random.default_rng(JUDGING_SEEDS[split])
    heldout = split != "calibration"
    out: List[Tuple[str, np.ndarray]] = []
    transients = 40 if split == "calibration" else 20  # the tails of every relative figure are here
    steps = (13 if have_espeak() else 0) + 16 + transients
    bar = tqdm(total=steps, desc=f"{split} clips", disable=not progress)

    def add(name, x):
        x = np.asarray(x, dtype=np.float64)
        x = x / (np.abs(x).max() + 1e-12) * 10 ** (rng.uniform(-26, -1) / 20)
        out.append((f"{len(out):02d}-{name}", x.astype(np.float32)))
        bar.update(1)

    if have_espeak():
        for _ in range(12):
            x, desc = speech_clip(rng, heldout)
            add(desc.replace(":", "-"), x)
        long = np.concatenate([speech_clip(rng, heldout)[0] for _ in range(4)])
        add("speech-10s", np.pad(long, (0, max(0, 10 * SR - len(long))))[: 10 * SR])
    for _ in range(12):
        x, desc = synth_clip(rng, rng.uniform(1.6, 4.0))
        add(desc.replace(":", "-").replace("+", "-"), x)
    x, desc = synth_clip(rng, 10.0)
    add(desc.replace(":", "-").replace("+", "-") + "-10s", x)
    for exponent, colour in ((0, "white"), (1, "pink"), (2, "brown")):
        add(f"noise-{colour}", coloured_noise(rng, int(rng.uniform(1.0, 3.0) * SR), exponent))
    for _ in range(transients):
        n = int(rng.uniform(0.1, 0.5) * SR)
        add(f"transient-{n / SR:.2f}s", transient(rng, n))
    bar.close()
    return out
