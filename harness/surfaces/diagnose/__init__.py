"""``harness diagnose``: run the chain stage by stage on one file and say which stage loses the quality.

Per file: input checks (level, clipping, rate, channels), a front-end check that compares the log-mel's
statistics with what the VAE was trained on, every stage measured on its own (VAE round trip, vocoder
alone, Griffin-Lim baseline, full chain) and a one-line verdict. A ``.npy`` log-mel can be diagnosed
too (statistics, VAE round trip, vocoder). The HTML report is in :mod:`harness.surfaces.diagnose.report`.

Three modules, each importing only the layers below the surfaces (signal, model, judging) and the ones
before it here: :mod:`~harness.surfaces.diagnose.findings` (input and mel-statistics checks, the record),
:mod:`~harness.surfaces.diagnose.stages` (the stages and the verdict), :mod:`~harness.surfaces.diagnose.report` (the HTML
page). Their public names are re-exported here.
"""
from harness.surfaces.diagnose.findings import (
    CLIP_FRACTION, DC_SHARE, FLOOR, LOW_PEAK_DBFS, MAX_MEAN, MAX_NATS, REFERENCE_VAE, REFERENCE_VOCODER,
    VAE_OK_NATS, Diagnosis, Finding, check_frontend, check_input, check_mel_statistics, compare_with_reference,
    load_mel, mel_statistics, silent_fraction,
)
from harness.surfaces.diagnose.stages import (  # noqa: F401
    diagnose_file, run_files, run_stages, usage_loss, verdict,
)

__all__ = ["CLIP_FRACTION", "DC_SHARE", "FLOOR", "LOW_PEAK_DBFS", "MAX_MEAN", "MAX_NATS", "REFERENCE_VAE",
           "REFERENCE_VOCODER", "VAE_OK_NATS", "Diagnosis", "Finding", "check_frontend", "check_input",
           "check_mel_statistics", "compare_with_reference", "load_mel", "mel_statistics", "silent_fraction",
           "diagnose_file", "run_files", "run_stages", "usage_loss", "verdict"]
