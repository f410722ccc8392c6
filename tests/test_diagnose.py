"""`harness diagnose`, end to end through the CLI: culprit stages, mel statistics, bad input, the HTML report."""
import functools
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from harness.signal import audio, frontend
from harness.surfaces import cli
from harness.surfaces.diagnose.findings import check_mel_statistics
from harness.judging import report
from harness.model.chain import Chain

CLIPS = {Path(p).stem: p for p in report.default_files()}
MUSIC = CLIPS["music"]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module", autouse=True)
def cached_model():
    """Load the model once for the module: every CLI call below would otherwise reload it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Chain, "load", functools.lru_cache(maxsize=2)(Chain.load))
        yield


def run(capsys, *args):
    """``harness diagnose ARGS`` in-process -> (exit code, stdout, stderr)."""
    code = cli.main(["diagnose", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys, tmp_path, *args):
    code, out, err = run(capsys, *args, "--json", "--out", tmp_path / "rep")
    return code, json.loads(out), err


def seed_expression(x: np.ndarray) -> np.ndarray:
    """The original report's mel, exactly as written there: [64, frames]."""
    import librosa

    mel = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=1024, hop_length=160, n_mels=64)
    return librosa.power_to_db(mel, ref=np.max) / 20


# --- culprits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("option,stage,words", [
    (("--frontend", "seed-librosa-db"), "frontend", ["power_to_db(ref=max)/20", "never trained on"]),
    (("--vae", "no-decode-scale"), "vae", ["scaling factor", "'scaled'"]),
    (("--vocoder", "hifigan-transposed"), "vocoder", ["LayoutError", "transposed"]),
])
def test_broken_variant_is_pinned_on_its_stage(capsys, tmp_path, option, stage, words):
    code, reports, _ = run_json(capsys, tmp_path, MUSIC, *option)
    assert code == 1 and len(reports) == 1  # a usage mistake fails CI
    verdict = reports[0]["verdict"]
    assert verdict["stage"] == stage and verdict["kind"] == "usage", verdict["message"]
    for w in words:
        assert w in verdict["message"]


def test_text_tables_progress_and_input_checks(capsys, tmp_path):
    stereo = tmp_path / "stereo44k.wav"
    x = audio.load_audio(CLIPS["speech"])[:16000]
    import librosa

    sf.write(stereo, np.stack([librosa.resample(x, orig_sr=16000, target_sr=44100)] * 2, axis=1), 44100)
    code, out, err = run(capsys, MUSIC, stereo, "--out", tmp_path / "rep")
    assert code == 0
    # one verdict per file: a note where the bundled model's own stage is the weak one
    assert len(re.findall(r"^(?:verdict|note) \[", out, re.M)) == 2 and "Griffin-Lim (baseline)" in out and "full chain audioldm2-scaled-hifigan" in out
    assert "44100 Hz: resampled to 16 kHz" in out and "the first is kept" in out
    assert "diagnose" in err and "100%" in err  # the tqdm bar on a multi-file run
    assert (tmp_path / "rep" / "report.html").exists()


# --- mel statistics alone ------------------------------------------------------------------------


@pytest.mark.parametrize("clip", ["music", "speech"])
def test_statistics_flag_every_known_frontend_mistake(clip):
    wave = torch.from_numpy(audio.pad_or_crop(audio.load_audio(CLIPS[clip])))[None]
    flags = {}
    for fe in frontend.list_frontends():
        mel = fe(wave)[0, 0].numpy()
        flags[fe.name] = [f.code for f in check_mel_statistics(mel) if f.severity == "flag"]
    assert flags["audioldm2"] == [] and flags["audioldm2-tacotron"] == []
    assert flags["seed-librosa-db"] == ["power-to-db"]
    assert flags["log10-mel"] == ["log10"]
    assert "too-high" in flags["power-mel"] and "too-high" in flags["htk-mel"]


def test_npy_from_the_seed_expression_is_flagged_by_statistics(capsys, tmp_path):
    x = audio.load_audio(MUSIC)
    np.save(tmp_path / "seed.npy", seed_expression(x).T.astype(np.float32))       # [frames, 64]
    np.save(tmp_path / "seed_raw.npy", seed_expression(x).astype(np.float32))     # as written: [64, frames]
    code, reports, _ = run_json(capsys, tmp_path, tmp_path / "seed.npy", tmp_path / "seed_raw.npy")
    assert code == 1  # the front-end is blamed: a usage mistake
    for r in reports:
        codes = [f["code"] for f in r["checks"]["frontend"]["findings"]]
        assert "power-to-db" in codes and r["verdict"]["stage"] == "frontend"
        assert r["stages"]["vae"]["metrics"]["mel_l1"] > 0 and r["stages"]["vocoder"]["error"] is None
    assert "looks transposed" in reports[1]["verdict"]["message"]


# --- bad input -----------------------------------------------------------------------------------


def test_bad_files_give_one_line_each_and_keep_the_others(capsys, tmp_path):
    x = audio.load_audio(MUSIC)
    nan = x.copy()
    nan[100] = np.nan
    (tmp_path / "notaudio.wav").write_bytes(b"this is not audio")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", x[:500], 16000)
    sf.write(tmp_path / "oddrate.wav", x[:4000], 1000)
    np.save(tmp_path / "wrongshape.npy", np.zeros((10, 80), np.float32))
    (tmp_path / "fake.npy").write_bytes(b"not numpy")
    expected = {"notaudio.wav": "not a readable audio file", "empty.wav": "empty", "silent.wav": "silent",
                "nan.wav": "NaN/Inf", "short.wav": "too short", "oddrate.wav": "absurd sample rate 1000 Hz",
                "wrongshape.npy": "expected a log-mel [frames, 64]", "fake.npy": "not a .npy file",
                "missing.wav": "file not found"}
    files = [tmp_path / name for name in expected]
    code, reports, err = run_json(capsys, tmp_path, files[0], MUSIC, *files[1:])
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("harness: error: ")]
    assert len(lines) == len(expected)
    for name, reason in expected.items():
        assert any(name in ln and reason in ln for ln in lines), (name, lines)
    good = [r for r in reports if "error" not in r]
    assert [Path(r["file"]).name for r in good] == ["music.flac"] and good[0]["verdict"]["stage"]
    assert len(reports) == len(expected)  # missing.wav, a path that does not exist, is named on stderr only
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "music.flac" in page and "oddrate.wav" in page and "<audio" in page


# --- the HTML report in a real browser -----------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(capsys, tmp_path):
    code, _, _ = run(capsys, MUSIC, "--frontend", "seed-librosa-db", "--out", tmp_path / "rep")
    assert code == 1
    page = tmp_path / "rep" / "report.html"
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert len(re.findall(r"<img [^>]*src=\"data:image/webp;base64,", dom)) == 1
    # input, vocoder, Griffin-Lim, full chain
    assert len(re.findall(r"<audio [^>]*src=\"data:audio/ogg;base64,", dom)) == 4
    assert "power_to_db(ref=max)/20" in dom
    # the summary table comes first and links to the file's section
    summary = dom.index("class=\"summary\"")
    assert summary < dom.index("<h2") and "href=\"#file-0\"" in dom and "id=\"file-0\"" in dom
    assert page.stat().st_size < 400_000  # WebP + Ogg Vorbis: a 2.56 s file is a few hundred kB
    shot = tmp_path / "shot.png"
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1400,2000", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_exit_codes_for_ci(capsys, tmp_path):
    """0: nothing a user can fix; 1: a usage mistake (or, under --strict, a weak model stage too)."""
    code, reports, _ = run_json(capsys, tmp_path, MUSIC)
    kind = reports[0]["verdict"]["kind"]
    assert kind in ("none", "model") and code == 0
    strict, _, _ = run(capsys, MUSIC, "--json", "--out", tmp_path / "rep2", "--strict")
    assert strict == (1 if kind == "model" else 0)


def test_unusable_inputs_fail_before_the_model_loads(capsys, tmp_path, monkeypatch):
    def no_model(*a, **k):
        raise AssertionError("the model was loaded for inputs that cannot be used")

    monkeypatch.setattr(Chain, "load", no_model)
    (tmp_path / "bad.wav").write_bytes(b"RIFF nothing")
    code, _, err = run(capsys, tmp_path / "bad.wav", tmp_path / "missing.flac", "--out", tmp_path / "rep")
    assert code == 2 and err.count("harness: error: ") == 3 and "missing.flac" in err
    assert err.strip().splitlines()[-1] == "harness: error: nothing diagnosed: no usable file among the paths given"


def test_a_low_rate_input_is_flagged_with_the_lost_band(capsys, tmp_path):
    x = audio.load_audio(CLIPS["speech"])[:32000]
    import librosa

    sf.write(tmp_path / "phone.wav", librosa.resample(x, orig_sr=16000, target_sr=8000), 8000)
    _, reports, _ = run_json(capsys, tmp_path, tmp_path / "phone.wav")
    found = {f["code"]: f["message"] for f in reports[0]["checks"]["input"]["findings"]}
    assert "band-limited" in found and "between 4 and 8 kHz" in found["band-limited"]



def test_inputs_that_cannot_be_judged_fairly_are_flagged(capsys, tmp_path):
    """Heavy clipping, a large DC offset and near-silence are named; a clean clip gets none of them."""
    x = audio.load_audio(CLIPS["music"])[:32000].astype(np.float64)
    x = 0.5 * x / np.abs(x).max()
    files = {"clean": x, "clipped": np.clip(4 * x, -1, 1), "dc": 0.15 * x + 0.3,
             "quiet": np.concatenate([x[:3000], np.zeros(29000)])}
    for name, y in files.items():
        sf.write(tmp_path / f"{name}.wav", y.astype(np.float32), 16000)
    _, reports, _ = run_json(capsys, tmp_path, *[tmp_path / f"{n}.wav" for n in files])
    codes = {Path(r["file"]).stem: {f["code"] for f in r["checks"]["input"]["findings"] if f["severity"] == "flag"}
             for r in reports}
    assert codes == {"clean": set(), "clipped": {"clipping"}, "dc": {"dc-offset"}, "quiet": {"silence"}}

# --- the figures: readable, no text on text ------------------------------------------------------


def text_overlaps(fig) -> list:
    """Pairs of drawn texts (titles, axis and tick labels, legend entries) whose boxes intersect."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = []
    for ax in fig.axes:
        if not ax.axison:
            continue
        texts += [ax.title, ax._left_title, ax.xaxis.label, ax.yaxis.label]
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            texts += [t.label1 for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_visible()]
    texts += [t for leg in fig.legends for t in leg.get_texts()]
    texts += [t for t in fig.findobj(Text) if t.axes is not None and t in t.axes.texts]  # "stage failed"
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_visible() and t.get_text().strip()]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:]
            if min(ba.x1, bb.x1) - max(ba.x0, bb.x0) > 1 and min(ba.y1, bb.y1) - max(ba.y0, bb.y0) > 1]


@pytest.mark.parametrize("rows", [2, 7])
def test_mel_figure_has_no_overlapping_text_and_no_empty_panel(rows):
    import matplotlib.pyplot as plt

    from harness.judging.evidence import mel_figure

    rng = np.random.default_rng(0)
    ref = rng.normal(-5, 2, (256, 64))
    titles = ["input mel (audioldm2)", "front-end seed-librosa-db", "VAE round trip scaled",
              "VAE round trip scaled on seed-librosa-db", "vocoder hifigan-transposed", "Griffin-Lim (baseline)",
              "full chain seed-librosa-db-scaled-hifigan-transposed"][:rows]
    panels = [(titles[0], ref)] + [(t, None if "on seed" in t else ref + rng.normal(0, 1, ref.shape))
                                   for t in titles[1:]]
    fig = mel_figure(panels, reference=ref)
    try:
        assert text_overlaps(fig) == []
        # the input's own row shows the mean spectra, not an empty |difference|
        first = fig.axes[1]
        assert len(first.get_lines()) == sum(m is not None for _, m in panels) and not first.get_images()
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_the_shipped_clips_do_not_read_as_a_failure(capsys, tmp_path, name):
    """A new user's first diagnose, on the package's own clip with its own small model: no red verdict, the
    figures shown, and what the bundled model is said plainly."""
    code, out, _ = run(capsys, CLIPS[name], "--out", tmp_path / "rep")
    assert code == 0
    assert "undertrained" not in out and "mismatched" not in out and "\nverdict [vocoder]" not in out
    last = out.strip().splitlines()[-2]  # the verdict or note line, before "wrote ..."
    assert last.startswith(("note [", "verdict [none]")), last
    if last.startswith("note ["):
        assert "bundled 'tiny' model" in last and "absolute quality is limited" in last and "nats" in last
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "class='verdict bad'" not in page and "<tr class='bad'>" not in page


def test_a_weak_stage_of_another_model_still_reads_as_one():
    from harness.surfaces.diagnose import stages as dstages

    stages = {"frontend": {"metrics": {"mel_l1": 0.0}}, "vae": {"metrics": {"mel_l1": 0.2}},
              "vocoder": {"metrics": {"mel_l1": 0.59}}, "griffin_lim": {"metrics": {"mel_l1": 0.14}},
              "chain": {"metrics": {"mel_l1": 0.6}}}
    theirs = dstages.verdict([], stages)
    ours = dstages.verdict([], stages, bundled="tiny")
    assert theirs["kind"] == ours["kind"] == "model" and "tone" not in theirs and ours["tone"] == "note"
    assert "undertrained or mismatched vocoder weights" in theirs["message"]
    assert "undertrained" not in ours["message"] and "0.45 more than the Griffin-Lim baseline" in ours["message"]
