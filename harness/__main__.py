"""``python -m harness``: the command line, also as ``torchrun ... -m harness matrix --out DIR FILES``."""
import sys

from harness.surfaces.cli import main

sys.exit(main())
