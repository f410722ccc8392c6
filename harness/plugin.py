"""pytest plugin of audioldm2-harness: command-line options and fixtures only.

Registered through the ``pytest11`` entry point, so ``pip install audioldm2-harness`` is enough.
The logic lives in :mod:`harness.quality` (``check()``), :mod:`harness.golden` and :mod:`harness.chain`.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    """Declare the ``--model``/``--golden-dir``/``--dtype``/``--device`` options and the ini options."""
    group = parser.getgroup("audioldm2-harness", "AudioLDM2 reconstruction-chain quality")
    group.addoption("--model", default="tiny", help="model under test: bundled name (tiny), local diffusers "
                    "directory or hub id (default: tiny)")
    group.addoption("--golden-dir", default=None, help="golden directory of the model under test; write "
                    "--golden-dir=PATH (default: <harness_golden_dir>/<model-slug> if that ini option is set, else "
                    "<rootdir>/golden/<model-slug> if it exists, else the copy shipped with a bundled model)")
    group.addoption("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    group.addoption("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="model dtype (default: fp32)")
    group.addoption("--report-dir", default="reports", help="where failing quality tests write evidence "
                    "(WAVs and mel PNGs); default: reports/")
    group.addoption("--regen-golden", action="store_true", help="regenerate the goldens of --model with the "
                    "full pipeline and re-calibrate thresholds before testing (explicit, never silent)")
    parser.addini("harness_golden_dir", help="directory of your project's goldens, one subdirectory per model "
                  "(made by `harness golden --model MODEL --out DIR/<model-slug>`), relative to the ini file; once "
                  "set, goldens must be there (no fallback to the shipped copy)", default=None)
    group.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    group.addoption("--allow-missing-goldens", action="store_true", help="skip the quality tests of a model "
                    "without goldens, thresholds or weights instead of failing them (default: fail, naming the "
                    "command that makes them: a run that tested nothing must not look green)")


def pytest_configure(config):
    """Register the markers, load users' variants, share the cores among xdist workers."""
    _share_cores_among_xdist_workers(config)
    args = list(config.invocation_params.args)
    if "--golden-dir" in args:
        # pytest picks its rootdir before plugins declare their options, so it took PATH for a test path
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            "write --golden-dir=PATH (with '='): in the form '--golden-dir PATH' pytest takes PATH for a test "
            f"path when it chooses its rootdir (now {config.rootpath}); or set harness_golden_dir in your ini "
            "file"), stacklevel=2)
    for marker in ("slow: takes minutes on CPU (run with --run-slow)",
                   "gpu: needs CUDA (skipped without it)",
                   "real_model: needs a real AudioLDM2 checkpoint (--model cvssp/audioldm2 or a local copy)"):
        config.addinivalue_line("markers", marker)
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the pytest-xdist controller collects and runs nothing: its workers import the variants
    from .entry_points import load_entry_points

    load_entry_points()


def _share_cores_among_xdist_workers(config) -> None:
    """Under pytest-xdist: torch threads per worker = cores / workers (two workers of two threads each
    on two cores thrash), and ``-n N`` distributes by group (``--dist loadgroup``, scheduled by
    :func:`pytest_xdist_make_scheduler`) so tests that share expensive stages run in one process, which
    computes them once."""
    import os

    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))
    if getattr(config.option, "dist", None) == "load" and getattr(config.option, "numprocesses", None):
        config.option.dist = "loadgroup"


#: the xdist group of the tests of each golden stage (:meth:`harness.quality.MatrixRun.golden`): the VAE's
#: decode and round trip, the vocoder, the front-ends
GOLDEN_GROUP = {"decode": "golden-vae", "roundtrip": "golden-vae", "vocoder": "golden-vocoder",
                "frontend": "golden-frontend"}


def _combination_group(combo) -> str:
    """The stage-sharing group of a combination's tests: its front-end (every stage of a combination is
    computed from the front-end's mel, and the VAE reference a combination is judged against is the
    ``scaled`` round trip of that same mel, so front-end groups share little)."""
    if combo.culprit() == "vae":
        # its own round trip and the ``scaled`` one (recomputed here, 1 of 5 round trips), and the chain
        # heard from its own round trip, are all it needs, so a front-end's VAE mistakes make a unit of their own
        return f"frontend-{combo.frontend}-vae-mistakes"
    return f"frontend-{combo.frontend}"


def _xdist_group(item) -> str | None:
    """The stage-sharing group of a quality test (its combination's, or its golden stage's), else None."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "combination" in params:
        return _combination_group(params["combination"])
    if "golden_stage" in params:
        return GOLDEN_GROUP[params["golden_stage"][0]]
    return None


def xdist_groups() -> dict:
    """Test id (the part of a node id between ``[`` and ``]``) -> stage-sharing group, for every test id the
    plugin parametrizes (:func:`pytest_generate_tests`)."""
    from . import matrix

    groups = {f"{c.id}:{s}": _combination_group(c) for c, s in matrix.clip_stage_names()}
    groups.update({c.id: _combination_group(c) for c in matrix.combinations()})
    groups.update({f"{s}-{n}": GOLDEN_GROUP[s] for s, n in matrix.golden_stage_names()})
    return groups


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist, on the controller: under ``--dist loadgroup``, schedule the quality tests by their
    stage-sharing group, read from the test id. xdist's own grouping rewrites node ids on the workers,
    which pytest 9.2's structured node ids no longer allow; a test id of ours names its group
    (:func:`xdist_groups`), and every other test keeps xdist's rule (its ``xdist_group`` suffix where
    the running pytest still adds one, else a unit of its own)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    from .entry_points import load_entry_points

    load_entry_points()
    groups = xdist_groups()

    class HarnessGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if "@" not in nodeid[nodeid.rfind("]"):]:
                group = groups.get(nodeid[nodeid.find("[") + 1: nodeid.rfind("]")]) if "[" in nodeid else None
                if group is not None:
                    return group
            return super()._split_scope(nodeid)

    return HarnessGroupScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """Skip ``slow``/``gpu``/``real_model`` tests whose needs this run does not meet."""
    import torch

    from . import loading

    real = config.getoption("--model") not in loading.BUNDLED
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="gpu: CUDA is not available on this machine"))
        if "real_model" in item.keywords and not real:
            item.add_marker(pytest.mark.skip(reason="real_model: pass --model cvssp/audioldm2 (or a local copy of "
                                             "its weights) to run it"))


def pytest_generate_tests(metafunc):
    """Tests asking for ``combination`` run once per front-end x VAE x vocoder (registered ones included)."""
    from . import matrix

    names = metafunc.fixturenames
    if "combination" in names and "clip_stage" in names:
        pairs = matrix.clip_stage_names()
        metafunc.parametrize(("combination", "clip_stage"), pairs, ids=[f"{c.id}:{s}" for c, s in pairs])
    elif "combination" in names:
        combos = matrix.combinations()
        metafunc.parametrize("combination", combos, ids=[c.id for c in combos])
    if "golden_stage" in names:
        pairs = matrix.golden_stage_names()
        metafunc.parametrize("golden_stage", pairs, ids=[f"{s}-{n}" for s, n in pairs])


@pytest.fixture(scope="session")
def harness_options(request):
    """The harness options of this run as a dict (model, golden_dir, device, dtype, report_dir).

    ``golden_dir`` is ``--golden-dir``; else ``<harness_golden_dir>/<model-slug>`` when that ini option is
    set; else ``<rootdir>/golden/<model-slug>`` when it exists; else the copy shipped with a bundled
    model (:func:`harness.golden.locate`).

    Example::

        def test_uses_gpu(harness_options):
            assert harness_options["device"] in ("cpu", "cuda")
    """
    from . import golden
    from .loading import model_slug

    cfg = request.config
    model = cfg.getoption("--model")
    root = cfg.getini("harness_golden_dir")
    if root:
        root = Path(cfg.inipath).parent / root if cfg.inipath else Path(cfg.rootpath) / root
    elif cfg.getoption("--regen-golden") or (Path(cfg.rootpath) / "golden" / model_slug(model)).exists():
        root = Path(cfg.rootpath) / "golden"
    golden_dir = golden.locate(model, cfg.getoption("--golden-dir"), root)
    return {"model": model, "golden_dir": Path(golden_dir), "device": cfg.getoption("--device"),
            "dtype": cfg.getoption("--dtype"), "report_dir": Path(cfg.getoption("--report-dir")),
            "regen": cfg.getoption("--regen-golden"), "allow_missing": cfg.getoption("--allow-missing-goldens")}


def missing(harness_options, message: str):
    """Fail (default) or, under ``--allow-missing-goldens``, skip a test whose goldens/thresholds/weights
    are missing; ``message`` names what is missing and the command that makes it."""
    __tracebackhide__ = True
    if harness_options["allow_missing"]:
        pytest.skip(message)
    pytest.fail(f"{message} (or pass --allow-missing-goldens to skip these tests)", pytrace=False)


@pytest.fixture(scope="session")
def harness_chain(harness_options):
    """The VAE + vocoder under test (:class:`harness.chain.Chain`); fails (or, with ``--allow-missing-goldens``,
    skips) if the weights are not available.

    Example::

        def test_vocoder_length(harness_chain):
            mel = torch.zeros(1, 1, 8, 64)
            assert harness_chain.vocode(mel).shape == (1, 1280)
    """
    from .chain import Chain
    from .loading import ModelNotAvailable

    try:
        return Chain.load(harness_options["model"], harness_options["device"], harness_options["dtype"])
    except ModelNotAvailable as exc:
        missing(harness_options, f"model not available: {exc}")


@pytest.fixture(scope="session")
def golden_set(harness_options, request):
    """The checked golden set of the model under test (:class:`harness.golden.GoldenSet`).

    Fails with the command to run when the model has no goldens (skips under ``--allow-missing-goldens``);
    regenerates them first under
    ``--regen-golden``. An edited or truncated golden file fails here, naming the file.

    Example::

        def test_cases(golden_set):
            assert all(c.mel.shape[1] == 64 for c in golden_set.cases)
    """
    from . import calibration, golden

    root = harness_options["golden_dir"]
    if harness_options["regen"]:
        golden.generate(harness_options["model"], root, harness_options["device"], harness_options["dtype"])
        calibration.calibrate(request.getfixturevalue("harness_chain"), root)
    # checked before any model is loaded: a missing or edited golden fails in a second, not after the load
    if not (root / "manifest.json").exists():
        missing(harness_options, f"no goldens in {root}: run `harness golden --model {harness_options['model']} --out {root}` "
                    "(or pytest --regen-golden)")
    return golden.load(root)


@pytest.fixture(scope="session")
def harness_matrix(golden_set, harness_chain):
    """Lazily evaluated quality matrix over the goldens and reference clips (:class:`harness.quality.MatrixRun`).

    Example::

        def test_chain(harness_matrix, combination):
            result = harness_matrix.result(combination)["chain"]
    """
    from .quality import MatrixRun

    return MatrixRun(harness_chain, golden_set)


@pytest.fixture(scope="session")
def harness_quality(harness_options, golden_set):
    """Judges a stage result against ``thresholds.toml``; on failure prints a table and writes evidence.

    Example::

        def test_quality(harness_matrix, harness_quality, combination, clip_stage):
            result = harness_matrix.result(combination, upto=clip_stage)[clip_stage]
            harness_quality.check(combination, clip_stage, result,
                                  harness_quality.expected(combination, clip_stage))
    """
    from . import machine, thresholds
    from .errors import GoldenError
    from .loading import resolve_device
    from .quality import QualityCheck

    dtype = harness_options["dtype"]
    path = harness_options["golden_dir"] / thresholds.file_name(dtype)
    if not path.exists():
        # limits of another precision are never borrowed: a bf16 chain legitimately differs from fp32
        missing(harness_options, f"no {dtype} thresholds in {path}: run `harness thresholds --calibrate --model "
                                 f"{harness_options['model']} --dtype {dtype} --device {harness_options['device']} "
                                 f"--golden-dir={harness_options['golden_dir']}`")
    data = thresholds.load(path)
    try:
        thresholds.check_weights(data, golden_set.manifest, path)
        # low-precision limits of other kernels would fail correct chains
        thresholds.check_kernel_path(data, machine.kernel_path(str(resolve_device(harness_options["device"]))), path)
    except GoldenError as exc:  # limits of another model or kernel path: every verdict would be meaningless
        pytest.fail(str(exc), pytrace=False)
    return QualityCheck(data, harness_options["report_dir"], harness_options["allow_missing"],
                        golden_dir=harness_options["golden_dir"])
