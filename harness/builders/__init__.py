"""Builders of models to test: the bundled ``tiny`` AudioLDM2 and its training (:mod:`.bundled`), a
pipeline of the real architecture with random weights (:mod:`.realsize`) and tiny pipelines of the
AudioLDM family (:mod:`.family`).

They sit beside the layers: they use any of them, and only the command line (a surface) uses them.
"""
