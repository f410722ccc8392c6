"""Whatever a project's component returns or raises, every stage it runs at ends in a clean test failure (never
an error of the run) naming the component and what was wrong, with evidence of its output as it came; and a
failure downstream of a project's variant whose output differs from the built-in it replaces names that
variant, not the correct built-in (exact rewrites still pass)."""
import re

import pytest
from user_project import run_shipped_suite

pytest_plugins = ["pytester"]

#: what a failure must say about each malformed output (the component is named besides)
REASON = {
    "frames": r"frames|samples for \d+ frames", "bins": r"shape", "dtype": r"dtype", "nan": r"NaN",
    "tuple": r"tuple", "numpy": r"ndarray", "list": r"list", "raises": r"raised KeyError",
}
#: every stage each kind of component runs at, as test-id prefixes (clip matrix and golden stages)
STAGES = {
    "fe": ("front-end", ["test_matrix[bad-fe-{k}-scaled-hifigan:frontend]", "test_golden_stage[frontend-bad-fe-{k}]"]),
    "vae": ("VAE variant", ["test_matrix[audioldm2-bad-vae-{k}-hifigan:vae]", "test_golden_stage[decode-bad-vae-{k}]",
                            "test_golden_stage[roundtrip-bad-vae-{k}]"]),
    "voc": ("vocoder", ["test_matrix[audioldm2-scaled-bad-voc-{k}:vocoder]", "test_golden_stage[vocoder-bad-voc-{k}]"]),
}
#: the default suite's representative subset: each malformed output once, spread over the three kinds
FAST = {"fe": ["frames", "dtype", "list"], "vae": ["bins", "tuple", "raises"], "voc": ["nan", "numpy"]}


def _section(out: str, test_id: str) -> str:
    return out.split(f"{test_id} _", 1)[1].split("\n___", 1)[0]


def _run_malformed(pytester, harness_options, chosen, monkeypatch):
    # only the chosen variants are registered: each one multiplies the matrix the project collects
    monkeypatch.setenv("HARNESS_TEST_MALFORMED", ",".join(f"{kind}-{k}" for kind, ks in chosen.items() for k in ks))
    ids = {(kind, k): [p.format(k=k) for p in STAGES[kind][1]] for kind, ks in chosen.items() for k in ks}
    planted = ["test_golden_stage[frontend-ours-hop256]", "test_matrix[ours-hop256-scaled-hifigan:frontend]",
               "test_golden_stage[vocoder-ours-short]", "test_matrix[audioldm2-scaled-ours-short:vocoder]",
               "test_golden_stage[decode-ours-unscaled]", "test_matrix[audioldm2-ours-scale-off-griffin-lim:vocoder]",
               "test_matrix[audioldm2-exact-inverse-scale-griffin-lim:vocoder]",
               "test_matrix[audioldm2-exact-channels-last-griffin-lim:vocoder]"]
    result, outcomes = run_shipped_suite(pytester, harness_options, "malformed",
                                         [p for ps in ids.values() for p in ps] + planted,
                                         "--harness-report-dir", str(pytester.path / "reports"))
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "ERROR " not in out, out[-3000:]
    for (kind, k), tests in ids.items():
        name, what = f"bad-{kind}-{k}", STAGES[kind][0]
        for test in tests:
            test_id = test.split("[", 1)[0] + "[" + test.split("[", 1)[1]
            assert outcomes.get(test_id) == "FAILED", f"{test_id}: {outcomes.get(test_id)} (a clean failure expected)"
            failure = _section(out, test_id)
            assert f"culprit: {what} '{name}' (registered by this project)" in failure, failure
            assert re.search(REASON[k], failure), f"{test_id} does not say why ({REASON[k]}): {failure}"
            assert re.search(r"evidence: \S+", failure), failure
    return result, outcomes, out


def _check_planted(pytester, outcomes, out):
    for test in ("test_golden_stage[frontend-ours-hop256]", "test_matrix[ours-hop256-scaled-hifigan:frontend]",
                 "test_golden_stage[vocoder-ours-short]", "test_matrix[audioldm2-scaled-ours-short:vocoder]",
                 "test_golden_stage[decode-ours-unscaled]"):
        assert outcomes.get(test) == "FAILED", f"{test}: {outcomes.get(test)}"
    # the hop-256 front-end: its 160-frame mel is shown as it came, named in the message and drawn in a figure
    hop = _section(out, "test_golden_stage[frontend-ours-hop256]")
    assert "culprit: front-end 'ours-hop256' (registered by this project)" in hop, hop
    assert re.search(r"shape \(4, 1, 160, 64\), expected a log-mel \(4, 1, 256, 64\)", hop), hop
    evidence = pytester.path / "reports" / "golden-frontend-ours-hop256-frontend"
    assert sorted(p.name for p in evidence.glob("*-mel.png")), f"no figure in {evidence}"
    # the short vocoder's sentence is whole, the samples per frame it returned named
    short = _section(out, "test_golden_stage[vocoder-ours-short]")
    assert "fewer than the 40960 of the input (160 per frame; 128 per frame came back)" in short, short
    # a failure is written as the value against its limit, with the direction and the margin
    unscaled = _section(out, "test_golden_stage[decode-ours-unscaled]")
    assert re.search(r"FAIL: [\d.]+ nats > limit [\d.]+ nats \([\d.]+ % over\)", unscaled), unscaled
    # the built-in Griffin-Lim downstream of a decode 0.2 % off: the VAE is named, measured against `scaled`
    if outcomes.get("test_matrix[audioldm2-ours-scale-off-griffin-lim:vocoder]") == "FAILED":
        gl = _section(out, "test_matrix[audioldm2-ours-scale-off-griffin-lim:vocoder]")
        assert "culprit: VAE variant 'ours-scale-off' (registered by this project), likely" in gl, gl
        assert "differs from that of the built-in 'scaled' on the same input by" in gl, gl
    # exact rewrites of the scaled decode pass the same stage
    for exact in ("exact-inverse-scale", "exact-channels-last"):
        test = f"test_matrix[audioldm2-{exact}-griffin-lim:vocoder]"
        assert outcomes.get(test) == "PASSED", f"{test}: {outcomes.get(test)}"


def test_malformed_outputs_fail_cleanly_naming_the_component(pytester, harness_options, monkeypatch):
    result, outcomes, out = _run_malformed(pytester, harness_options, FAST, monkeypatch)
    _check_planted(pytester, outcomes, out)


@pytest.mark.slow
def test_every_malformed_output_at_every_stage_fails_cleanly(pytester, harness_options, monkeypatch):
    _run_malformed(pytester, harness_options, {kind: list(REASON) for kind in STAGES}, monkeypatch)
