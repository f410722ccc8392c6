"""The speed gate: a baseline calibrated on the runner, and a verdict that fails only on a significant slowdown.

Speed is judged like quality: against a spread measured on the machine, never a hand-picked percentage.

**The figure.** Every round of a benchmark is timed beside the reference work (:mod:`harness.surfaces.bench.reference`)
and divided by it: a time in *reference units* (:class:`harness.surfaces.bench.timing.Timing`). A run's figure
is the median of its rounds' logarithms.

**Calibration** (:func:`fit`, ``harness bench --calibrate``) runs the unchanged suite several times, at the
threads torch starts with and at one fewer (what a run gets beside one busy process:
:func:`harness.surfaces.bench.timing.bench_threads`), and keeps per benchmark and thread count the centre of
the runs' figures and their *between-run spread* (the standard deviation of the run figures' logarithms),
with the machine's reference profile, the peak memory and the provenance.

**The verdict** (:meth:`SpeedGate.judge`). With ``r`` the log-ratio of the run's figure to the baseline's centre,
its standard error combines the calibrated between-run spread (never under :attr:`Rule.floor`, and never
under the spread pooled over the benchmarks of like duration) and the run's own within-run spread over its rounds. A benchmark
fails when the one-sided lower confidence bound of its slowdown, ``r - z se``, exceeds the minimum effect
(:attr:`Rule.min_effect`): it is slower beyond noise *and* by more than the user cares about. A run on other
threads than any calibrated is judged against the nearest, its interval widened by how far the calibrated
thread counts' figures lie apart; a run on another processor is judged by the normalised figure only when its
reference profile (the kernels' shares of the reference time) matches the baseline's, else the verdict is
:attr:`SpeedOutcome.INCOMPARABLE`, with the command that re-baselines: never a false failure.

Peak memory is gated the same way, against its calibrated spread and :attr:`Rule.min_memory_effect`.

The baseline is a JSON file of format :data:`BASELINE_FORMAT`, written and read here only (:class:`SpeedBaseline`).
"""
from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from harness import atomic, machine
from harness.errors import InputError
from harness.vocabulary import PROPERTY_PREFIX, versions_line

#: the baseline file's format version
BASELINE_FORMAT = 1
#: the default baseline file, under pytest-benchmark's storage directory
DEFAULT_BASELINE = ".benchmarks/speed-baseline.json"
#: benchmarks whose calls take within this factor of each other pool their between-run spreads
POOL_FACTOR = 4.0
#: the command that (re)calibrates a baseline, named in every refusal
CALIBRATE = "harness bench --calibrate"


class SpeedOutcome(enum.Enum):
    """What the gate says of one benchmark."""

    PASS = "pass"                  # within the calibrated noise, or slower by less than the minimum effect
    SLOWER = "slower"              # significantly slower by more than the minimum effect: fails
    MORE_MEMORY = "more-memory"    # peak memory above its limit: fails
    FASTER = "faster"              # significantly faster: passes, and the baseline is due for a refresh
    NEW = "new"                    # not in the baseline: recorded, not judged
    INCOMPARABLE = "incomparable"  # another device, precision or machine profile: not judged, re-baseline


FAILING_OUTCOMES = (SpeedOutcome.SLOWER, SpeedOutcome.MORE_MEMORY)


@dataclass(frozen=True)
class Rule:
    """The numbers of the gate's rule, recorded with the baseline.

    Attributes
    ----------
    confidence : float
        One-sided confidence of the slowdown's lower bound (default 0.99).
    min_effect : float
        The smallest slowdown that fails, as a fraction (default 0.10: 10 % more time per round).
    min_memory_effect : float
        The smallest peak-memory increase that fails (default 0.10).
    floor : float
        The least between-run spread (log units) assumed, whatever calibration measured (default 0.02: three
        calibration runs can agree by chance).
    profile_tolerance : float
        How far a kernel's share of the reference time may move before another machine is refused (0.25).
    """

    confidence: float = 0.99
    min_effect: float = 0.10
    min_memory_effect: float = 0.10
    floor: float = 0.02
    profile_tolerance: float = 0.25

    @property
    def z(self) -> float:
        return statistics.NormalDist().inv_cdf(self.confidence)


@dataclass
class Entry:
    """One benchmark at one thread count in the baseline.

    Attributes
    ----------
    center : float
        Mean over the calibration runs of each run's figure (median log reference units).
    between : float
        Standard deviation of those run figures (log units; 0 with one run).
    runs : list of float
        Each calibration run's figure, in reference units.
    seconds : float
        Median raw seconds per round over the calibration runs (for the table, not judged).
    memory : int
        Median peak memory in bytes (0: not measured).
    memory_spread : float
        Largest relative deviation of a run's peak memory from that median.
    device, dtype : str
        Where and in which precision the benchmark ran.
    """

    center: float
    between: float
    runs: List[float]
    seconds: float
    memory: int
    memory_spread: float
    device: str
    dtype: str


@dataclass(frozen=True)
class Observed:
    """A timed benchmark's figures, as its ``extra_info`` records them (:meth:`harness.surfaces.bench.timing.Timing.as_info`)."""

    normalised_rounds: List[float]
    seconds: List[float]
    threads: int
    profile: Dict[str, float]
    peak_memory: int
    device: str
    dtype: str

    @property
    def figure(self) -> float:
        """The run's figure: median of the rounds' log reference units."""
        return statistics.median(math.log(x) for x in self.normalised_rounds)

    @property
    def within(self) -> float:
        """Standard error of :attr:`figure` from the rounds' own spread (1.4826 MAD, x 1.2533 for a median)."""
        logs = [math.log(x) for x in self.normalised_rounds]
        if len(logs) < 2:
            return 0.0
        mid = statistics.median(logs)
        mad = 1.4826 * statistics.median(abs(v - mid) for v in logs)
        return 1.2533 * mad / math.sqrt(len(logs))


def observed(info: Mapping) -> Optional[Observed]:
    """The :class:`Observed` figures of a benchmark's ``extra_info``, or None for a benchmark timed without the
    reference work (another timer, or ``--benchmark-disable``)."""
    rounds = info.get("normalised_rounds")
    if not rounds:
        return None
    return Observed(list(rounds), list(info.get("round_seconds") or []), int(info.get("threads") or 0),
                    dict(info.get("reference_profile") or {}), int(info.get("peak_memory_bytes") or 0),
                    str(info.get("device", "cpu")), str(info.get("dtype", "fp32")))


def shares(profile: Mapping[str, float]) -> Dict[str, float]:
    """Each reference kernel's share of the reference time: how a machine's speed is made up."""
    total = sum(profile.values()) or 1.0
    return {k: v / total for k, v in profile.items()}


def machine_fingerprint() -> Dict[str, object]:
    """The processor, its usable cores and the CUDA device (if any): what makes two runners the same machine."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": machine.cpu_name(), "cores": machine.usable_cores(), "gpu": gpu}


@dataclass
class SpeedBaseline:
    """A calibrated speed baseline: per benchmark and thread count an :class:`Entry`, the machine's reference
    profiles, the rule and the provenance. Written by :func:`fit` (``harness bench --calibrate``), read by
    :meth:`load`; the JSON format is :data:`BASELINE_FORMAT`."""

    entries: Dict[str, Dict[int, Entry]]
    profiles: Dict[int, Dict[str, float]]
    rule: Rule = field(default_factory=Rule)
    provenance: Dict[str, object] = field(default_factory=dict)

    def pooled_between(self, seconds: Optional[float] = None) -> float:
        """The between-run spread pooled (root mean square) over every benchmark and thread count, or over those
        whose calls take within a factor of :data:`POOL_FACTOR` of ``seconds``: a few calibration runs estimate
        one benchmark's spread poorly, and benchmarks of like duration share most of their noise."""
        spreads = [e.between for by_threads in self.entries.values() for e in by_threads.values()
                   if seconds is None or abs(math.log(max(e.seconds, 1e-9) / max(seconds, 1e-9))) <= math.log(POOL_FACTOR)]
        return math.sqrt(sum(s * s for s in spreads) / len(spreads)) if spreads else 0.0

    def thread_drift(self, name: str) -> float:
        """How far apart the benchmark's calibrated thread counts put its figure (log units; 0 with one)."""
        centers = [e.center for e in self.entries.get(name, {}).values()]
        return max(centers) - min(centers) if len(centers) > 1 else 0.0

    def to_json(self) -> dict:
        return {"format": BASELINE_FORMAT, "kind": "audioldm2-harness speed baseline", "rule": asdict(self.rule),
                "provenance": self.provenance,
                "profiles": {str(t): p for t, p in sorted(self.profiles.items())},
                "benchmarks": {name: {str(t): asdict(e) for t, e in sorted(by.items())}
                               for name, by in sorted(self.entries.items())}}

    def save(self, path) -> Path:
        """Write the baseline atomically (a kill leaves the previous file)."""
        return atomic.write_text(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path) -> "SpeedBaseline":
        """Read a baseline file; a missing, corrupt or foreign file is an :class:`InputError` naming the command."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: no speed baseline; calibrate one with `{CALIBRATE} --baseline {path}`")
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable speed baseline ({exc}); re-calibrate with "
                             f"`{CALIBRATE} --baseline {path}`")
        if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
            raise InputError(f"{path}: speed baseline format {data.get('format') if isinstance(data, dict) else '?'}"
                             f", this harness reads format {BASELINE_FORMAT}; re-calibrate with `{CALIBRATE} --baseline {path}`")
        try:
            entries = {name: {int(t): Entry(**e) for t, e in by.items()} for name, by in data["benchmarks"].items()}
            profiles = {int(t): dict(p) for t, p in data["profiles"].items()}
            rule = Rule(**data["rule"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: speed baseline damaged ({exc!r}); re-calibrate with "
                             f"`{CALIBRATE} --baseline {path}`")
        return cls(entries, profiles, rule, dict(data.get("provenance") or {}))


def fit(runs: Sequence[Mapping], rule: Rule = Rule(), provenance: Optional[dict] = None) -> SpeedBaseline:
    """A :class:`SpeedBaseline` from calibration runs of unchanged code.

    Parameters
    ----------
    runs : sequence of dict
        pytest-benchmark JSON documents, one per run; benchmarks timed without the reference work are left out.
    rule : Rule
        The gate's numbers, recorded with the baseline.
    provenance : dict, optional
        Recorded as it is, beside the date, machine and package versions added here.

    Returns
    -------
    SpeedBaseline
    """
    figures: Dict[str, Dict[int, List[Observed]]] = {}
    profiles: Dict[int, List[Dict[str, float]]] = {}
    for data in runs:
        for b in data.get("benchmarks", []):
            obs = observed(b.get("extra_info") or {})
            if obs is None:
                continue
            figures.setdefault(b.get("fullname") or b["name"], {}).setdefault(obs.threads, []).append(obs)
            profiles.setdefault(obs.threads, []).append(obs.profile)
    if not figures:
        raise InputError("no benchmark in the calibration runs recorded reference units: were they timed "
                         "(--benchmark-enable) through harness.surfaces.bench.timing.Bench?")
    entries = {name: {t: _entry(obs) for t, obs in by.items()} for name, by in figures.items()}
    medians = {t: {k: statistics.median(p[k] for p in ps if k in p) for k in ps[0]} for t, ps in profiles.items()}
    prov = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_fingerprint(), "versions": versions_line(),
            "runs": {str(t): max(len(o) for by in figures.values() for tt, o in by.items() if tt == t)
                     for t in profiles}}
    prov.update(provenance or {})
    return SpeedBaseline(entries, medians, rule, prov)


def _entry(obs: Sequence[Observed]) -> Entry:
    logs = [o.figure for o in obs]
    memory = [o.peak_memory for o in obs if o.peak_memory]
    mem = int(statistics.median(memory)) if memory else 0
    return Entry(center=statistics.fmean(logs), between=statistics.stdev(logs) if len(logs) > 1 else 0.0,
                 runs=[math.exp(v) for v in logs], seconds=statistics.median(s for o in obs for s in o.seconds),
                 memory=mem, memory_spread=max((abs(m - mem) / mem for m in memory), default=0.0) if mem else 0.0,
                 device=obs[0].device, dtype=obs[0].dtype)


@dataclass(frozen=True)
class SpeedVerdict:
    """The gate's answer for one benchmark: its outcome, the slowdown with its interval, and why."""

    benchmark: str
    outcome: SpeedOutcome
    ratio: Optional[float] = None          # time per round now / baseline, in reference units
    low: Optional[float] = None            # the interval of ``ratio`` at the rule's confidence (two-sided bounds)
    high: Optional[float] = None
    threads: Optional[int] = None
    baseline_threads: Optional[int] = None
    memory_ratio: Optional[float] = None
    seconds: Optional[float] = None        # median raw seconds per round now, and in the baseline's runs
    baseline_seconds: Optional[float] = None
    reason: str = ""
    rebaseline: str = ""

    @property
    def fails(self) -> bool:
        return self.outcome in FAILING_OUTCOMES

    def short(self) -> str:
        """``"1.31x slower (1.22-1.40), fails"``: the verdict as a PR page shows it."""
        if self.ratio is None:
            return f"{self.outcome.value}: {self.reason}"
        word = "slower" if self.ratio >= 1 else "faster"
        size = self.ratio if self.ratio >= 1 else 1 / self.ratio
        tail = {SpeedOutcome.SLOWER: "fails", SpeedOutcome.MORE_MEMORY: "fails (memory)",
                SpeedOutcome.FASTER: "passes (faster: re-baseline to keep the gate tight)"}.get(self.outcome, "passes")
        return f"{size:.2f}x {word} ({self.low:.2f}-{self.high:.2f}), {tail}"

    def message(self) -> str:
        """The failure message: the benchmark, the slowdown with its interval, the rule, and what to do."""
        lines = [f"speed regression: {self.benchmark}", f"  {self.short()}", f"  {self.reason}"]
        if self.rebaseline:
            lines.append(f"  if the slowdown is intended, re-baseline: {self.rebaseline}")
        return "\n".join(lines)

    def properties(self) -> List[tuple]:
        """JUnit properties (``pytest --junitxml``) and the summary's source: ``harness_speed_*``."""
        speed = PROPERTY_PREFIX + "speed_"
        props = [(speed + "benchmark", self.benchmark), (speed + "outcome", self.outcome.value),
                 (speed + "verdict", self.short())]
        for name in ("ratio", "low", "high", "memory_ratio", "seconds", "baseline_seconds", "threads",
                     "baseline_threads"):
            value = getattr(self, name)
            if value is not None:
                props.append((speed + name, round(value, 4) if isinstance(value, float) else value))
        return props

    def as_info(self) -> dict:
        """The verdict as saved in the benchmark's ``extra_info``."""
        return dict(self.properties())


class SpeedGate:
    """Judges timed benchmarks against a :class:`SpeedBaseline` (``--harness-speed-baseline``).

    Parameters
    ----------
    baseline : SpeedBaseline
    path : str or Path
        Where the baseline lives (named in the re-baseline command).
    min_effect : float, optional
        Overrides the baseline's :attr:`Rule.min_effect` (``--harness-speed-min-effect``).

    Examples
    --------
    >>> gate = SpeedGate(SpeedBaseline.load(".benchmarks/speed-baseline.json"), ".benchmarks/speed-baseline.json")  # doctest: +SKIP
    >>> gate.judge("tests/test_speed.py::test_bench_variant[vocoder-ours]", benchmark.extra_info).short()  # doctest: +SKIP
    '1.31x slower (1.22-1.40), fails'
    """

    def __init__(self, baseline: SpeedBaseline, path, min_effect: Optional[float] = None):
        self.baseline = baseline
        self.path = Path(path)
        self.rule = baseline.rule if min_effect is None else Rule(**{**asdict(baseline.rule), "min_effect": min_effect})
        self.here = machine_fingerprint()

    @property
    def rebaseline(self) -> str:
        return f"{CALIBRATE} --baseline {self.path}  (with the pytest arguments of this run after it)"

    def judge(self, name: str, info: Mapping) -> SpeedVerdict:
        """The verdict on one benchmark's ``extra_info`` (see the module docstring for the rule)."""
        obs = observed(info)
        by_threads = self.baseline.entries.get(name)
        if obs is None:
            return SpeedVerdict(name, SpeedOutcome.NEW, reason="timed without the reference work: not judged")
        if not by_threads:
            return SpeedVerdict(name, SpeedOutcome.NEW, threads=obs.threads,
                                reason="not in the baseline: recorded, not judged", rebaseline=self.rebaseline)
        threads = min(by_threads, key=lambda t: (abs(t - obs.threads), -t))
        entry = by_threads[threads]
        refused = self._refusal(obs, entry, threads)
        if refused:
            return SpeedVerdict(name, SpeedOutcome.INCOMPARABLE, threads=obs.threads, baseline_threads=threads,
                                reason=refused, rebaseline=self.rebaseline)
        allowance = 0.0 if threads == obs.threads else self.baseline.thread_drift(name)
        between = max(entry.between, self.baseline.pooled_between(entry.seconds), self.rule.floor)
        se = math.sqrt(between ** 2 + obs.within ** 2)
        r = obs.figure - entry.center
        z = self.rule.z
        lower, upper = r - z * se - allowance, r + z * se + allowance
        memory_ratio = obs.peak_memory / entry.memory if obs.peak_memory and entry.memory else None
        memory_limit = 1 + max(self.rule.min_memory_effect, 3 * entry.memory_spread)
        effect = math.log1p(self.rule.min_effect)
        basis = (f"rule: fails when the {self.rule.confidence:.0%} lower bound exceeds +{self.rule.min_effect:.0%}; "
                 f"between-run spread {between:.3f}, this run's own {obs.within:.3f} (log units), "
                 f"{len(obs.normalised_rounds)} rounds on {obs.threads} thread(s) against the baseline's "
                 f"{threads}" + (f" (calibrated thread counts lie {allowance:.3f} apart)" if allowance else ""))
        if lower > effect:
            outcome = SpeedOutcome.SLOWER
        elif memory_ratio is not None and memory_ratio > memory_limit:
            outcome = SpeedOutcome.MORE_MEMORY
            basis = (f"peak memory {obs.peak_memory / 2**20:.0f} MiB against the baseline's "
                     f"{entry.memory / 2**20:.0f} MiB (limit x{memory_limit:.2f}); " + basis)
        elif upper < -effect:
            outcome = SpeedOutcome.FASTER
        else:
            outcome = SpeedOutcome.PASS
        return SpeedVerdict(name, outcome, math.exp(r), math.exp(lower), math.exp(upper), obs.threads, threads,
                            memory_ratio, statistics.median(obs.seconds) if obs.seconds else None, entry.seconds,
                            basis, self.rebaseline if outcome in FAILING_OUTCOMES else "")

    def _refusal(self, obs: Observed, entry: Entry, threads: int) -> str:
        """Why the run cannot be judged against ``entry`` ('' when it can)."""
        if (obs.device.split(":")[0], obs.dtype) != (entry.device.split(":")[0], entry.dtype):
            return f"baseline made on {entry.device} {entry.dtype}, this run is {obs.device} {obs.dtype}"
        there = self.baseline.provenance.get("machine") or {}
        if there.get("cpu") == self.here["cpu"] and there.get("gpu") == self.here["gpu"]:
            return ""
        # another machine: the normalised figure travels only if the kernels' relative speeds do
        base = shares(self.baseline.profiles.get(threads) or {})
        now = shares(obs.profile)
        moved = {k: now[k] / base[k] for k in base if k in now and base[k] > 0}
        worst = max(moved.items(), key=lambda kv: abs(math.log(kv[1])), default=None)
        if worst is None or abs(math.log(worst[1])) > math.log1p(self.rule.profile_tolerance):
            what = f"the {worst[0]} kernel's share of the reference work is x{worst[1]:.2f} the baseline's" \
                if worst else "no reference profile to compare"
            return (f"another machine ({self.here['cpu']} / {self.here['gpu']}; baseline: {there.get('cpu')} / "
                    f"{there.get('gpu')}) whose kernels differ: {what}, so reference units do not carry over")
        return ""
