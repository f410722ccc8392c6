"""``harness diagnose``: run the chain stage by stage on one file and say which stage loses the quality.

Per file: input checks (level, clipping, rate, channels), a front-end check that compares the log-mel's
statistics with what the VAE was trained on, every stage measured on its own (VAE round trip, vocoder
alone, Griffin-Lim baseline, full chain) and a one-line verdict. A ``.npy`` log-mel can be diagnosed
too (statistics, VAE round trip, vocoder). The HTML report is in :mod:`harness.surfaces.diagnose.report`.

Three modules, each importing only the layers below the surfaces (signal, model, judging) and the ones
before it here: :mod:`~harness.surfaces.diagnose.findings` (input and mel-statistics checks, the per-file report),
:mod:`~harness.surfaces.diagnose.stages` (the stages and the verdict), :mod:`~harness.surfaces.diagnose.report` (the HTML
page). Each public name is imported from the module that defines it.
"""
