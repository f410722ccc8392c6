"""The signal layer: audio in and out, the frame grid, front-ends, metrics and audio made by code.

:mod:`.audio` reads, checks, resamples and pads audio and holds the grid AudioLDM2 works on (16 kHz, hop
160, frames in multiples of 4); :mod:`.frontend` turns waveforms into log-mels (AudioLDM2's own, in both of
its framings, and the known mistakes); :mod:`.metrics` compares waveforms and mels; :mod:`.griffinlim` is
the phase-free vocoder baseline; :mod:`.synth` makes speech, music, effects and the judging sets by code.

It imports only the package's foundation (:mod:`harness.errors`, :mod:`harness.atomic`,
:mod:`harness.machine`), numpy, torch and librosa: no model, no judging.
"""
