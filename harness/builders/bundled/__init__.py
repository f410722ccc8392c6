"""The bundled ``tiny`` AudioLDM2: its architecture and pipeline assembly (:mod:`.tiny`), its training
recipe (:mod:`.train`, with HiFi-GAN's discriminators in :mod:`.discriminators`) and its held-out
evaluation (:mod:`.evaluate`). The trained weights live in ``harness/models/tiny``.
"""
