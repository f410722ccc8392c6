"""The speed gate on figures with known noise: quiet on unchanged code, failing on a real slowdown with its
interval, refusing what it cannot judge; the baseline file's round trip and its damage; the history's steps."""
import json
import math
import random

import pytest

from harness.errors import InputError
from harness.surfaces import job_summary
from harness.surfaces.bench import gate as speed
from harness.surfaces.bench import history

PROFILE = {"conv2d": 0.004, "conv1d": 0.003, "fft": 0.0025, "matmul": 0.0015}
NAME = "tests/test_speed.py::test_bench_variant[vocoder-ours]"


def info(figure=12.0, noise=0.02, rounds=7, threads=2, seed=0, memory=800 << 20, profile=PROFILE, device="cpu",
         dtype="fp32"):
    """A benchmark's extra_info as Bench records it: rounds around ``figure`` reference units, log-normal noise."""
    rng = random.Random(seed)
    ref = sum(profile.values())
    norm = [figure * math.exp(rng.gauss(0, noise)) for _ in range(rounds)]
    return {"normalised_rounds": norm, "round_seconds": [n * ref for n in norm], "threads": threads,
            "reference_profile": dict(profile), "peak_memory_bytes": memory, "device": device, "dtype": dtype}


def run_doc(seed, shift=0.0, threads=2, figure=12.0):
    """A pytest-benchmark document of one calibration run; the run as a whole moved by ``shift`` (log units)."""
    return {"benchmarks": [{"name": NAME.split("::")[1], "fullname": NAME,
                            "extra_info": info(figure * math.exp(shift), threads=threads, seed=seed)}]}


@pytest.fixture
def baseline():
    rng = random.Random(7)
    runs = [run_doc(s, rng.gauss(0, 0.02), t, 12.0 if t == 2 else 12.6) for s in range(3) for t in (2, 1)]
    return speed.fit(runs, speed.Rule(), {"command": "harness bench --calibrate tests/test_speed.py"})


def test_unchanged_code_passes_and_a_real_slowdown_fails_with_its_interval(baseline):
    gate = speed.SpeedGate(baseline, "speed.json")
    quiet = [gate.judge(NAME, info(12.0 * math.exp(random.Random(s).gauss(0, 0.02)), seed=100 + s)) for s in range(20)]
    assert all(v.outcome == speed.SpeedOutcome.PASS for v in quiet), [v.short() for v in quiet]
    slower = gate.judge(NAME, info(12.0 * 1.3, seed=5))
    assert slower.outcome == speed.SpeedOutcome.SLOWER and slower.fails
    assert slower.low < 1.3 < slower.high and 1.25 < slower.ratio < 1.35
    text = slower.message()
    assert NAME in text and "x slower (" in text and "fails" in text
    assert "harness bench --calibrate --baseline speed.json" in text  # how to accept an intended change
    assert speed.SpeedGate(baseline, "speed.json").judge(NAME, info(12.0 / 1.5, seed=6)).outcome == \
        speed.SpeedOutcome.FASTER


def test_a_slowdown_under_the_minimum_effect_passes(baseline):
    """Significant but small: 5 % more time against a 10 % minimum effect passes; at 2 % minimum effect it fails."""
    run = info(12.0 * 1.05, noise=0.001, seed=3)
    assert speed.SpeedGate(baseline, "s.json").judge(NAME, run).outcome == speed.SpeedOutcome.PASS
    tight = speed.fit([run_doc(s, 0.0) for s in range(3)], speed.Rule(floor=0.001))
    tight.entries[NAME][2].between = 0.001
    assert speed.SpeedGate(tight, "s.json", min_effect=0.02).judge(NAME, run).outcome == speed.SpeedOutcome.SLOWER


def test_other_threads_are_judged_against_the_nearest_with_the_calibrated_drift(baseline):
    assert baseline.thread_drift(NAME) == pytest.approx(math.log(12.6 / 12.0), abs=0.03)
    gate = speed.SpeedGate(baseline, "s.json")
    verdict = gate.judge(NAME, info(12.6, threads=1, seed=9))
    assert verdict.baseline_threads == 1 and verdict.outcome == speed.SpeedOutcome.PASS
    four = gate.judge(NAME, info(12.6, threads=4, seed=9))  # nearest calibrated: 2, the interval widened
    assert four.baseline_threads == 2 and four.outcome == speed.SpeedOutcome.PASS
    assert "lie 0.0" in four.reason


def test_what_cannot_be_judged_is_refused_never_failed(baseline, monkeypatch):
    gate = speed.SpeedGate(baseline, "s.json")
    other = gate.judge(NAME, info(30.0, device="cuda:0"))
    assert other.outcome == speed.SpeedOutcome.INCOMPARABLE and not other.fails and "cuda" in other.reason
    assert gate.judge("tests/x.py::test_new", info()).outcome == speed.SpeedOutcome.NEW
    # another processor whose kernels keep their relative speeds: judged by the normalised figure
    monkeypatch.setattr(speed, "machine_fingerprint", lambda: {"cpu": "Another CPU", "cores": 8, "gpu": None})
    travelled = speed.SpeedGate(baseline, "s.json")
    assert travelled.judge(NAME, info(12.0, profile={k: v / 3 for k, v in PROFILE.items()})).outcome == \
        speed.SpeedOutcome.PASS
    assert travelled.judge(NAME, info(24.0, profile={k: v / 3 for k, v in PROFILE.items()})).fails
    # ... whose FFT is relatively 2x slower: reference units do not carry over, the gate says so
    skewed = dict(PROFILE, fft=PROFILE["fft"] * 3)
    refused = travelled.judge(NAME, info(40.0, profile=skewed))
    assert refused.outcome == speed.SpeedOutcome.INCOMPARABLE and "fft" in refused.reason
    assert "harness bench --calibrate" in refused.rebaseline


def test_peak_memory_is_gated(baseline):
    gate = speed.SpeedGate(baseline, "s.json")
    assert gate.judge(NAME, info(memory=820 << 20)).outcome == speed.SpeedOutcome.PASS
    more = gate.judge(NAME, info(memory=1200 << 20))
    assert more.outcome == speed.SpeedOutcome.MORE_MEMORY and more.fails and "peak memory" in more.reason


def test_the_baseline_file_round_trips_and_damage_names_the_command(baseline, tmp_path):
    path = baseline.save(tmp_path / "speed.json")
    again = speed.SpeedBaseline.load(path)
    assert again.to_json() == baseline.to_json()
    data = json.loads(path.read_text())
    assert data["format"] == speed.BASELINE_FORMAT and data["provenance"]["versions"].startswith("audioldm2-harness==")
    assert data["provenance"]["machine"]["cpu"] and data["rule"]["min_effect"] == 0.10
    for text, why in [(None, "no speed baseline"), ("{not json", "not a readable"),
                      (json.dumps({**data, "format": 99}), "format 99"),
                      (json.dumps({**data, "benchmarks": {"x": {"2": {"center": 1}}}}), "damaged")]:
        bad = tmp_path / "bad.json"
        bad.unlink(missing_ok=True)
        if text is not None:
            bad.write_text(text)
        with pytest.raises(InputError, match=why) as err:
            speed.SpeedBaseline.load(bad)
        assert "harness bench --calibrate" in str(err.value)


def test_fit_refuses_runs_without_reference_units():
    with pytest.raises(InputError, match="reference units"):
        speed.fit([{"benchmarks": [{"name": "t", "extra_info": {"stage": "x"}}]}])


def test_change_points_find_a_step_and_nothing_in_noise():
    rng = random.Random(1)
    flat = [10 * math.exp(rng.gauss(0, 0.02)) for _ in range(12)]
    assert history.change_points(flat) == []
    stepped = flat[:6] + [v * 1.3 for v in flat[6:]]
    (at, ratio), = history.change_points(stepped)
    assert at == 6 and 1.25 < ratio < 1.35
    small = flat[:6] + [v * 1.05 for v in flat[6:]]  # under the minimum effect
    assert history.change_points(small) == []


def test_speed_rows_in_the_job_summary(baseline):
    gate = speed.SpeedGate(baseline, "s.json")
    fails = gate.judge(NAME, info(12.0 * 1.31, seed=4))
    passes = gate.judge("tests/test_speed.py::test_bench_variant[vae-scaled]", info(seed=4))
    text = job_summary.markdown([("t2", "passed", dict(passes.properties())),
                                 ("t1", "failed", dict(fails.properties()))])
    assert "# AudioLDM2 reconstruction speed" in text and "quality tests" not in text
    table = text[text.index("| benchmark |"):]
    first, second = [ln for ln in table.splitlines()[2:4]]
    assert "vocoder-ours" in first and "**FAILS**" in first and "x slower (" in first
    assert "vae-scaled" in second and "new: not in the baseline" in second
