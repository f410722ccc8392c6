"""``harness mel``: write a file's log-mel (a front-end's) as ``.npy``."""
from __future__ import annotations

import sys
from pathlib import Path

from harness.surfaces.cli.common import (
    CHANNEL_HELP, Inputs, add_components, add_max_seconds, command, report_nothing_evaluated,
)
from harness.vocabulary import AUDIO_SUFFIXES


def add_parser(sub) -> None:
    """Declare ``harness mel`` and its options."""
    p = command(sub, "mel", "write each file's log-mel as a [frames, 64] float32 .npy", """
harness mel my.wav --out mels/                     mels/my.npy, AudioLDM2's own front-end
harness mel *.wav --out mels/ --frames 1024        padded/cropped to 1024 frames (10.24 s)
harness mel a.mp3 a.ogg --out mels/                same stem: a.mp3.npy and a.ogg.npy
harness mel data/ --out mels/                      every audio file in data/""", description="Write each file's "
                "log-mel as a [frames, 64] float32 .npy. Exit status: 0 every file written; 2 a path given was "
                "not used (missing, an empty directory, a directory without an audio file, an unreadable file: each "
                "is named with its reason), or nothing was written.")
    p.add_argument("files", nargs="+", help="audio files, or directories of them")
    add_components(p, components=("frontend",))
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--frames", type=int, default=None, help="pad/crop to this many frames (default: cover the "
                   "file, rounded up to a multiple of 4)")
    p.add_argument("--channel", default="first", choices=["first", "mean"], help=CHANNEL_HELP)
    add_max_seconds(p)
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness mel``: write a file's log-mel (a front-end's) as ``.npy``."""
    import numpy as np
    import torch

    from harness.errors import AudioError
    from harness.signal import audio, frontend

    fe = frontend.get_frontend(args.frontend)
    inputs = Inputs(args.files, AUDIO_SUFFIXES)
    if not inputs.files:  # before --out is created: a wrong data path leaves nothing behind
        return report_nothing_evaluated(inputs.skipped, "written")
    for line in inputs.skipped:
        print(f"harness: error: {line}", file=sys.stderr)
    files = inputs.files
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed, unusable = len(inputs.skipped), []
    stems = [Path(p).stem for p in files]
    # a.mp3 and a.ogg in one call would both be a.npy: such files keep their extension (a.mp3.npy)
    dests = {p: out / ((Path(p).stem if stems.count(Path(p).stem) == 1 else Path(p).name) + ".npy")
             for p in files}
    sources = {}  # destination -> the distinct files that would write it
    for p, d in dests.items():
        sources.setdefault(d, {}).setdefault(Path(p).resolve(), p)
    clash = [p for files in sources.values() if len(files) > 1 for p in files.values()]
    if clash:
        raise ValueError(f"{', '.join(clash)}: same file name in different folders, their mels would overwrite "
                         "each other in --out; run them in separate calls with different --out directories")
    for path in files:
        try:
            x = audio.load_audio(path, channel=args.channel, max_seconds=args.max_seconds)
            x = audio.pad_or_crop(x.astype(np.float64), args.frames)
            # float64 arithmetic: the written mel is exact to ~1e-9 nats, not to float32 FFT round-off
            mel = fe(torch.from_numpy(x)[None])[0, 0].numpy().astype(np.float32)
        except (AudioError, ValueError) as exc:
            print(f"harness: error: {exc}", file=sys.stderr)
            failed += 1
            unusable.append(path)
            continue
        dest = dests[path]
        np.save(dest, mel)
        print(f"{dest}  [{mel.shape[0]} frames, 64 mels]  min {mel.min():.2f}  max {mel.max():.2f}  "
              f"mean {mel.mean():.2f} nats")
    for line in inputs.unused_directories(unusable):
        print(f"harness: error: {line}", file=sys.stderr)
    if len(unusable) == len(files):
        print("harness: error: nothing written: no usable file among the paths given", file=sys.stderr)
    return 2 if failed else 0
