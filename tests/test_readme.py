"""The README's "Testing your own code" example, run as written in a fresh project: its files are
the README's code blocks, its commands the README's commands. It can never drift from the code."""
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.judging import golden

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example():
    """``(files, commands)`` of the README section: code blocks whose first line is ``# <path> of your
    project`` become that file; the lines of the bash blocks (comments dropped) are the commands."""
    section = README.read_text().split("## Testing your own code", 1)[1].split("\n## ", 1)[0]
    files, commands = {}, []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S):
        named = re.match(r"# (\S+) of your project", body)
        if named:
            files[named.group(1)] = body
        elif lang == "bash":
            commands += [c for c in (line.split("#")[0].strip() for line in body.splitlines()) if c]
    return files, commands


def make_project(pytester):
    files, commands = readme_example()
    assert set(files) == {"pyproject.toml", "conftest.py", "tests/test_quality.py", "tests/test_speed.py"}
    for name, body in files.items():
        (pytester.path / name).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / name).write_text(body)
    golden_cmd = [c for c in commands if c.startswith("harness golden")]
    # the speed flow's commands (calibrate, then a timed run) are run by tests/test_bench_suite.py
    speed = [c for c in commands if "test_speed.py" in c]
    assert [c.split()[:3] for c in speed] == [["harness", "bench", "--calibrate"],
                                              ["python", "-m", "pytest"]], commands
    pytest_cmd = [c for c in commands if c.startswith("python -m pytest") and c not in speed]
    assert len(golden_cmd) == 1 and len(pytest_cmd) == 1, commands
    return shlex.split(golden_cmd[0]), shlex.split(pytest_cmd[0])[3:]


def run_readme_pytest(pytester, args, *extra):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", *args, *extra)


def test_readme_example_runs_in_a_fresh_project(pytester):
    """Default suite: the README's golden command as written (for the bundled model, a checked copy of the
    shipped goldens), and its pytest command narrowed to one combination per variant and the golden stages
    (the slow test below runs it whole)."""
    golden_cmd, pytest_args = make_project(pytester)
    out = golden_cmd[golden_cmd.index("--out") + 1]
    subprocess.run([sys.executable, "-m", "harness"] + golden_cmd[1:], cwd=pytester.path, check=True,
                   capture_output=True)
    assert (pytester.path / out / "manifest.json").read_bytes() == \
        (golden.BUNDLED_DIR / golden_cmd[golden_cmd.index("--model") + 1] / "manifest.json").read_bytes()
    narrow = ["-k", "ours-scaled-hifigan or audioldm2-ours-vae-hifigan or audioldm2-scaled-ours-vocoder "
                    "or test_golden_stage and ours"]
    result = run_readme_pytest(pytester, [a for a in pytest_args if a not in ("-k", "ours")], *narrow)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 12 and not outcomes.get("skipped") and not outcomes.get("failed"), outcomes
    assert result.ret == 0

    # the goldens removed: the tests fail, naming the README's command
    shutil.rmtree(pytester.path / out)
    result = run_readme_pytest(pytester, [a for a in pytest_args if a not in ("-k", "ours")], *narrow)
    gone = result.parseoutcomes()
    # every test that needs goldens errors (only the structural test_every_known_mistake_* still runs)
    assert result.ret != 0 and gone.get("errors", 0) + gone.get("passed", 0) == outcomes["passed"], gone
    assert gone["errors"] >= 20 and not gone.get("skipped"), gone
    result.stdout.fnmatch_lines([f"*no goldens in *{out}: run `harness golden --model tiny --out *{out}`*"])


@pytest.mark.slow
def test_readme_example_end_to_end(pytester):
    """The README's commands exactly: ``harness golden``, then its pytest (``-k ours``: every combination)."""
    golden_cmd, pytest_args = make_project(pytester)
    subprocess.run([sys.executable, "-m", "harness"] + golden_cmd[1:], cwd=pytester.path, check=True,
                   capture_output=True)
    result = run_readme_pytest(pytester, pytest_args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 30 and not outcomes.get("skipped") and result.ret == 0, outcomes


def test_the_docs_show_the_same_example():
    """docs/your-code.md repeats the README's example: block for block, so that neither drifts."""
    section = README.read_text().split("## Testing your own code", 1)[1].split("\n## ", 1)[0]
    guide = (README.parent / "docs" / "your-code.md").read_text()
    for block in re.findall(r"```\w+\n.*?```", section, re.S):
        assert block in guide, block
