"""`harness bench`: the table and ratios printed from a pytest-benchmark JSON, the gated run command, the history."""
import json
import os

import pytest

from harness.surfaces import bench, cli


def _bench(name, group, mean, **info):
    return {"name": name, "group": group, "stats": {"mean": mean, "min": mean * 0.9, "rounds": 3},
            "extra_info": info}


def _cfg(**kw):
    return {"model_size": "real", "batch": 4, "clip_seconds": 10.24, "device": "cpu", "dtype": "fp32", "threads": 2,
            **kw}


@pytest.fixture
def doc():
    speed = lambda mean, b=4: {"audio_seconds_per_second": b * 10.24 / mean, "realtime_factor": 10.24 / mean}  # noqa
    return {
        "datetime": "2026-01-01T00:00:00", "machine_info": {"node": "box", "cpu": {"brand_raw": "Some CPU"}},
        "benchmarks": [
            _bench("test_bench_stage[encode-real-10.24s-4]", "stages", 2.0, stage="encode", impl="harness",
                   peak_fraction=0.5, **speed(2.0), **_cfg()),
            _bench("test_bench_stage[decode-real-10.24s-4]", "stages", 4.0, stage="decode", impl="harness",
                   peak_fraction=0.8765, **speed(4.0), **_cfg()),
            _bench("test_bench_stage[vocode-real-10.24s-4]", "stages", 4.0, stage="vocode", impl="harness",
                   peak_fraction=0.9, **speed(4.0), **_cfg()),
            _bench("test_bench_harness_overhead[real-10.24s-4]", "overhead", 0.5, stage="harness-overhead",
                   impl="harness", **speed(0.5), **_cfg()),
            _bench("test_bench_batched_vs_naive[batched-real-10.24s]", "batched-vs-naive", 10.0, stage="roundtrip",
                   impl="batched", **speed(10.0), **_cfg()),
            _bench("test_bench_batched_vs_naive[naive-real-10.24s]", "batched-vs-naive", 15.0, stage="roundtrip",
                   impl="naive", **speed(15.0), **_cfg()),
            # the front-end benchmark without model fields, impl read from the name
            _bench("test_bench_audioldm2_torch", "frontend", 0.1),
            _bench("test_bench_audioldm2_librosa", "frontend", 1.25),
        ],
    }


def test_table_rows_and_columns(doc):
    table = bench.format_table(bench.rows(doc))
    lines = table.splitlines()
    assert lines[0].split() == ["stage", "impl", "model", "batch", "clip", "s", "device", "dtype", "thr", "mean", "s",
                                "audio-s/s", "x", "realtime", "%", "peak"]
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + len(doc["benchmarks"])
    decode = next(line for line in lines if line.startswith("decode"))
    assert decode.split() == ["decode", "harness", "real", "4", "10.24", "cpu", "fp32", "2", "4", "10.2", "2.6", "87.6"]
    torch_fe = next(line for line in lines if "torch" in line)
    assert torch_fe.split()[:2] == ["frontend", "torch"] and torch_fe.split()[-1] == "-"  # no FLOPs: no % peak
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule aligned


def test_ratios(doc):
    text = bench.format_ratios(bench.rows(doc))
    assert "front-end torch vs librosa: 12.50x" in text
    assert "harness chain vs naive clip-by-clip (real b4 10.24s cpu fp32): 1.50x" in text
    assert "harness overhead" in text and "5.0% of model time" in text  # 0.5 s vs 2 + 4 + 4 s


def test_cli_prints_newest(doc, tmp_path, capsys):
    old, new = tmp_path / "m" / "0001_old.json", tmp_path / "m" / "0002_new.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"benchmarks": [_bench("test_old", "stages", 1.0, stage="old")]}))
    new.write_text(json.dumps(doc))
    os.utime(old, (1, 1))
    assert bench.newest_json(str(tmp_path)) == new
    assert cli.main(["bench", "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0002_new.json" in out and "decode" in out and "test_old" not in out
    assert cli.main(["bench", str(old)]) == 0
    assert "old" in capsys.readouterr().out


def test_cli_without_results_fails_clearly(tmp_path, capsys):
    assert cli.main(["bench", "--storage", str(tmp_path / "none")]) == 2
    assert "no pytest-benchmark JSON" in capsys.readouterr().err


def test_the_run_command_gates_only_against_a_calibrated_baseline(tmp_path, monkeypatch):
    from harness.surfaces.bench import runner

    monkeypatch.chdir(tmp_path)
    storage = tmp_path / ".benchmarks"
    cmd = runner.pytest_command(["-k", "tiny"], str(storage))
    assert "--benchmark-autosave" in cmd and "--harness-speed-baseline=off" in cmd
    assert not any(a.startswith("--benchmark-compare") for a in cmd)  # no fixed percentage anywhere
    assert cmd[-2:] == ["-k", "tiny"]  # no tests/benchmarks here: pytest's own testpaths
    (tmp_path / "tests" / "benchmarks").mkdir(parents=True)
    assert runner.pytest_command(["-k", "tiny"], str(storage), "b.json", threads=1)[-5:] == [
        "--harness-speed-baseline=b.json", "--harness-speed-threads=1", "tests/benchmarks", "-k", "tiny"]
    assert runner.thread_counts(2) == [2, 1] and runner.thread_counts(1) == [1]


def test_history_of_saved_runs_names_a_step(tmp_path, capsys):
    """Every saved run kept; a benchmark whose figure stepped up 30 % three runs ago is named with the step."""
    from tests.test_speed_gate import info

    storage = tmp_path / ".benchmarks" / "Linux"
    storage.mkdir(parents=True)
    for i in range(8):
        rec = info(10.0 * (1.3 if i >= 5 else 1.0), seed=i)
        doc = {"datetime": f"2026-01-0{i + 1}T00:00:00", "benchmarks": [
            {"name": "test_b", "fullname": "t.py::test_b", "extra_info": rec, "group": "g",
             "stats": {"mean": 0.1, "min": 0.1, "rounds": 7}}]}
        (storage / f"000{i + 1}_run.json").write_text(json.dumps(doc))
    assert cli.main(["bench", "--storage", str(tmp_path / ".benchmarks"), "--history"]) == 0
    out = capsys.readouterr().out
    assert "t.py::test_b [2 thread(s)]: 8 runs" in out and "step x1.29" in out and "at run 5 (2026-01-06" in out


def test_plot_run_and_history(doc, tmp_path, capsys):
    """``harness bench --plot``: the newest run and every benchmark's history in reference units, in one PNG."""
    from harness.surfaces.bench import plot as bench_plot
    from tests.test_speed_gate import info

    storage = tmp_path / ".benchmarks"
    (storage / "m").mkdir(parents=True)
    for i, slow in enumerate([1.0, 1.02, 0.99, 1.5, 1.49, 1.52]):
        run = json.loads(json.dumps(doc))
        run["datetime"] = f"2026-01-0{i + 1}T00:00:00"
        run["benchmarks"][1]["extra_info"].update(info(10.0 * slow, seed=i))
        (storage / "m" / f"000{i + 1}_run.json").write_text(json.dumps(run))
    png = tmp_path / "bench.png"
    assert cli.main(["bench", "--storage", str(storage), "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000

    with pytest.raises(ValueError, match="no benchmark with a throughput"):
        bench_plot.plot({"benchmarks": [_bench("test_x", "stages", 1.0)]}, {}, str(tmp_path / "x.png"))
