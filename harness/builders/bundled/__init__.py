"""The bundled ``tiny`` AudioLDM2: its architecture and pipeline assembly (:mod:`.tiny`), its training
recipe (:mod:`.train`: the stages in order, over :mod:`.config` (settings), :mod:`.data` (the corpus),
:mod:`.loops` (losses and training loops, with HiFi-GAN's discriminators in :mod:`.discriminators`) and
:mod:`.export` (the pipeline it writes)) and its held-out evaluation (:mod:`.evaluate`). The trained weights
live in ``harness/models/tiny``.
"""
