"""The GitHub Actions workflow of docs/ci.md, its CPU job's commands run as written in a fresh project
(the README's example project), with ``$GITHUB_STEP_SUMMARY`` pointing at a file."""
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness.judging import golden

from test_readme import make_project

pytest_plugins = ["pytester"]

CI_DOC = Path(__file__).resolve().parents[1] / "docs" / "ci.md"


def workflow() -> dict:
    body = re.search(r"```yaml\n(# \.github/workflows/\S+ of your project\n.*?)```", CI_DOC.read_text(), re.S)
    return yaml.safe_load(body.group(1))


def test_the_workflow_has_a_cpu_and_a_gpu_job_that_keep_their_evidence():
    jobs = workflow()["jobs"]
    assert set(jobs) == {"quality-cpu", "quality-gpu"}
    for job in jobs.values():
        runs = " ".join(s.get("run", "") for s in job["steps"])
        assert '--harness-summary="$GITHUB_STEP_SUMMARY"' in runs and "--junitxml=reports/junit.xml" in runs
        assert any(s.get("uses", "").startswith("actions/upload-artifact") and s.get("if") == "always()"
                   for s in job["steps"])
    assert "--harness-device cuda" in str(jobs["quality-gpu"]) and "actions/cache" in str(jobs["quality-gpu"])


@pytest.mark.slow  # a fresh project end to end; the job's steps are checked above
def test_the_cpu_job_runs_green_in_a_fresh_project(pytester):
    make_project(pytester)  # the README's example project: its conftest, pyproject and test file
    shutil.copytree(golden.BUNDLED_DIR / "tiny", pytester.path / "golden" / "tiny")
    steps = [s for s in workflow()["jobs"]["quality-cpu"]["steps"] if "run" in s and not s["name"].startswith("Install")]
    summary = pytester.path / "step-summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "HF_HUB_OFFLINE": "1"}
    for step in steps:
        for line in step["run"].strip().splitlines():
            line = line.replace("python -m pytest", f"{sys.executable} -m pytest -p no:cacheprovider", 1)
            done = subprocess.run(line, shell=True, cwd=pytester.path, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    text = summary.read_text()
    assert text.startswith("# AudioLDM2 reconstruction quality") and "## Failures\n\nNone" in text
    cases = list(ET.parse(pytester.path / "reports" / "junit.xml").getroot().iter("testcase"))
    quality = [c for c in cases if c.get("name").startswith(("test_matrix[", "test_golden_stage["))]
    assert quality and all(any(p.get("name") == "harness_verdict" for p in c.iter("property")) for c in quality)


def test_the_jobs_install_the_project_with_the_pinned_constraints():
    """The README asks CI to install with ``-c constraints.txt``; the workflow's installs of the project do."""
    for name, job in workflow()["jobs"].items():
        installs = [line for s in job["steps"] for line in s.get("run", "").splitlines() if "pip install" in line
                    and "-e " in line]
        assert installs, f"{name}: no install of the project"
        assert all("-c constraints.txt" in line for line in installs), (name, installs)
