"""The model layer: the VAE and vocoder under test and the ways a project drives them.

:mod:`.loading` finds a model (the bundled name, a local diffusers directory, a hub id or its cache) and
fails clearly offline; :mod:`.chain` makes its calls (encode, decode, vocode) with explicit shapes;
:mod:`.variants` holds the VAE and vocoder variants (correct ones, known mistakes, a project's own);
:mod:`.entry_points` loads a project's variants from the ``audioldm2_harness.variants`` entry-point group.

It imports the foundation and :mod:`harness.signal`; nothing that judges.
"""
