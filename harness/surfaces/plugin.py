"""pytest plugin of audioldm2-harness: its settings, fixtures and parametrization, nothing else.

Registered through the ``pytest11`` entry point, so it is active in every pytest run of an environment
where the package is installed: a guest in other people's test suites. It therefore

* declares only ``--harness-*`` options and ``harness_*`` ini keys (:data:`SETTINGS`);
* acts only on tests that use its fixtures or its parameters (``combination``, ``clip_stage``,
  ``golden_stage``), and leaves a name to a project that defines a fixture or parametrization of its own;
* imports neither torch nor diffusers until such a test is collected, so a project without harness tests
  pays nothing (``-p no:audioldm2_harness`` turns the plugin off altogether).

The logic lives in :mod:`harness.surfaces.quality_check` (``check()``, answered by :mod:`harness.judging.quality`),
:mod:`harness.judging.golden`, :mod:`harness.model.chain` and
:mod:`harness.surfaces.job_summary` (``--harness-summary``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.vocabulary import COMPONENT_AT, GOLDEN_STAGES, PRECISIONS, PROPERTY_PREFIX

#: every setting: name -> (default, kind, help). The option is ``--harness-<name>`` (dashes), the ini key
#: ``harness_<name>``; a value on the command line wins over the ini file, which wins over the default.
SETTINGS = {
    "model": ("tiny", "string", "model under test: bundled name (tiny), local diffusers directory or hub id"),
    "golden_dir": (None, "string", "golden directory of the model under test, written --harness-golden-dir=PATH; "
                   "as an ini key, a directory of per-model goldens (<dir>/<model-slug>), relative to the ini file. "
                   "Default: <rootdir>/golden/<model-slug> if it exists, else the copy shipped with a bundled model"),
    "device": ("cpu", "string", "cpu, cuda, cuda:N or auto"),
    "dtype": ("fp32", "string", "precision of the model under test: fp32, bf16 or fp16"),
    "report_dir": ("reports", "string", "where failing quality tests write evidence (WAVs and mel figures)"),
    "summary": (None, "string", "write a Markdown summary of the quality tests to this file (failures first, "
                "figures closest to their limits, drift against the calibration), e.g. \"$GITHUB_STEP_SUMMARY\""),
    "html": (None, "string", "write a self-contained HTML page of the run into this directory (failures first, "
             "with golden and output audio players and mel figures), linked from --harness-summary"),
    "regen_golden": (False, "bool", "regenerate the goldens of the model with the full pipeline and re-calibrate "
                     "its thresholds before testing (explicit, never silent)"),
    "allow_missing_goldens": (False, "bool", "skip the quality tests of a model without goldens, thresholds or "
                              "weights instead of failing them (a run that tested nothing must not look green)"),
    "speed_baseline": (None, "string", "the calibrated speed baseline timed benchmarks are gated against "
                       "(`harness bench --calibrate` writes it), or off. Default: "
                       "<rootdir>/.benchmarks/speed-baseline.json if it exists, else no gate"),
    "speed_min_effect": (None, "string", "the smallest slowdown a speed gate fails on, as a fraction (0.10: a tenth "
                         "more time); default: the one recorded with the baseline"),
    "speed_threads": (None, "string", "torch threads of timed CPU benchmarks; default: the cores other work "
                      "leaves free"),
}
#: the parameters the plugin gives to tests that ask for them and that nobody else defines
PARAMETERS = ("combination", "clip_stage", "golden_stage", "harness_frontend", "harness_variant")


def pytest_addoption(parser):
    """Declare the ``--harness-*`` options and their ``harness_*`` ini keys."""
    group = parser.getgroup("audioldm2-harness", "AudioLDM2 reconstruction-chain quality (audioldm2-harness)")
    for name, (default, kind, text) in SETTINGS.items():
        option = "--harness-" + name.replace("_", "-")
        shown = f" (default: {default})" if default not in (None, False) else ""
        if kind == "bool":
            group.addoption(option, action="store_true", default=None, dest=f"harness_{name}", help=text + shown)
        else:
            group.addoption(option, default=None, dest=f"harness_{name}", metavar=name.upper(), help=text + shown)
        parser.addini(f"harness_{name}", text + shown, type="bool" if kind == "bool" else "string", default=None)


def setting(config, name: str):
    """The value of the harness setting ``name``: ``--harness-<name>`` if given, else the ini key
    ``harness_<name>``, else the default of :data:`SETTINGS`.

    Examples
    --------
    >>> setting(request.config, "model")   # doctest: +SKIP
    'tiny'
    """
    value = config.getoption(f"harness_{name}")
    if value is None:
        value = config.getini(f"harness_{name}")
    if value is None or value == "":
        value = SETTINGS[name][0]
    if name == "dtype" and value not in PRECISIONS:
        raise pytest.UsageError(f"harness dtype {value!r}: expected one of {', '.join(PRECISIONS)} "
                                "(--harness-dtype or the ini key harness_dtype)")
    return value


def pytest_configure(config):
    """Check the settings, warn about ``--harness-golden-dir PATH``, group the quality tests under pytest-xdist."""
    setting(config, "dtype")  # a usage error now, not an error in every quality test
    args = list(config.invocation_params.args)
    if "--harness-golden-dir" in args:
        # pytest picks its rootdir before plugins declare their options, so it took PATH for a test path
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            "write --harness-golden-dir=PATH (with '='): in the form '--harness-golden-dir PATH' pytest takes "
            f"PATH for a test path when it chooses its rootdir (now {config.rootpath}); or set harness_golden_dir "
            "in your ini file"), stacklevel=2)
    _group_quality_tests(config)
    _check_model(config)


def _check_model(config) -> None:
    """A model the harness cannot judge (:mod:`harness.model.settings`: another mel count, hop or sample rate, latents
    its VAE cannot take) stops the run at once with the model check's one line, not once per test. Only JSON
    configs are read, of a directory or a hub id in the local cache (no torch, no download); a model not available
    yet is left to the tests, whose message says what to do. Under pytest-xdist the controller checks once."""
    model = setting(config, "model")
    if model == SETTINGS["model"][0] or hasattr(config, "workerinput"):
        return  # the bundled model is checked by the harness's own tests
    from harness.errors import IncompatibleModel, ModelNotAvailable
    from harness.model.settings import check_settings, local_model_dir, read_settings

    path = local_model_dir(model)
    if path is None:
        return
    try:
        check_settings(read_settings(path), model)
    except IncompatibleModel as exc:
        raise pytest.UsageError(f"audioldm2-harness: {exc}") from None
    except ModelNotAvailable:
        pass


def _group_quality_tests(config) -> None:
    """Under ``pytest -n N``: ``--dist loadgroup`` instead of ``load``. For a test without a group the two are
    the same; the quality tests get theirs from :func:`pytest_xdist_make_scheduler`, so tests that share
    expensive stages run in one process, which computes them once."""
    if getattr(config.option, "dist", None) == "load" and getattr(config.option, "numprocesses", None):
        config.option.dist = "loadgroup"


def _share_cores_among_xdist_workers() -> None:
    """Torch threads of this process's quality tests, decided once (:func:`harness.machine.use_free_cores`): the
    cores other work leaves free, on a pytest-xdist worker its share of the cores (two workers of two threads each
    on two cores thrash); ``OMP_NUM_THREADS`` or the project's own ``torch.set_num_threads`` are kept. Said in the
    terminal summary under ``-v``."""
    from harness import machine

    machine.use_free_cores()


def pytest_terminal_summary(terminalreporter):
    """Under ``-v``: the torch threads the quality tests ran with (:func:`_share_cores_among_xdist_workers`), at the
    end, where fixture output is not swallowed by capturing."""
    import sys

    machine = sys.modules.get("harness.machine")
    if terminalreporter.config.option.verbose > 0 and machine is not None and machine._THREADS_CHOSEN:
        terminalreporter.write_line(f"audioldm2-harness: {machine._THREADS_CHOSEN[0]}")


def _claimed(metafunc, name: str) -> bool:
    """Whether a project defines ``name`` itself (a fixture, or a parametrization of the test)."""
    if name in getattr(metafunc, "_arg2fixturedefs", {}):
        return True
    return any(name in [a.strip() for a in (m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0])]
               for m in metafunc.definition.iter_markers("parametrize") if m.args)


def pytest_generate_tests(metafunc):
    """Tests asking for ``combination`` (and ``clip_stage``) run once per front-end x VAE x vocoder
    (registered ones included); tests asking for ``golden_stage`` once per golden stage and variant;
    tests asking for ``harness_frontend`` once per correct front-end, ``harness_variant`` once per correct
    front-end, VAE variant and vocoder."""
    wanted = [n for n in PARAMETERS if n in metafunc.fixturenames and not _claimed(metafunc, n)]
    if not wanted:
        return
    from harness.model import entry_points
    from harness.judging import matrix
    from harness.signal import frontend as frontends

    entry_points.load_entry_points()
    if "combination" in wanted and "clip_stage" in wanted:
        pairs = matrix.clip_stage_names(asserted_chains(metafunc.config))
        metafunc.parametrize(("combination", "clip_stage"), pairs, ids=[f"{c.id}:{s}" for c, s in pairs])
    elif "combination" in wanted:
        combos = matrix.combinations()
        metafunc.parametrize("combination", combos, ids=[c.id for c in combos])
    if "golden_stage" in wanted:
        pairs = matrix.golden_stage_names()
        metafunc.parametrize("golden_stage", pairs, ids=[f"{s}-{n}" for s, n in pairs])
    if "harness_frontend" in wanted:  # the correct ones: a known mistake is asserted by the matrix
        names = [f.name for f in frontends.list_frontends() if f.correct]
        metafunc.parametrize("harness_frontend", names, ids=names)
    if "harness_variant" in wanted:  # every correct component, to time (harness.surfaces.bench.suite)
        pairs = matrix.correct_variants()
        metafunc.parametrize("harness_variant", pairs, ids=[f"{k}-{n}" for k, n in pairs])


def golden_dir(config) -> Path:
    """The golden directory of this run (see ``harness_options``)."""
    from harness.judging import golden
    from harness.model.loading import model_slug

    model = setting(config, "model")
    explicit = config.getoption("harness_golden_dir")
    root = config.getini("harness_golden_dir")
    if explicit is None and root:
        root = Path(config.inipath).parent / root if config.inipath else Path(config.rootpath) / root
    elif setting(config, "regen_golden") or (Path(config.rootpath) / "golden" / model_slug(model)).exists():
        root = Path(config.rootpath) / "golden"
    else:
        root = None
    return Path(golden.locate(model, explicit, root))


def asserted_chains(config):
    """Combination ids whose whole chain calibration asserts *detected* (:func:`harness.judging.thresholds.chain_detections`)
    in this run's thresholds, or None when they cannot be read yet (the quality fixture then names the command)."""
    from harness.judging import thresholds

    path = golden_dir(config) / thresholds.file_name(setting(config, "dtype"))
    try:
        return thresholds.chain_detections(thresholds.load(path))
    except Exception:  # noqa: BLE001  a missing or broken file fails in the fixture, with its command
        return None


#: the xdist group of the tests of each golden stage (:meth:`harness.judging.quality.MatrixRun.golden`): the VAE's
#: decode and round trip, the vocoder, the front-ends: one per component
GOLDEN_GROUP = {stage: f"golden-{COMPONENT_AT[stage]}" for stage in GOLDEN_STAGES}


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
    from harness.model import entry_points
    from harness.judging import matrix

    entry_points.load_entry_points()
    groups = {f"{c.id}:{s}": _combination_group(c) for c, s in matrix.clip_stage_names()}
    groups.update({c.id: _combination_group(c) for c in matrix.combinations()})
    groups.update({f"{s}-{n}": GOLDEN_GROUP[s] for s, n in matrix.golden_stage_names()})
    return groups


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist, on the controller: under ``--dist loadgroup``, schedule the quality tests by their
    stage-sharing group, read from the test id. xdist's own grouping rewrites node ids on the workers,
    which pytest 9.2's structured node ids no longer allow; a test id of ours names its group
    (:func:`xdist_groups`), and every other test keeps xdist's rule (its ``xdist_group``
    suffix where the running pytest still adds one, else a unit of its own)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    groups = {}

    class HarnessGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if "[" in nodeid and "@" not in nodeid[nodeid.rfind("]"):]:
                if not groups:  # a parametrized test: only now is torch worth importing
                    groups.update(xdist_groups())
                group = groups.get(nodeid[nodeid.find("[") + 1: nodeid.rfind("]")])
                if group is not None:
                    return group
            return super()._split_scope(nodeid)

    return HarnessGroupScheduling(config, log)


#: the plugin's fixtures: a test that uses one (or a parameter of :data:`PARAMETERS`) is a harness test, counted in
#: ``--harness-summary``'s header whether or not it recorded figures
FIXTURES = ("harness_options", "harness_chain", "golden_set", "harness_matrix", "harness_thresholds",
            "harness_quality", "harness_bench", "harness_speed_gate")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark the reports of harness tests (``report.harness_test``): an attribute of the report, so it reaches the
    pytest-xdist controller with it, where :func:`pytest_runtest_logreport` counts the outcomes."""
    outcome = yield
    names = set(getattr(item, "fixturenames", ()))
    if names & set(FIXTURES + PARAMETERS):
        outcome.get_result().harness_test = True


def pytest_runtest_setup(item):
    """Before a harness test on a CPU, its process's torch threads (:func:`_share_cores_among_xdist_workers`, decided
    once): a test that takes only a parameter (``combination``) and none of the fixtures runs the model too."""
    if set(getattr(item, "fixturenames", ())) & set(FIXTURES + PARAMETERS) and \
            str(setting(item.config, "device")) in ("cpu", "auto"):
        _share_cores_among_xdist_workers()


def pytest_runtest_logreport(report):
    """Keep the figures of every quality test (its ``harness_*`` JUnit properties) and the outcome of every harness
    test, as pytest's terminal summary counts it, for ``--harness-summary``; under pytest-xdist they arrive here, on
    the controller, with each report."""
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if any(k.startswith(PROPERTY_PREFIX) for k, _ in report.user_properties):
            _FIGURES.append((report.nodeid, report.outcome, dict(report.user_properties)))
    if getattr(report, "harness_test", False) and _CONFIG:
        # the category pytest's own summary line counts the report under ("" for a setup or teardown that passed)
        category = _CONFIG[0].hook.pytest_report_teststatus(report=report, config=_CONFIG[0])[0]
        if category:
            _OUTCOMES[category] = _OUTCOMES.get(category, 0) + 1


_FIGURES: list = []
_OUTCOMES: dict = {}
_CONFIG: list = []


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    """Keep the config for :func:`pytest_runtest_logreport`, which pytest calls without it."""
    _CONFIG[:] = [session.config]
    _OUTCOMES.clear()


def pytest_sessionfinish(session):
    """Write ``--harness-html`` and ``--harness-summary`` (on the controller only, under pytest-xdist)."""
    config = session.config
    controller = not hasattr(config, "workerinput")
    page = None
    html = setting(config, "html") if controller else None
    if html and _FIGURES:
        from harness.surfaces import html_report

        page = html_report.write(html, _FIGURES)
        config.get_terminal_writer().line(f"audioldm2-harness: report of the run in {page}")
    target = setting(config, "summary") if controller else None
    if target:
        from harness.surfaces import job_summary

        text = job_summary.markdown(_FIGURES, counts=dict(_OUTCOMES))
        if page is not None:  # the page to listen to, beside the table to read
            text = text.replace("\n", f"\n\nThe run's page, with audio players and mel figures: `{page}`\n", 1)
        path = job_summary.write(target, text)
        config.get_terminal_writer().line(f"audioldm2-harness: summary of {sum(_OUTCOMES.values())} harness tests "
                                          f"in {path}")
    _FIGURES.clear()
    _OUTCOMES.clear()


@pytest.fixture(scope="session")
def harness_options(request):
    """The harness settings of this run as a dict (model, golden_dir, device, dtype, report_dir, regen,
    allow_missing), each from ``--harness-<name>``, else the ini key ``harness_<name>``, else its default.

    ``golden_dir`` is ``--harness-golden-dir``; else ``<harness_golden_dir>/<model-slug>`` when that ini key is
    set; else ``<rootdir>/golden/<model-slug>`` when it exists; else the copy shipped with a bundled
    model (:func:`harness.judging.golden.locate`).

    Example::

        def test_uses_gpu(harness_options):
            assert harness_options["device"] in ("cpu", "cuda")
    """
    from harness.model import entry_points

    entry_points.load_entry_points()
    cfg = request.config
    return {"model": setting(cfg, "model"), "golden_dir": golden_dir(cfg), "device": setting(cfg, "device"),
            "dtype": setting(cfg, "dtype"), "report_dir": Path(setting(cfg, "report_dir")),
            "regen": bool(setting(cfg, "regen_golden")), "allow_missing": bool(setting(cfg, "allow_missing_goldens"))}


def missing(harness_options, message: str):
    """Fail (default) or, under ``--harness-allow-missing-goldens``, skip a test whose goldens/thresholds/weights
    are missing; ``message`` names what is missing and the command that makes it."""
    __tracebackhide__ = True
    if harness_options["allow_missing"]:
        pytest.skip(message)
    pytest.fail(f"{message} (or pass --harness-allow-missing-goldens to skip these tests)", pytrace=False)


@pytest.fixture(scope="session")
def harness_chain(harness_options):
    """The VAE + vocoder under test (:class:`harness.model.chain.Chain`); fails (or, with
    ``--harness-allow-missing-goldens``, skips) if the weights are not available. On a CPU it makes glibc
    keep freed memory for reuse (:func:`harness.machine.keep_freed_memory`, process-wide: the test process
    keeps its peak memory) once a harness test needs the model: 8-10 % of each real-size model call.

    Example::

        import torch
        from harness.model.chain import Chain

        def test_vocoder_length(harness_chain: Chain):
            mel = torch.zeros(1, 1, 8, 64)
            assert harness_chain.vocode(mel).shape == (1, 1280)
    """
    from harness.errors import ModelNotAvailable
    from harness.machine import keep_freed_memory
    from harness.model.chain import Chain

    if str(harness_options["device"]) in ("cpu", "auto"):
        _share_cores_among_xdist_workers()
    try:
        chain = Chain.load(harness_options["model"], harness_options["device"], harness_options["dtype"])
    except ModelNotAvailable as exc:
        missing(harness_options, f"model not available: {exc}")
    if chain.device.type == "cpu":
        keep_freed_memory()
    return chain


@pytest.fixture(scope="session")
def golden_set(harness_options, request):
    """The checked golden set of the model under test (:class:`harness.judging.golden.GoldenSet`).

    Fails with the command to run when the model has no goldens (skips under
    ``--harness-allow-missing-goldens``); regenerates them first under ``--harness-regen-golden``. An edited
    or truncated golden file fails here, naming the file.

    Example::

        from harness.judging.golden import GoldenSet

        def test_cases(golden_set: GoldenSet):
            assert all(c.mel.shape[1] == 64 for c in golden_set.cases)
    """
    from harness.judging import calibration, golden

    root = harness_options["golden_dir"]
    if harness_options["regen"]:  # the old set stays until the new one is complete and calibrated
        golden.generate(harness_options["model"], root, harness_options["device"], harness_options["dtype"],
                        finish=lambda stage: calibration.calibrate(request.getfixturevalue("harness_chain"), stage))
    # checked before any model is loaded: a missing or edited golden fails in a second, not after the load
    if not (root / "manifest.json").exists():
        missing(harness_options, f"no goldens in {root}: run `harness golden --model {harness_options['model']} "
                                 f"--out {root}` (or pytest --harness-regen-golden)")
    return golden.load(root)


@pytest.fixture(scope="session")
def harness_matrix(golden_set, harness_chain):
    """Lazily evaluated quality matrix over the goldens and reference clips (:class:`harness.judging.quality.MatrixRun`).

    Example::

        from harness.judging.quality import MatrixRun

        def test_chain(harness_matrix: MatrixRun, combination):
            result = harness_matrix.result(combination)["chain"]
    """
    from harness.judging.quality import MatrixRun

    return MatrixRun(harness_chain, golden_set)


@pytest.fixture(scope="session")
def harness_thresholds(harness_options, golden_set):
    """The checked thresholds of this run's model, precision and kernel path: a
    :class:`harness.judging.thresholds.ThresholdTable`, the dict of the TOML file.

    Fails naming the calibrate command when they are missing or belong to other weights or kernels.

    Example::

        def test_calibrated_on_tiny(harness_thresholds):
            assert harness_thresholds["meta"]["model"] == "tiny"
    """
    from harness import machine
    from harness.judging import thresholds
    from harness.errors import GoldenError
    from harness.model.loading import resolve_device

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
        refused = None
    except GoldenError as exc:  # limits of another model or kernel path: every verdict would be meaningless
        refused = str(exc)
    if refused:
        pytest.fail(refused, pytrace=False)
    return data


@pytest.fixture(scope="session")
def harness_speed_gate(request):
    """The speed gate of this run (:class:`harness.surfaces.bench.gate.SpeedGate`), or None without a baseline.

    ``--harness-speed-baseline`` (ini ``harness_speed_baseline``), else ``<rootdir>/.benchmarks/speed-baseline.json``
    when it exists. A baseline named but missing or damaged fails the timed benchmarks, naming the command.

    Example::

        from harness.surfaces.bench.gate import SpeedBaseline, SpeedGate

        def test_gate_is_calibrated(harness_speed_gate: SpeedGate):
            assert harness_speed_gate is None or harness_speed_gate.baseline.entries
    """
    from harness.errors import InputError
    from harness.surfaces.bench.gate import DEFAULT_BASELINE, SpeedBaseline, SpeedGate

    cfg = request.config
    path = setting(cfg, "speed_baseline")
    if path == "off":
        return None
    if path is None:
        default = Path(cfg.rootpath) / DEFAULT_BASELINE
        if not default.exists():
            return None
        path = default
    elif cfg.inipath and not cfg.getoption("harness_speed_baseline"):
        path = Path(cfg.inipath).parent / path
    effect = setting(cfg, "speed_min_effect")
    try:
        return SpeedGate(SpeedBaseline.load(path), path, None if effect is None else float(effect))
    except (InputError, ValueError) as exc:
        pytest.fail(f"speed gate: {exc}", pytrace=False)


@pytest.fixture
def harness_bench(benchmark, harness_speed_gate, request):
    """Times a callable with pytest-benchmark beside the reference work, and gates it against the speed baseline
    (:class:`harness.surfaces.bench.timing.Bench`). A significant slowdown fails the test with the ratio and its
    interval; the verdict is a JUnit property (``harness_speed_*``) and a row of ``--harness-summary``.

    Example::

        from harness.surfaces.bench.timing import Bench

        def test_my_vocoder_speed(harness_bench: Bench, harness_chain, mel):
            harness_bench(lambda: harness_chain.vocode(mel), stage="vocoder", impl="mine", batch=1,
                          clip_seconds=10.24, chain=harness_chain)
    """
    from harness.surfaces.bench.timing import Bench

    threads = setting(request.config, "speed_threads")
    gate = harness_speed_gate if not benchmark.disabled else None
    return Bench(benchmark, gate, int(threads) if threads else None, request.node.user_properties)


@pytest.fixture
def harness_quality(harness_options, harness_thresholds, request):
    """Judges a stage result against the thresholds; on failure prints a table and writes evidence. Every
    check records its figures as JUnit properties of the test (``pytest --junitxml``) and for
    ``--harness-summary``.

    Example::

        from harness.surfaces.quality_check import QualityCheck

        def test_quality(harness_matrix, harness_quality: QualityCheck, combination, clip_stage):
            upstream = harness_matrix.result(combination, upto=clip_stage)
            harness_quality.check(combination, clip_stage, upstream[clip_stage],
                                  harness_quality.expected(combination, clip_stage), upstream=upstream)
    """
    from harness.surfaces.quality_check import QualityCheck

    return QualityCheck(harness_thresholds, harness_options["report_dir"], harness_options["allow_missing"],
                        golden_dir=harness_options["golden_dir"], properties=request.node.user_properties)
