"""Sphinx configuration of the audioldm2-harness documentation (``sphinx-build -W -b html docs docs/_build/html``)."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

import harness  # noqa: E402

project = "audioldm2-harness"
author = "the audioldm2-harness authors"
release = version = harness.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc", "sphinx.ext.intersphinx"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
# docstrings name types in plain words ("float32 [samples]"); only cross-reference what resolves
numpydoc_xref_param_type = False

intersphinx_mapping = {}
html_theme = "pydata_sphinx_theme"
html_title = "audioldm2-harness"
html_theme_options = {"navigation_with_keys": False}
nitpicky = False
suppress_warnings = ["myst.header"]
