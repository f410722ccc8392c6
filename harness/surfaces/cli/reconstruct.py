"""``harness reconstruct``: a file through one combination, written as a WAV."""
from __future__ import annotations

from harness.surfaces.cli.common import CHANNEL_HELP, add_components, add_max_seconds, add_model_args, command


def add_parser(sub) -> None:
    """Declare ``harness reconstruct`` and its options."""
    p = command(sub, "reconstruct", "run one front-end/VAE/vocoder combination on one file", """
harness reconstruct my.wav --out rec.wav
harness reconstruct my.wav --vae unscaled --vocoder griffin-lim --out rec.wav""")
    p.add_argument("file", help="audio file")
    add_model_args(p)
    add_components(p)
    p.add_argument("--channel", default="first", choices=["first", "mean"], help=CHANNEL_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of the VAE's latent sampling (variants that sample)")
    p.add_argument("--out", required=True, help="output WAV (16 kHz, the input's length)")
    add_max_seconds(p)
    p.set_defaults(fn=run)


def run(args) -> int:
    """``harness reconstruct``: a file through one combination, written as a WAV."""
    import torch

    from harness.signal import audio
    from harness.model.chain import Chain

    x = audio.load_audio(args.file, channel=args.channel, max_seconds=args.max_seconds)
    n = len(x)
    chain = Chain.load(args.model, args.device, args.dtype)
    wave = torch.from_numpy(audio.pad_or_crop(x))[None]
    out = chain.run(wave, args.frontend, args.vae, args.vocoder, seed=args.seed)
    y = out.wave_out[0, :n].cpu().numpy()
    audio.write_audio(args.out, y)
    print(f"wrote {args.out}: {n} samples at 16 kHz ({args.frontend}-{args.vae}-{args.vocoder}, model {args.model})")
    return 0
