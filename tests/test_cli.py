"""The `harness` command line, end to end, including bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from harness.surfaces import cli
from harness.judging import report, verdicts
from harness.judging.records import Expected, Policy, Record, StageRecord


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "music.wav"
    x, sr = sf.read(report.default_files()[1], dtype="float32")
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 44100)  # stereo, another rate: the loader must cope
    return path


def test_console_script_lists_variants():
    out = subprocess.run([sys.executable, "-m", "harness", "list"], capture_output=True, text=True, check=True)
    for name in ("audioldm2", "seed-librosa-db", "scaled", "none", "hifigan", "griffin-lim"):
        assert name in out.stdout


def test_mel_writes_frames_by_64(clip, tmp_path, capsys):
    assert cli.main(["mel", str(clip), "--out", str(tmp_path / "mels"), "--frames", "100"]) == 0
    mel = np.load(tmp_path / "mels" / "music.npy")
    assert mel.shape == (100, 64) and mel.dtype == np.float32
    assert mel.min() >= np.log(1e-5) - 1e-4


def test_reconstruct_keeps_length(clip, tmp_path):
    out = tmp_path / "out.wav"
    assert cli.main(["reconstruct", str(clip), "--out", str(out), "--vae", "scaled", "--vocoder", "hifigan"]) == 0
    y, sr = sf.read(out)
    info = sf.info(str(clip))
    assert sr == 16000
    assert abs(len(y) - round(info.frames * 16000 / 44100)) <= 2


@pytest.mark.parametrize("content,reason", [
    (b"this is not audio", "not a readable audio file"),
    (None, "file not found"),
])
def test_bad_input_one_line(tmp_path, capsys, content, reason):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["mel", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # one line names the file and its reason; the last says that nothing was written
    assert len(err) == 2 and "bad.wav" in err[0] and reason in err[0] and "nothing written" in err[1]


def test_silent_and_short(tmp_path, capsys):
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "short.wav", np.ones(300, np.float32) * 0.1, 16000)
    assert cli.main(["mel", str(tmp_path / "silent.wav"), str(tmp_path / "short.wav"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "silent" in err and "too short" in err


def test_unknown_names(clip, tmp_path, capsys):
    assert cli.main(["reconstruct", str(clip), "--out", str(tmp_path / "o.wav"), "--vae", "nope"]) == 2
    assert "unknown VAE variant 'nope'" in capsys.readouterr().err


def test_matrix_json_on_user_files(clip, tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....")
    code = cli.main(["matrix", "--json", str(clip), str(bad), "--frontend", "audioldm2", "--frontend",
                     "seed-librosa-db", "--vae", "scaled", "--vocoder", "hifigan"])
    out = capsys.readouterr()
    records = [Record.from_dict(r) for r in json.loads(out.out)]
    assert {(r.frontend, r.expected) for r in records} == {("audioldm2", "pass"), ("seed-librosa-db", "detect")}
    for r in records:
        assert "chain.mel_l1" in r.metrics
    assert "broken.wav" in out.err  # the bad file is reported, the good one still evaluated
    assert code != 0


def test_the_reference_is_the_yardstick_records_carry_their_limits_and_nothing_evaluated_is_not_ok(
        clip, tmp_path, capsys):
    args = ["matrix", "--json", str(clip), "--frontend", "audioldm2", "--vae", "scaled", "--vae", "sample",
            "--vocoder", "hifigan"]
    assert cli.main(args) == 0
    records = {r.vae: r for r in map(Record.from_dict, json.loads(capsys.readouterr().out))}
    # the reference combination on a file without a stored baseline is what the others are judged against
    assert records["scaled"].status == "yardstick"
    assert {s.policy for s in records["scaled"].stages.values()} == {"yardstick"}
    sample = records["sample"]
    assert sample.status == "pass" and sample.stages["vae"].policy == "relative"
    assert sample.stages["vae"].reference == "audioldm2-scaled-hifigan"
    assert sample.stages["vae"].limits and all(isinstance(v, float) for v in sample.stages["vae"].limits.values())
    assert cli.main(args[:1] + args[2:]) == 0
    assert "yardstick" in capsys.readouterr().out
    # every file unusable: exit 2 and no "OK"
    silent = tmp_path / "silent.wav"
    import numpy as np
    import soundfile as sf

    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    assert cli.main(["matrix", str(silent)]) == 2
    out = capsys.readouterr().out
    assert "verdict: NOTHING EVALUATED" in out and "verdict: OK" not in out


def test_mel_output_names_never_collide(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from harness.surfaces.cli import main

    x = (0.3 * np.sin(np.arange(8000) / 7)).astype(np.float32)
    sf.write(tmp_path / "a.wav", x, 16000)
    sf.write(tmp_path / "a.flac", x[::-1].copy(), 16000)
    sf.write(tmp_path / "b.wav", x, 16000)
    assert main(["mel", str(tmp_path / "a.wav"), str(tmp_path / "a.flac"), str(tmp_path / "b.wav"),
                 "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.flac.npy", "a.wav.npy", "b.npy"]
    assert not np.array_equal(np.load(tmp_path / "out" / "a.wav.npy"), np.load(tmp_path / "out" / "a.flac.npy"))
    (tmp_path / "d").mkdir()
    sf.write(tmp_path / "d" / "b.wav", x, 16000)
    assert main(["mel", str(tmp_path / "b.wav"), str(tmp_path / "d" / "b.wav"), "--out", str(tmp_path / "o2")]) == 2
    assert "same file name in different folders" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "b.npy").exists()


def test_matrix_prints_a_summary_first_and_the_table_on_request(clip, capsys):
    args = ["matrix", str(clip), "--frontend", "audioldm2", "--vae", "scaled", "--vocoder", "hifigan",
            "--vocoder", "hifigan-transposed"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1 file(s) x 2 combinations") and out[-1] == "verdict: OK"
    assert "known mistakes (1 records): detected 1 of 1 at their culprit stage" in out
    assert not any("chain lsd (dB)" in line for line in out)  # the table is behind --verbose
    assert cli.main(args + ["--verbose"]) == 0
    table = capsys.readouterr().out
    assert "chain lsd (dB)" in table and "LayoutError" in table and " err " not in table


def test_a_mistake_not_separable_on_a_users_clip_is_shown_as_such_not_as_a_failure(clip, capsys, monkeypatch):
    """A 'mistake' that does not change this clip (here: the correct front-end declared a mistake) cannot be
    told apart on it: the summary says so and the exit code stays 0; on a golden clip it would be MISSED."""
    from harness.signal import frontend

    monkeypatch.setitem(frontend._REGISTRY, "same-as-audioldm2",
                        frontend.Frontend("same-as-audioldm2", frontend.get_frontend("audioldm2").fn, False, "test"))
    args = ["matrix", "--json", str(clip), "--frontend", "audioldm2", "--frontend", "same-as-audioldm2",
            "--vae", "scaled", "--vocoder", "hifigan"]
    assert cli.main(args) == 0
    status = {r.frontend: r.status for r in map(Record.from_dict, json.loads(capsys.readouterr().out))}
    assert status == {"audioldm2": "yardstick", "same-as-audioldm2": "not separable"}
    assert cli.main(args[:1] + args[2:]) == 0
    out = capsys.readouterr().out
    assert "1 not separable on these clips" in out and "verdict: OK" in out
    stages = {"frontend": StageRecord(Expected.DETECT, False, None, Policy.ABSOLUTE, "clip:music", None, None)}
    assert verdicts.Judge.status(Expected.DETECT, False, stages) == "MISSED"
    assert verdicts.Judge.status(Expected.PASS, False, stages) == "FAIL"


def test_every_command_and_option_is_documented_with_valid_examples():
    """Help text on every option, defaults shown, examples under every command that parse as written,
    commands in the order a user needs them."""
    import argparse
    import re
    import shlex

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices)[:3] == ["matrix", "diagnose", "mel"]
    for name, p in sub.choices.items():
        assert p.epilog and p.epilog.startswith("examples:"), name
        examples = [line.strip() for line in p.epilog.splitlines()[1:]]
        assert examples, name
        for line in examples:
            command = re.split(r"\s{2,}", line)[0]
            if command.startswith("torchrun "):  # a launcher's line: what follows -m is the command
                command = "harness " + command.split(" -m harness ", 1)[1]
            assert command.startswith(f"harness {name}"), (name, line)
            parser.parse_args(shlex.split(command)[1:])  # a renamed option breaks its example here
        text = " ".join(p.format_help().split())
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.dest)
            if action.default not in (None, False) and action.option_strings:
                assert "default" in action.help or f"(default: {action.default})" in text, (name, action.dest)
    for line in parser.epilog.splitlines()[1:-1]:
        command = re.split(r"\s{2,}", line.strip())[0]
        if command.startswith("harness "):
            parser.parse_args(shlex.split(command)[1:])


def test_harness_help_imports_no_torch():
    """The options are made from :mod:`harness.vocabulary` (the components, their defaults, the scopes), never
    from the engines that load torch."""
    code = """
import contextlib, io, sys
from harness.surfaces import cli
for argv in ([], ["thresholds"], ["golden"], ["matrix"], ["diagnose"], ["mel"]):
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        cli.main(argv + ["--help"])
print("LOADED", sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "LOADED []"


def test_the_component_options_default_to_the_correct_components():
    parser = cli.build_parser()
    assert vars(parser.parse_args(["diagnose", "x.wav"]))["vae"] == "scaled"
    assert parser.parse_args(["matrix", "--vae", "scaled", "--vae", "sample"]).vae == ["scaled", "sample"]


def _unusable_paths(root):
    """Every kind of path a command must skip, named with its reason: ``{path: reason}``."""
    (root / "empty").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no audio here")
    (root / "broken").mkdir()
    for i in range(3):
        (root / "broken" / f"b{i}.wav").write_bytes(b"not audio")
    return {str(root / "empty"): "empty directory", str(root / "notes"): "directory without a usable file",
            str(root / "missing.wav"): "file not found", str(root / "broken"): "none of its 3 file(s) could be used",
            str(root / "broken" / "b0.wav"): "not a readable audio file"}


@pytest.mark.parametrize("command", [["matrix"], ["diagnose", "--out", "{out}"], ["mel", "--out", "{out}"]])
def test_nothing_evaluated_exits_2_and_names_every_path_with_its_reason(tmp_path, capsys, command):
    bad = _unusable_paths(tmp_path)
    argv = [a.format(out=tmp_path / "out") for a in command]
    for paths in ([str(tmp_path / "empty")], [p for p in bad if not p.endswith("b0.wav")]):
        assert cli.main(argv + paths) == 2, paths
        err = capsys.readouterr().err.strip().splitlines()
        for path, reason in bad.items():
            if path in paths or (path.endswith("b0.wav") and len(paths) > 1):
                assert any(path in line and reason in line for line in err), (path, reason, err)
        assert err[-1].startswith("harness: error: nothing ") and "no usable file" in err[-1], err


def test_a_path_skipped_beside_usable_files_is_named_and_fails_the_command(clip, tmp_path, capsys):
    empty = tmp_path / "new-data"
    empty.mkdir()
    assert cli.main(["mel", str(clip), str(empty), "--out", str(tmp_path / "mels")]) == 2
    assert (tmp_path / "mels" / "music.npy").exists()
    assert f"{empty}: empty directory" in capsys.readouterr().err
