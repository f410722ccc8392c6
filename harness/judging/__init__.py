"""The judging layer: combinations, their measurement, the limits, the verdicts and what backs them.

:mod:`.stages` is the stage engine (running a component at a stage and comparing its output; the golden
stages; their names are :mod:`harness.vocabulary`'s); :mod:`.matrix` measures every front-end x VAE x vocoder
combination on clips through it; :mod:`.thresholds` holds the limits as data and the one judge;
:mod:`.verdicts` is the judging engine
(which limits judge a target, the reference figure, expected verdicts, statuses, rates); :mod:`.quality`
measures a golden set and answers a check of a stage; :mod:`.calibration` writes the limits and counts false alarms and misses;
:mod:`.golden` generates and checks the goldens; :mod:`.evidence` draws a failure; :mod:`.report` judges
users' files; :mod:`.dataset` runs a dataset over many processes; :mod:`.metamorphic` checks a
front-end's invariances.

It imports the foundation, :mod:`harness.signal` and :mod:`harness.model`; never a surface.
"""
