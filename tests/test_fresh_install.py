"""The first hour of a pip user, outside this repository: the package installed normally (a wheel, not
this checkout) in a fresh virtual environment; the README's main job on the user's own file and the
README's plugin example in a new project. Slow (builds and installs a wheel): ``--run-slow``."""
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from test_readme import make_project

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]


def run(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, **kw)


@pytest.mark.slow
def test_installed_package_works_outside_the_repository(tmp_path, pytester):
    env_dir = tmp_path / "venv"
    # system site-packages give torch & co. offline; the package itself comes from a wheel built here
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = str(env_dir / "bin" / "python")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                 str(ROOT)], cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("*.whl"))
    assert run([python, "-m", "pip", "install", "--no-deps", str(wheel)], cwd=tmp_path).returncode == 0
    where = run([python, "-c", "import harness, sys; print(harness.__file__)"], cwd=tmp_path).stdout.strip()
    assert str(env_dir) in where and str(ROOT) not in where, where

    # the README's main job, on a file of the user's own
    user = tmp_path / "user"
    user.mkdir()
    t = np.arange(3 * 22050) / 22050
    sf.write(user / "my.wav", (0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-t)).astype(np.float32), 22050)
    harness = str(env_dir / "bin" / "harness")
    matrix = run([harness, "matrix", "--model", "tiny", "my.wav"], cwd=user)
    assert matrix.returncode == 0, matrix.stdout[-3000:] + matrix.stderr[-3000:]
    assert "verdict: OK" in matrix.stdout

    # the README's plugin example in a new project, goldens from the shipped copy (see test_readme.py)
    golden_cmd, pytest_args = make_project(pytester)
    out = golden_cmd[golden_cmd.index("--out") + 1]
    shipped = Path(where).parent / "goldens" / "tiny"
    shutil.copytree(shipped, pytester.path / out)
    narrow = ["-k", "ours-scaled-hifigan or audioldm2-ours-vae-hifigan or audioldm2-scaled-ours-vocoder"]
    tests = run([python, "-m", "pytest", "-p", "no:cacheprovider", "-q", *[a for a in pytest_args if a not in
                 ("-k", "ours")], *narrow], cwd=pytester.path)
    assert tests.returncode == 0 and " passed" in tests.stdout and "skipped" not in tests.stdout, tests.stdout[-3000:]
    shutil.rmtree(pytester.path / out)
    tests = run([python, "-m", "pytest", "-p", "no:cacheprovider", "-q", *narrow], cwd=pytester.path)
    assert tests.returncode != 0 and "harness golden --model tiny --out" in tests.stdout
