"""Tests of harness/signal/audio.py: loading, validation, padding, writing.

All inputs are generated in ``tmp_path`` with soundfile; the file runs in a few seconds
on one core.
"""
from __future__ import annotations

import os
import pickle
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import AudioError
from harness.signal import audio
from harness.signal.audio import (
    BLOCK, HOP, MIN_SAMPLES, SAMPLE_RATE, AudioWarning, frames_for, load_audio, load_info,
    pad_or_crop, to_tensor, valid_audio, write_audio,
)


def sine(freq=1000.0, sr=SAMPLE_RATE, seconds=1.0, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_freq(x, sr=SAMPLE_RATE):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def assert_error(excinfo, path, *fragments):
    """Single-line message naming the file and every expected fragment."""
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert os.path.basename(str(path)) in msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.path == str(path)


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ext, subtype, atol",
    [("wav", "FLOAT", 0.0), ("wav", "PCM_16", 1.0 / 32768), ("flac", "PCM_24", 1.0 / 2 ** 23), ("ogg", "VORBIS", None)],
)
def test_round_trip(tmp_path, ext, subtype, atol):
    x = sine(440.0)
    path = tmp_path / f"clip.{ext}"
    sf.write(path, x, SAMPLE_RATE, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == len(x)
    if atol is None:  # lossy: same pitch and level, not the same samples
        assert abs(peak_freq(y) - 440.0) < 2.0
        assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=0.05)
    else:
        np.testing.assert_allclose(y, x, atol=atol)


@pytest.mark.parametrize("name", ["out.wav", "sub/dir/out.flac"])
def test_write_audio_round_trip(tmp_path, name):
    x = sine(1000.0, amp=0.9)
    path = write_audio(tmp_path / name, x)
    info = sf.info(path)
    assert info.samplerate == SAMPLE_RATE and info.channels == 1
    assert info.subtype == ("PCM_24" if name.endswith(".flac") else "FLOAT")
    np.testing.assert_allclose(load_audio(path), x, atol=0 if name.endswith(".wav") else 2.0 ** -22)


def test_write_audio_accepts_batch_of_one_tensor(tmp_path):
    y = write_audio(tmp_path / "t.wav", to_tensor(sine()))
    assert sf.info(y).frames == SAMPLE_RATE


def test_write_audio_refuses_nan_and_stereo(tmp_path):
    x = sine()
    x[10] = np.nan
    with pytest.raises(AudioError) as ei:
        write_audio(tmp_path / "nan.wav", x)
    assert_error(ei, tmp_path / "nan.wav", "1 NaN/Inf samples", "index 10")
    assert not (tmp_path / "nan.wav").exists()
    with pytest.raises(AudioError, match="mono"):
        write_audio(tmp_path / "st.wav", np.zeros((2, 2048), np.float32))


def test_flac_write_clips_instead_of_wrapping(tmp_path):
    x = sine(amp=1.5)
    y = load_audio(write_audio(tmp_path / "hot.flac", x))
    assert np.max(np.abs(y)) <= 1.0
    assert np.all(np.sign(y[np.abs(x) > 1.0]) == np.sign(x[np.abs(x) > 1.0]))


# ---------------------------------------------------------------------------
# resampling and channels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [44100, 8000])
def test_resampled_to_16k(tmp_path, rate):
    seconds = 1.5
    path = tmp_path / f"sine_{rate}.wav"
    sf.write(path, sine(1000.0, sr=rate, seconds=seconds), rate, subtype="FLOAT")
    y = load_audio(path)
    assert abs(len(y) - int(seconds * SAMPLE_RATE)) <= 2
    assert abs(peak_freq(y) - 1000.0) <= 2.0
    assert np.max(np.abs(y)) == pytest.approx(0.5, abs=0.02)


def test_sr_none_keeps_native_rate(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(path, sine(sr=22050), 22050)
    assert len(load_audio(path, sr=None)) == 22050


def test_stereo_channel_policy(tmp_path):
    left, right = sine(1000.0, amp=0.6), sine(3000.0, amp=0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path), left)
    np.testing.assert_array_equal(load_audio(path, channel="first"), left)
    np.testing.assert_allclose(load_audio(path, channel="mean"), (left + right) / 2, atol=1e-7)


def test_unknown_channel_policy_lists_choices(tmp_path):
    with pytest.raises(ValueError, match="first, mean"):
        load_audio(tmp_path / "whatever.wav", channel="left")


# ---------------------------------------------------------------------------
# bad files: one clear line each
# ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "file not found")


def test_directory(tmp_path):
    path = tmp_path / "folder.wav"
    path.mkdir()
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "is a directory")


def test_text_file_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio, just some text\n" * 20)
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "not a readable audio file", "Format not recognised")
    assert ei.value.hint


def _wav_bytes(tmp_path, x, rate=SAMPLE_RATE, subtype="PCM_16"):
    src = tmp_path / "_src.wav"
    sf.write(src, x, rate, subtype=subtype)
    return src.read_bytes()


@pytest.mark.parametrize("keep", [0.5, 0.73])
def test_truncated_wav_reads_what_is_there_and_warns(tmp_path, keep):
    # Cut bytes off the end: the header still claims the full length. libsndfile
    # clamps the frame count to the data present (a partial last frame is dropped).
    x = sine(1000.0, seconds=1.0)
    data = _wav_bytes(tmp_path, x)
    cut = int(len(data) * keep) | 1  # odd: cut in the middle of a 16-bit sample
    path = tmp_path / "cut.wav"
    path.write_bytes(data[:cut])
    with pytest.warns(AudioWarning, match="truncated WAV"):
        y = load_audio(path)
    n = (cut - 44) // 2
    assert len(y) == n
    np.testing.assert_allclose(y, x[:n], atol=1.0 / 32768)
    assert load_info(path)["truncated"] is True
    assert load_info(path)["frames"] == n


def test_header_claims_more_data_than_present(tmp_path):
    # Same file length, but the RIFF/data sizes are patched to twice the data.
    x = sine(1000.0, seconds=0.5)
    data = bytearray(_wav_bytes(tmp_path, x))
    assert data[36:40] == b"data"
    size = struct.unpack("<I", data[40:44])[0]
    data[40:44] = struct.pack("<I", 2 * size)
    data[4:8] = struct.pack("<I", len(data) - 8 + size)
    path = tmp_path / "liar.wav"
    path.write_bytes(bytes(data))
    with pytest.warns(AudioWarning):
        y = load_audio(path)
    assert len(y) == len(x)


def test_intact_wav_does_not_warn(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, sine(), SAMPLE_RATE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio(path)
    assert load_info(path)["truncated"] is False


def test_truncated_to_header_is_empty(tmp_path):
    path = tmp_path / "header_only.wav"
    path.write_bytes(_wav_bytes(tmp_path, sine())[:44])
    with pytest.raises(AudioError) as ei, warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioWarning)
        load_audio(path)
    assert_error(ei, path, "empty", "0 audio frames")


def test_truncated_before_data_chunk(tmp_path):
    path = tmp_path / "stub.wav"
    path.write_bytes(_wav_bytes(tmp_path, sine())[:30])
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "not a readable audio file", "data")


def test_truncated_flac_is_a_clear_error(tmp_path):
    # libsndfile opens a cut FLAC fine, then fails while decoding ("lost sync").
    src = tmp_path / "_src.flac"
    sf.write(src, sine(seconds=1.0), SAMPLE_RATE)
    path = tmp_path / "cut.flac"
    path.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "not a readable audio file")


def test_empty_wav(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "empty", "0 audio frames")


def test_nan_samples(tmp_path):
    x = sine()
    x[[1234, 5000, 6000]] = [np.nan, np.inf, np.nan]
    path = tmp_path / "nan.wav"
    sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "3 NaN/Inf samples", "first at index 1234")
    assert load_info(path)["nonfinite"] == 3


def test_nan_reported_at_file_index_before_resampling(tmp_path):
    x = sine(sr=44100)
    x[4410] = np.nan
    path = tmp_path / "nan44.wav"
    sf.write(path, x, 44100, subtype="FLOAT")
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "1 NaN/Inf samples", "index 4410")


def test_all_zero(tmp_path):
    path = tmp_path / "zeros.wav"
    sf.write(path, np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "silent", "-inf dBFS", "-100.0 dBFS")


def test_nearly_silent_gives_peak_in_dbfs(tmp_path):
    path = tmp_path / "hiss.wav"
    sf.write(path, sine(amp=1e-6), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "silent", "-120.0 dBFS")


def test_too_short(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, sine(seconds=500 / SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "too short", "500 samples", "31.2 ms", f"minimum is {MIN_SAMPLES} samples")


def test_absurd_sample_rate(tmp_path):
    path = tmp_path / "slow.wav"
    sf.write(path, sine(sr=1000, seconds=2.0), 1000)
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    assert_error(ei, path, "absurd sample rate 1000 Hz")
    assert load_info(path)["sample_rate"] == 1000  # diagnostics still work


def test_error_is_single_line_and_picklable():
    err = AudioError("a/b.wav", "bad\nthing", "do\nthis")
    assert str(err) == "a/b.wav: bad thing (do this)"
    assert str(AudioError(None, "oops")) == "oops"
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.reason, back.hint) == (err.path, err.reason, err.hint)


# ---------------------------------------------------------------------------
# valid_audio on arrays
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape, pick", [((2, 4000), "x[0]"), ((4000, 2), "x[:, 0]")])
def test_stereo_array_says_pick_a_channel(shape, pick):
    with pytest.raises(AudioError) as ei:
        valid_audio(np.ones(shape, np.float32) * 0.1, name="arr")
    msg = str(ei.value)
    assert msg.startswith("arr: ") and "pick a channel" in msg and pick in msg and str(shape) in msg


def test_integer_samples_rejected_with_scale_hint():
    with pytest.raises(AudioError, match="32768"):
        valid_audio((sine() * 30000).astype(np.int16))


def test_valid_audio_returns_float32():
    y = valid_audio(sine().astype(np.float64))
    assert y.dtype == np.float32


def test_valid_audio_on_a_batch_names_its_role_and_items():
    import torch

    from harness.errors import InputError

    x = np.stack([sine(), np.zeros(SAMPLE_RATE, np.float32)])
    out = valid_audio(x, "estimate", batch=True, allow_silence=True)
    assert isinstance(out, torch.Tensor) and out.shape == (2, SAMPLE_RATE) and out.dtype == torch.float32
    assert valid_audio(torch.ones(2048, dtype=torch.int16), batch=True).dtype == torch.float32
    for bad, message in ((x, r"estimate is silent \(peak below -100.0 dBFS\) in batch items \[1\]"),
                         (np.zeros((2, 0)), r"estimate has 0 samples; at least 1 are needed"),
                         (x.astype(np.complex64), r"estimate must be real")):
        with pytest.raises(InputError, match=message) as ei:
            valid_audio(torch.as_tensor(bad), "estimate", batch=True, min_samples=1)
        assert not isinstance(ei.value, AudioError)  # an AudioError names a file; a batch has none


def test_write_audio_writes_any_length_and_silence(tmp_path):
    assert sf.info(write_audio(tmp_path / "s.wav", np.zeros(10, np.float32))).frames == 10


# ---------------------------------------------------------------------------
# load_info
# ---------------------------------------------------------------------------


def test_load_info_levels(tmp_path):
    x = sine(amp=0.5, seconds=1.0)
    x[:160] = 1.0  # 1% of samples at full scale
    path = tmp_path / "info.wav"
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 44100, subtype="PCM_24")
    info = load_info(path)
    assert info["sample_rate"] == 44100 and info["channels"] == 2 and info["frames"] == len(x)
    assert info["duration"] == pytest.approx(len(x) / 44100)
    assert (info["format"], info["subtype"]) == ("WAV", "PCM_24")
    assert info["peak_dbfs"] == pytest.approx(0.0, abs=0.01)
    assert info["clipped_fraction"] == pytest.approx(160 / (2 * len(x)))
    assert -12.0 < info["rms_dbfs"] < -6.0


# ---------------------------------------------------------------------------
# lengths
# ---------------------------------------------------------------------------


def test_frames_for_examples():
    assert BLOCK == 640 and HOP == 160
    assert frames_for(163840) == 1024  # AudioLDM2's 10.24 s clip
    assert frames_for(16000) == 100
    assert frames_for(16001) == 104
    assert frames_for(1, multiple=1) == 1
    assert frames_for(0) == 0
    with pytest.raises(ValueError):
        frames_for(100, multiple=0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 5000), batch=st.none() | st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_pad_or_crop_default_pads_to_block(n, batch, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) if batch is None else (batch, n)).astype(np.float32)
    y = pad_or_crop(x, normalize=False)
    assert y.shape[:-1] == x.shape[:-1] and y.dtype == x.dtype
    assert y.shape[-1] % BLOCK == 0 and y.shape[-1] >= n
    assert y.shape[-1] - n < BLOCK
    np.testing.assert_array_equal(y[..., :n], x)
    assert not np.any(y[..., n:])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), frames=st.integers(1, 40))
def test_pad_or_crop_to_frames(n, frames):
    x = np.arange(1, n + 1, dtype=np.float32)
    y = pad_or_crop(x, frames, normalize=False)
    assert y.shape == (frames * HOP,)
    m = min(n, frames * HOP)
    np.testing.assert_array_equal(y[:m], x[:m])
    assert not np.any(y[m:])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1100, 5000), frames=st.none() | st.integers(1, 40), seed=st.integers(0, 2 ** 16))
def test_pad_or_crop_normalises_before_padding(n, frames, seed):
    """AudioLDM2's order: the kept samples have mean 0 and peak 0.5; the padding stays exactly zero."""
    rng = np.random.default_rng(seed)
    x = (0.3 + 0.1 * rng.standard_normal(n)).astype(np.float32)  # a large DC: the order matters
    y = pad_or_crop(x, frames)
    m = min(n, len(y))
    assert abs(float(y[:m].astype(np.float64).mean())) < 1e-6
    assert abs(float(np.abs(y[:m]).max()) - 0.5) < 1e-6
    assert not np.any(y[m:])


def test_pad_or_crop_does_not_alias_input():
    x = np.ones(2000, np.float32)
    y = pad_or_crop(x, frames=5)
    y[:] = 0
    assert x.all()


def test_to_tensor_shapes():
    import torch

    t = to_tensor(sine().astype(np.float64))
    assert t.shape == (1, SAMPLE_RATE) and t.dtype == torch.float32
    assert to_tensor(np.zeros((3, 640))).shape == (3, 640)
    with pytest.raises(ValueError):
        to_tensor(np.zeros((1, 2, 3)))


def test_loaded_clip_feeds_the_frontend(tmp_path):
    from harness.signal.frontend import get_frontend

    path = tmp_path / "c.wav"
    sf.write(path, sine(seconds=1.01), SAMPLE_RATE)
    x = pad_or_crop(load_audio(path))
    mel = get_frontend("audioldm2")(to_tensor(x))
    assert mel.shape == (1, 1, len(x) // HOP, 64) and mel.shape[2] % audio.VAE_FACTOR == 0


def test_float_wav_bytes_are_reproducible(tmp_path):
    """Identical samples give identical bytes (no timestamped PEAK chunk), so golden hashes are stable."""
    import time

    x = np.sin(np.arange(4000) / 10).astype(np.float32) * 0.5
    a = write_audio(tmp_path / "a.wav", x)
    time.sleep(1.1)
    b = write_audio(tmp_path / "b.wav", x)
    assert open(a, "rb").read() == open(b, "rb").read()
    assert np.array_equal(load_audio(a), x)


def test_write_audio_refuses_a_batch_with_the_one_at_a_time_hint(tmp_path):
    with pytest.raises(AudioError, match=r"writes mono \[samples\], got shape \(3, 100\).*one channel / batch item"):
        write_audio(tmp_path / "x.wav", np.zeros((3, 100), np.float32))
    assert not (tmp_path / "x.wav").exists()
