"""The whole chain of a known mistake: measured past its culprit stage when asked, asserted where separated."""
import pytest

from harness.judging import matrix, quality, thresholds
from harness.judging.stages import NOT_MEASURED

REPORT_CHAIN = matrix.Combination("seed-librosa-db", "scaled", "hifigan")  # the original report's chain


def test_a_judged_only_run_stops_at_the_culprit_unless_a_later_stage_is_named(harness_chain, golden_set):
    run = quality.MatrixRun(harness_chain, golden_set, judged_only=True)
    assert run.result(REPORT_CHAIN)["chain"] == run.result(REPORT_CHAIN)["vae"] == NOT_MEASURED
    named = run.result(REPORT_CHAIN, upto="chain")
    assert named["chain"].error is None and len(named["chain"].metrics["mel_l1"]) == len(run.clip_names)
    assert run.result(REPORT_CHAIN)["chain"] is named["chain"]  # cached: the deeper result is kept


def test_the_bundled_model_asserts_the_original_reports_chain_at_the_chain_stage(harness_options):
    """Calibration decides where a mistake's whole chain is asserted; on the bundled model the report's own
    chain (``librosa.power_to_db / 20`` into the VAE) must stay clearly separated from the correct one."""
    if harness_options["model"] != "tiny":
        pytest.skip("a fact about the bundled model's calibration")
    path = harness_options["golden_dir"] / thresholds.file_name(harness_options["dtype"])
    if not path.exists():
        pytest.skip(f"no {harness_options['dtype']} thresholds")
    entry = thresholds.load(path)[thresholds.table_key(REPORT_CHAIN.id, "chain")]
    assert entry["expected"] == "detect", entry.get("not_asserted")
    assert entry["detect_ratio_min"] >= 1 + thresholds.CHAIN_DETECT_HEADROOM
