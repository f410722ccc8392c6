"""Print pins of every installed distribution the harness needs, with its ``test`` and ``docs`` extras.

Run in an environment where the suite passes, and save the output as ``constraints.txt``::

    python scripts/write-constraints.py > constraints.txt

``.ci/run`` installs with ``-c constraints.txt``; ``tox -e latest`` runs the suite on the newest releases instead.
"""
import re
import sys
from importlib import metadata

ROOT = "audioldm2-harness"
EXTRAS = {"test", "docs"}


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _needed(requirement: str, extras) -> bool:
    marker = requirement.partition(";")[2]
    if "extra" not in marker:
        return True
    return any(f'extra == "{e}"' in marker or f"extra == '{e}'" in marker for e in extras)


def closure() -> dict:
    found, todo = {}, [(ROOT, EXTRAS)]
    while todo:
        name, extras = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency for another platform or Python
        key = _name(dist.metadata["Name"])
        if key in found:
            continue
        found[key] = dist.version
        for req in dist.requires or []:
            if _needed(req, extras):
                sub = re.search(r"\[([^\]]+)\]", req.partition(";")[0])
                todo.append((_name(req), set(sub.group(1).split(",")) if sub else set()))
    found.pop(ROOT, None)
    return found


if __name__ == "__main__":
    pins = closure()
    print("# The versions the suite last passed with (python scripts/write-constraints.py > constraints.txt).")
    print(f"# Python {sys.version.split()[0]}; used by .ci/run as `pip install -c constraints.txt ...`.")
    for name in sorted(pins):
        version = pins[name].split("+")[0]  # a local build tag (torch's +cpu) is not on the package index
        print(f"{name}=={version}")
