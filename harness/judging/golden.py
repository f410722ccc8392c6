"""Golden fixtures: full-pipeline outputs and reference clips, with provenance and hashes.

Layout of ``golden/<model-slug>/``::

    manifest.json            provenance + sha256/shape of every file below
    thresholds.toml          calibrated floors/ceilings (harness thresholds --calibrate)
    cases/<case>/latents.npy [8, T/4, 16] float32   final denoised latents (scaled, as the pipeline has them)
    cases/<case>/mel.npy     [T, 64] float32        VAE-decoded log-mel the pipeline vocoded
    cases/<case>/audio.wav   [160 T] float32 16 kHz the pipeline's waveform
    clips/<name>.flac        reference clips (speech, music, effects, noise) made by code
                             (harness.signal.synth.iter_reference_clips; a copy of harness/clips/)

Regeneration is explicit: ``harness golden`` or ``pytest --harness-regen-golden``.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from harness import atomic
from harness.errors import AudioError, GoldenError
from harness.signal import audio
from harness.vocabulary import AUDIO_SUFFIXES, versions

PROMPTS = [
    ("dog", "a dog barking in the distance", 0),
    ("piano", "gentle piano music with soft chords", 1),
    ("rain", "rain falling on a tin roof", 2),
    ("speech", "a man speaking in a quiet room", 3),
]
STEPS = 20
#: what the text-to-speech checkpoints (``cvssp/audioldm2-speech-*``) are asked to say in every case
TRANSCRIPTION = "the quick brown fox jumps over the lazy dog"
GUIDANCE = 3.5
CLIPS_DIR = Path(__file__).resolve().parents[1] / "clips"
#: goldens and thresholds of the bundled models, shipped inside the package (``goldens/<name>``)
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "goldens"
#: where the commands write goldens, relative to the working directory (``golden/<model-slug>``)
DEFAULT_ROOT = Path("golden")
REQUIRED_KEYS = ["model", "weights_sha256", "versions", "cases", "steps", "guidance_scale", "scheduler",
                 "audio_length_in_s", "device", "dtype", "files", "seed_policy"]


def locate(model: str, golden_dir=None, root=None, writing: bool = False) -> Path:
    """The golden directory of ``model``: where its ``manifest.json`` and ``thresholds.toml`` are.

    Parameters
    ----------
    model : str
        Bundled name (``tiny``), local diffusers directory or hub id.
    golden_dir : str or Path, optional
        An explicit directory (``--golden-dir`` of a command, ``--harness-golden-dir`` of pytest): returned as given.
    root : str or Path, optional
        A configured parent of per-model directories (the ini option ``harness_golden_dir``). A
        configured root is authoritative: ``root/<slug>`` is returned whether or not it exists, so a
        project that keeps its goldens there fails when they are removed instead of silently falling
        back to the shipped copy.
    writing : bool
        For commands that write goldens or thresholds: never the installed package's copy.

    Returns
    -------
    Path
        ``golden_dir``; else ``root/<slug>``; else ``./golden/<slug>`` when it holds goldens (a
        user's own directory takes precedence); else the copy shipped with a bundled model
        (:data:`BUNDLED_DIR`); else ``./golden/<slug>``, where ``harness golden`` writes them.
    """
    from harness.model.loading import model_slug

    if golden_dir is not None:
        return Path(golden_dir)
    slug = model_slug(model)
    if root is not None:
        return Path(root) / slug
    local = DEFAULT_ROOT / slug
    shipped = BUNDLED_DIR / slug
    if writing or (local / "manifest.json").exists() or not (shipped / "manifest.json").exists():
        return local
    return shipped


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _file_entry(root: Path, path: Path) -> dict:
    entry = {"sha256": sha256(path), "bytes": path.stat().st_size}
    if path.suffix == ".npy":
        arr = np.load(path)
        entry.update(shape=list(arr.shape), dtype=str(arr.dtype))
    elif path.suffix in (".wav", ".flac"):
        info = sf.info(str(path))
        entry.update(shape=[info.frames], samplerate=info.samplerate)
    return entry


def is_tts(pipe) -> bool:
    """A text-to-speech member of the family (a VITS text encoder): its cases need a transcription."""
    return type(getattr(pipe, "text_encoder_2", None)).__name__ == "VitsModel"


def run_case(pipe, prompt: str, seed: int, steps: int, guidance: float, seconds: float):
    """One golden case through the full pipeline: ``(final latents [8, T/4, 16], waveform [160 T])``.

    The latents are caught by the pipeline's step callback (the last call has the final ones); the
    generator is a CPU ``torch.Generator`` seeded with ``seed``, as the manifest records.
    """
    import torch

    captured = {}

    def grab(step, t, latents):
        captured["z"] = latents.clone()

    gen = torch.Generator(device="cpu").manual_seed(seed)
    extra = {"transcription": TRANSCRIPTION} if is_tts(pipe) else {}
    with torch.inference_mode():
        wave = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, audio_length_in_s=seconds,
                    generator=gen, output_type="np", callback=grab, callback_steps=1, **extra).audios[0]
    return captured["z"][0].float().cpu().numpy(), wave.astype(np.float32)


def _check_case(name: str, latents: np.ndarray, wave: np.ndarray) -> None:
    """A generated case must be usable as a golden: finite latents, a finite and audible waveform."""
    if not np.isfinite(latents).all():
        raise GoldenError(f"golden case {name!r}: the pipeline produced non-finite latents (NaN/Inf); in fp16 "
                          "keep the VAE in fp32 (force_upcast) or generate in fp32/bf16")
    try:
        audio.valid_audio(wave, name=f"golden case {name!r}")
    except AudioError as exc:
        raise GoldenError(f"{exc}. A vocoder with random weights is near-silent: build random real-size models "
                          "with `harness build-real-size`, which conditions them") from None


def generate(model: str, out: str | Path, device: str = "cpu", dtype: str = "fp32",
             seconds: Optional[float] = None, steps: int = STEPS, progress: bool = True,
             finish: Optional[Callable[[Path], None]] = None) -> Path:
    """Run the model's full pipeline (AudioLDM2, AudioLDM or MusicLDM) on :data:`PROMPTS` and write the golden set
    to ``out``; the settings its configs imply (:class:`harness.model.settings.ModelSettings`: sample rate, hop, mel
    bins, scaling factor, ...) are recorded in the manifest's ``settings``.

    The new set is built beside ``out`` and replaces it whole once it is complete, checked and
    ``finish(new_set_dir)`` (e.g. calibration) has succeeded (:func:`harness.atomic.replacing`): killed or
    failing at any point, ``out`` keeps the previous set. A second writer of ``out`` is refused.
    """
    from harness.model import loading

    source = loading.resolve_model(model, subfolders=("vae", "vocoder", "unet"))
    pipe = loading.load_pipeline(source, device, dtype)
    with atomic.replacing(out) as stage:
        _generate_into(stage, model, source, pipe, device, dtype, seconds, steps, progress)
        check(stage)
        if finish is not None:
            finish(stage)
    return Path(out)


def copy_bundled(model: str, out: str | Path) -> Path:
    """Put the goldens shipped with bundled model ``model`` (thresholds included) in ``out``, checked
    against their manifest: what :func:`generate` and calibration would write, in a second.

    Raises :class:`GoldenError` when ``model`` ships none.
    """
    shipped = BUNDLED_DIR / model
    if not (shipped / "manifest.json").exists():
        raise GoldenError(f"{model!r} ships no goldens: run `harness golden --model {model} --regenerate`")
    check(shipped)
    with atomic.replacing(out, keep=False) as stage:
        shutil.copytree(shipped, stage, dirs_exist_ok=True)
        check(stage)
    return Path(out)


def _generate_into(out: Path, model: str, source, pipe, device: str, dtype: str, seconds: Optional[float],
                   steps: int, progress: bool) -> None:
    # users' clips (``harness golden --clips``) survive a regeneration of the pipeline cases
    previous = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    user_clips = {n: v for n, v in previous.get("user_clips", {}).items() if (out / "clips" / f"{n}.flac").exists()}
    (out / "cases").mkdir(parents=True, exist_ok=True)
    seconds = seconds or pipe.unet.config.sample_size * pipe.vae_scale_factor * 0.01
    captured = {}
    hook = pipe.vae.decoder.register_forward_hook(lambda m, i, o: captured.__setitem__("mel", o))
    cases = []
    for name, prompt, seed in tqdm(PROMPTS, desc="golden", disable=not progress):
        latents, wave = run_case(pipe, prompt, seed, steps, GUIDANCE, seconds)
        _check_case(name, latents, wave)  # fail fast, before the other cases cost their time
        case = out / "cases" / name
        case.mkdir(parents=True, exist_ok=True)
        np.save(case / "latents.npy", latents)
        np.save(case / "mel.npy", captured["mel"][0, 0].float().cpu().numpy())
        audio.write_audio(case / "audio.wav", wave.astype(np.float32))
        cases.append({"name": name, "prompt": prompt, "seed": seed})
    hook.remove()
    (out / "clips").mkdir(exist_ok=True)
    clips = []
    for src in sorted(CLIPS_DIR.glob("*.flac")):  # made by harness.signal.synth.iter_reference_clips
        shutil.copyfile(src, out / "clips" / src.name)
        clips.append(src.stem)
    manifest = {
        "model": model, "model_kind": source.kind, "model_path": str(source.path) if source.kind != "bundled" else
        "harness/models/" + model, "weights_sha256": source.weights_hash(("vae", "vocoder", "unet")),
        "pipeline": type(pipe).__name__, "settings": source.settings.as_dict(), "versions": versions(), "cases": cases, "clips": clips,
        "steps": steps, "guidance_scale": GUIDANCE, "scheduler": type(pipe.scheduler).__name__,
        "audio_length_in_s": seconds, "device": str(device), "dtype": dtype,
        "seed_policy": "torch.Generator('cpu').manual_seed(case seed), num_waveforms_per_prompt=1",
    }
    if is_tts(pipe):
        manifest["transcription"] = TRANSCRIPTION
    if user_clips:
        manifest["clips"] += list(user_clips)
        manifest["user_clips"] = user_clips
    _write_manifest(out, manifest)


def _write_manifest(out: Path, manifest: dict) -> None:
    manifest["files"] = {str(p.relative_to(out)): _file_entry(out, p)
                         for p in sorted(out.rglob("*")) if p.is_file() and p.suffix in (".npy", ".wav", ".flac")}
    atomic.write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def audio_files(paths) -> List[Path]:
    """Files given on a command line, directories expanded to the audio files they hold (sorted)."""
    out: List[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
        else:
            out.append(p)
    return out


def add_clips(root: str | Path, paths, channel: str = "first",
              finish: Optional[Callable[[Path], None]] = None) -> List[str]:
    """Add users' reference clips to the golden set in ``root``: ``clips/user-<stem>.flac``.

    Each file is read and checked like any input (16 kHz mono, :func:`harness.signal.audio.load_audio`),
    written as 24-bit FLAC and hashed into ``manifest.json``, with its source path and sha256 under
    ``user_clips`` (provenance). Re-calibrate afterwards (``harness thresholds --calibrate``): the
    clips then get per-clip regression ceilings and ``pytest`` runs the matrix on them.

    Returns the names added (``user-<stem>``, numbered on a collision). Raises
    :class:`harness.errors.AudioError` naming the first unusable file, before anything is written. Like
    :func:`generate`, the set is replaced whole once the new one is checked and ``finish(new_set_dir)``
    succeeded.
    """
    check(root)
    loaded = [(p, audio.load_audio(p, channel=channel, max_seconds=audio.MAX_SECONDS)) for p in audio_files(paths)]
    if not loaded:
        raise AudioError(None, "no audio files found", f"looked in {', '.join(map(str, paths))}")
    with atomic.replacing(root) as stage:
        names = _add_clips_into(stage, loaded)
        check(stage)
        if finish is not None:
            finish(stage)
    return names


def _add_clips_into(root: Path, loaded) -> List[str]:
    manifest = check(root)
    (root / "clips").mkdir(exist_ok=True)
    names, taken = [], set(manifest.get("clips", []))
    for path, x in loaded:
        stem = "user-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in path.stem)
        name, k = stem, 2
        while name in taken:
            name, k = f"{stem}-{k}", k + 1
        taken.add(name)
        sf.write(root / "clips" / f"{name}.flac", x, audio.SAMPLE_RATE, subtype="PCM_24")
        manifest.setdefault("user_clips", {})[name] = {"source": str(path.resolve()), "source_sha256": sha256(path)}
        names.append(name)
    manifest["clips"] = list(manifest.get("clips", [])) + names
    _write_manifest(root, manifest)
    return names


@dataclass
class GoldenCase:
    """One golden case: the prompt and seed, and the pipeline's latents ``[8, T/4, 16]``, mel ``[T, 64]`` and waveform ``[160 T]``."""
    name: str
    prompt: str
    seed: int
    latents: np.ndarray  # [8, T/4, 16]
    mel: np.ndarray      # [T, 64]
    audio: np.ndarray    # [160 T]


@dataclass
class GoldenSet:
    """A verified golden directory: its manifest, cases and reference clips (name -> float32 ``[samples]``)."""
    root: Path
    manifest: dict
    cases: List[GoldenCase]
    clips: Dict[str, np.ndarray]


def check(root: str | Path) -> dict:
    """Verify a golden directory: manifest complete, every file present with its sha256 and shape.

    Raises :class:`GoldenError` naming the first bad file and what is wrong with it.
    """
    root = Path(root)
    atomic.recover(root)  # a writer killed between its two renames left the previous set beside it
    mpath = root / "manifest.json"
    if not mpath.exists():
        raise GoldenError(f"{mpath}: missing (run `harness golden --model MODEL --out {root}`)")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise GoldenError(f"{mpath}: not valid JSON ({exc}); restore it from git or regenerate") from None
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise GoldenError(f"{mpath}: manifest incomplete, missing {', '.join(missing)}")
    for rel, entry in manifest["files"].items():
        path = root / rel
        if not path.exists():
            raise GoldenError(f"{path}: listed in the manifest but missing")
        if path.stat().st_size != entry["bytes"]:
            raise GoldenError(f"{path}: size {path.stat().st_size} bytes, manifest says {entry['bytes']} "
                              "(truncated or edited; restore it from git or regenerate with `harness golden`)")
        if sha256(path) != entry["sha256"]:
            raise GoldenError(f"{path}: sha256 differs from the manifest (edited; restore it from git or "
                              "regenerate with `harness golden`)")
        if "shape" in entry and _file_entry(root, path).get("shape") != entry["shape"]:
            raise GoldenError(f"{path}: shape differs from the manifest")
    for case in manifest["cases"]:
        for f in ("latents.npy", "mel.npy", "audio.wav"):
            if f"cases/{case['name']}/{f}" not in manifest["files"]:
                raise GoldenError(f"{root / 'cases' / case['name'] / f}: not listed in the manifest")
    return manifest


def load(root: str | Path) -> GoldenSet:
    """Check then load a golden directory."""
    root = Path(root)
    manifest = check(root)
    cases = []
    for c in manifest["cases"]:
        d = root / "cases" / c["name"]
        cases.append(GoldenCase(c["name"], c["prompt"], c["seed"], np.load(d / "latents.npy"),
                                np.load(d / "mel.npy"), audio.load_audio(d / "audio.wav")))
    clips = {n: audio.load_audio(root / "clips" / f"{n}.flac") for n in manifest.get("clips", [])}
    return GoldenSet(root, manifest, cases, clips)
