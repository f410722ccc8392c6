"""A run's report to look at and listen to: one self-contained HTML page (``index.html``).

Built from the same records as the Markdown summary (:mod:`harness.surfaces.job_summary`): one
``(node id, outcome, {harness_* property: value})`` per quality test, the properties that
:meth:`harness.surfaces.quality_check.QualityCheck.check` records. The page shows, in the order a reader needs them:

1. a **dependencies changed** block, when a record carries :data:`DEPENDENCIES_KEY`;
2. the **failures**, each with its combination, stage, verdict, culprit, fix (and fix hint, when recorded), its
   figures against their limits, ``<audio controls>`` players for the golden, input and output WAVs of its
   evidence directory (``harness_evidence``) and the mel figures (PNGs) found there;
3. the **stage table** of every quality test: combination, stage, metric, value, limit, verdict.

Audio and images are embedded as base64 data URIs, so the page alone is the report (a CI artifact, an
e-mail attachment). The page stays under ``max_bytes`` (:data:`MAX_BYTES`): audio beyond
:data:`AUDIO_BUDGET` bytes and images beyond the rest of the budget are copied beside ``index.html``
(``media/``) and linked, and the page says which ones. Each player shows the clip's duration once the browser
has read it.

Example
-------
>>> from harness.surfaces import html_report                        # doctest: +SKIP
>>> records = [("tests/test_quality.py::test_matrix[ours-scaled-hifigan:frontend]", "failed",
...             {"harness_combination": "ours-scaled-hifigan", "harness_stage": "frontend",
...              "harness_verdict": "FAIL", "harness_evidence": "reports/ours-scaled-hifigan-frontend"})]
>>> html_report.write("reports/html", records)                      # doctest: +SKIP
PosixPath('reports/html/index.html')
"""
from __future__ import annotations

import base64
import html
import json
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from harness import atomic

#: the page's size limit in bytes: browsers and CI artifact viewers stay responsive below it
MAX_BYTES = 20 * 1024 * 1024
#: bytes of audio embedded in the page (before base64); more is copied beside it and linked
AUDIO_BUDGET = 12 * 1024 * 1024
#: the record property naming the dependencies installed at other versions than the goldens or thresholds were
#: made with (:func:`harness.judging.quality.dependency_drift`): ``"torch 2.12.0 -> 2.13.0 (goldens); ..."``
DEPENDENCIES_KEY = "harness_drift"
#: the record property of a fix hint (:mod:`harness.judging.hints`), shown under the fix when present
HINT_KEY = "harness_hint"
#: where linked (not embedded) audio and images are copied, under the report's directory
MEDIA_DIR = "media"
#: the evidence WAVs, by the suffix :mod:`harness.judging.evidence` gives them, and how the page names them
AUDIO_ROLES = (("golden", "golden"), ("correct", "correct call"), ("input", "input"), ("output", "yours"))

ReportedTest = Tuple[str, str, Dict[str, object]]

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1180px;
       padding: 0 16px; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 28px; }
h3 { font-size: 16px; margin: 0 0 6px; word-break: break-all; }
.summary { color: #555; margin-bottom: 18px; }
.failure { border: 1px solid #e0b4b4; border-left: 6px solid #c62828; background: #fff; border-radius: 6px;
           padding: 12px 16px; margin: 14px 0; }
.deps { border: 1px solid #e6c98a; border-left: 6px solid #ef8f00; background: #fff8e6; border-radius: 6px;
        padding: 10px 16px; }
.note { color: #6b4b00; background: #fff8e6; padding: 6px 10px; border-radius: 4px; }
.fix { background: #eef5ff; border-radius: 4px; padding: 6px 10px; margin: 6px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.FAIL, .MISSED, .ERROR, .failed { color: #c62828; font-weight: 600; }
.pass, .detected, .passed { color: #2e7d32; }
.players { display: flex; flex-wrap: wrap; gap: 12px 24px; margin: 8px 0; }
.player { display: flex; flex-direction: column; font-size: 13px; }
.player audio { width: 300px; }
img.mel { max-width: 100%; border: 1px solid #ddd; margin: 6px 0; background: #fff; }
code { background: #f0f0f0; padding: 0 3px; border-radius: 3px; }
"""

# the duration of each clip, written beside its player once the browser has read the file's header: a player
# that never shows one holds audio the browser cannot decode
SCRIPT = """
document.querySelectorAll("audio").forEach(function (a) {
  function show() { var s = document.getElementById(a.id + "-duration");
                    if (s) { s.textContent = a.duration.toFixed(2) + " s"; s.dataset.duration = a.duration; } }
  if (a.readyState >= 1) { show(); } else { a.addEventListener("loadedmetadata", show); }
});
"""


def write(directory, records: Iterable[ReportedTest], *, max_bytes: int = MAX_BYTES,
          audio_budget: int = AUDIO_BUDGET, title: str = "audioldm2-harness run") -> Path:
    """Write the run's report page ``<directory>/index.html``.

    Parameters
    ----------
    directory : str or path-like
        Created if missing. Linked media go to ``<directory>/media/``.
    records : iterable of (str, str, dict)
        ``(node id, outcome, {harness_* property: value})`` per test, as :func:`harness.surfaces.job_summary.markdown`
        takes them; outcome ``passed``, ``failed`` or ``skipped``. Records without ``harness_combination`` (a speed
        benchmark) are left out of the stage table.
    max_bytes : int, default :data:`MAX_BYTES`
        The page's size limit in bytes.
    audio_budget : int, default :data:`AUDIO_BUDGET`
        Bytes of WAV files embedded (before base64's 4/3), at most three eighths of ``max_bytes`` (half the page
        once encoded); the rest are linked.
    title : str

    Returns
    -------
    Path
        The page.

    Raises
    ------
    ValueError
        A record is not a ``(node id, outcome, dict)`` triple, or ``max_bytes`` leaves no room for the page's text.
    """
    directory = Path(directory)
    records = [_checked(r) for r in records]
    directory.mkdir(parents=True, exist_ok=True)
    # audio may take half the page at most (base64 makes 4 bytes of 3), whatever budget is asked
    media = _Media(directory, min(audio_budget, (max_bytes // 2) * 3 // 4))
    # a culprit's own failures before those that follow from them (fix the first, the others may go)
    failed = sorted((r for r in records if r[1] == "failed"), key=lambda r: bool(r[2].get("harness_follows_from")))
    body = [f"<h1>{_e(title)}</h1>", _summary(records)]
    body += _dependencies(records)
    body.append(f"<h2>Failures ({len(failed)})</h2>")
    if len(failed) > 1:  # a long page: the failures at a glance, each a link to its section
        body.append("<ol>" + "".join(f"<li><a href=\"#failure-{i}\">{_e(r[2].get('harness_combination', r[0]))}</a> "
                                     f"at {_e(r[2].get('harness_stage', '?'))}</li>" for i, r in enumerate(failed))
                    + "</ol>")
    body += [_failure(r, media, i) for i, r in enumerate(failed)] or \
        ["<p>None: every quality test passed or was skipped.</p>"]
    body += _stage_table(records)
    # the page without its images (its audio embedded, a note of linked files allowed for)
    without_images = len(_page(title, body, media.notes()).encode()) + 4096
    if without_images - media.embedded_audio_bytes > max_bytes:
        raise ValueError(f"the report's text alone is {without_images - media.embedded_audio_bytes} bytes, over "
                         f"max_bytes={max_bytes}: pass fewer records or a larger max_bytes")
    # images share what the text and the audio leave; whatever does not fit is linked instead
    media.fit_images(max_bytes - without_images)
    page = _page(title, [media.render(part) for part in body], media.notes())
    path = directory / "index.html"
    atomic.write_text(path, page)  # a reader (a CI artifact upload) never sees half a page
    return path


def _checked(record) -> ReportedTest:
    if not (isinstance(record, (tuple, list)) and len(record) == 3 and isinstance(record[2], dict)):
        raise ValueError(f"a record is (node id, outcome, {{harness_* property: value}}), got {record!r:.200}")
    return str(record[0]), str(record[1]), record[2]


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: Sequence[str], notes: Sequence[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body[:2]) + "\n" + "\n".join(notes) + "\n"
            + "\n".join(body[2:]) + f"\n<script>{SCRIPT}</script></body></html>\n")


def _summary(records: Sequence[ReportedTest]) -> str:
    counts: Dict[str, int] = {}
    for _, outcome, _ in records:
        counts[outcome] = counts.get(outcome, 0) + 1
    parts = ", ".join(f"{n} {o}" for o, n in sorted(counts.items(), key=lambda kv: kv[0] != "failed"))
    noun = "test" if len(records) == 1 else "tests"
    return f"<p class=\"summary\">{len(records)} {noun}: {_e(parts) or 'none'}</p>"


def _dependencies(records: Sequence[ReportedTest]) -> List[str]:
    """The dependencies block: every changed package any record names (``"<package> <old> -> <new> (<made
    with>)"`` entries joined by ``"; "``), once."""
    changes: Dict[str, str] = {}
    for _, _, props in records:
        for entry in str(props.get(DEPENDENCIES_KEY) or "").split(";"):
            package, _, change = entry.strip().partition(" ")
            if package:
                changes[entry.strip()] = change
    if not changes:
        return []
    rows = "".join(f"<tr><td><code>{_e(entry.partition(' ')[0])}</code></td><td>{_e(change)}</td></tr>"
                   for entry, change in sorted(changes.items()))
    return ["<div class=\"deps\"><h2>Dependencies changed</h2><p>These packages are installed at other versions "
            "than the goldens or the thresholds were made with: a failure may come from them rather than from your "
            "code. Compare with the recorded versions before re-calibrating.</p>"
            f"<table><tr><th>package</th><th>version (made with)</th></tr>{rows}</table></div>"]


def _json(value):
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _figures(props: Dict[str, object]) -> List[dict]:
    figures = _json(props.get("harness_figures", "[]"))
    return figures if isinstance(figures, list) else []


def _num(value) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return _e(value) if value is not None else ""


def _failure(record: ReportedTest, media: "_Media", index: int) -> str:
    nodeid, _, p = record
    rows = [("combination", p.get("harness_combination")), ("stage", p.get("harness_stage")),
            ("verdict", p.get("harness_verdict")), ("limits from", p.get("harness_limits_from")),
            ("culprit", p.get("harness_culprit")), ("follows from", p.get("harness_follows_from")),
            ("error", p.get("harness_error")), ("evidence", p.get("harness_evidence"))]
    facts = "".join(f"<tr><th>{k}</th><td class=\"{_e(v) if k == 'verdict' else ''}\">{_e(v)}</td></tr>"
                    for k, v in rows if v not in (None, ""))
    parts = [f"<div class=\"failure\" id=\"failure-{index}\"><h3>{_e(nodeid)}</h3><table>{facts}</table>"]
    if p.get("harness_fix"):
        parts.append(f"<div class=\"fix\"><b>Fix:</b> {_e(p['harness_fix'])}</div>")
    if p.get(HINT_KEY):
        parts.append(f"<div class=\"fix\"><b>Likely cause:</b> {_e(p[HINT_KEY])}</div>")
    figures = _figures(p)
    if figures:
        head = "<tr><th>metric</th><th>clip</th><th>value</th><th>limit</th><th>verdict</th></tr>"
        body = "".join(f"<tr><td>{_e(f.get('metric'))}</td><td>{_e(f.get('clip'))}</td>"
                       f"<td class=\"num\">{_num(f.get('value'))}</td><td class=\"num\">"
                       f"{'&le;' if f.get('bound') in ('max', 'detect_max') else '&ge;'} {_num(f.get('limit'))}</td>"
                       f"<td class=\"{'pass' if f.get('ok') else 'FAIL'}\">{'ok' if f.get('ok') else 'fails'}</td></tr>"
                       for f in sorted(figures, key=lambda f: bool(f.get("ok"))))
        parts.append(f"<table>{head}{body}</table>")
    evidence = p.get("harness_evidence")
    if evidence:
        parts += _evidence(Path(str(evidence)), media)
    parts.append("</div>")
    return "".join(parts)


def _evidence(directory: Path, media: "_Media") -> List[str]:
    """Players and figures of an evidence directory, clip by clip (``<clip>-<role>.wav``, ``<clip>-mel.png``)."""
    if not directory.is_dir():
        return [f"<p class=\"note\">evidence directory <code>{_e(directory)}</code> is missing</p>"]
    clips: Dict[str, Dict[str, Path]] = {}
    for f in sorted(directory.iterdir()):
        stem, _, role = f.stem.rpartition("-")
        if f.suffix.lower() in (".wav", ".png") and stem:
            clips.setdefault(stem, {})[f"{role}{f.suffix.lower()}"] = f
    parts = []
    for clip, files in clips.items():
        players = [media.audio(files[f"{role}.wav"], f"{clip}: {label}", label)
                   for role, label in AUDIO_ROLES if f"{role}.wav" in files]
        parts.append(f"<h4>{_e(clip)}</h4>")
        if players:
            parts.append("<div class=\"players\">" + "".join(players) + "</div>")
        parts += [media.image(f, f"{clip}: {f.stem}") for key, f in sorted(files.items()) if key.endswith(".png")]
    return parts


def _stage_table(records: Sequence[ReportedTest]) -> List[str]:
    rows = [(n, o, p) for n, o, p in records if p.get("harness_combination")]
    if not rows:
        return []
    order = {"failed": 0, "passed": 1, "skipped": 2}
    rows.sort(key=lambda r: (order.get(r[1], 3), str(r[2].get("harness_combination")), str(r[2].get("harness_stage"))))
    head = ("<tr><th>combination</th><th>stage</th><th>metric</th><th>value</th><th>limit</th><th>verdict</th>"
            "<th>outcome</th></tr>")
    body = "".join(
        f"<tr><td>{_e(p.get('harness_combination'))}</td><td>{_e(p.get('harness_stage'))}</td>"
        f"<td>{_e(p.get('harness_metric', ''))}</td><td class=\"num\">{_num(p.get('harness_value'))}</td>"
        f"<td class=\"num\">{_num(p.get('harness_limit'))}</td>"
        f"<td class=\"{_e(p.get('harness_verdict', ''))}\">{_e(p.get('harness_verdict', ''))}</td>"
        f"<td class=\"{_e(o)}\">{_e(o)}</td></tr>" for _, o, p in rows)
    return [f"<h2>Stages ({len(rows)})</h2>", f"<table>{head}{body}</table>"]


class _Media:
    """Audio and images of the page: embedded while they fit their budgets, else copied to ``media/`` and linked.

    Images are decided last (:meth:`fit_images`), from the room the text and the audio leave, so the page is
    rendered in two passes: placeholders first, the final tags by :meth:`render`.
    """

    def __init__(self, directory: Path, audio_budget: int):
        self.directory = directory
        self.audio_left = audio_budget
        self.embedded_audio_bytes = 0  # as base64, in the page
        self.linked: List[Path] = []
        self.images: Dict[str, Path] = {}
        self.embed_images: Dict[str, bool] = {}
        self.counter = 0

    def _link(self, path: Path) -> str:
        target = self.directory / MEDIA_DIR / f"{len(self.linked):03d}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        self.linked.append(path)
        return f"{MEDIA_DIR}/{target.name}"

    def audio(self, path: Path, alt: str, label: str) -> str:
        self.counter += 1
        size = path.stat().st_size
        if size <= self.audio_left:
            self.audio_left -= size
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            self.embedded_audio_bytes += len(data)
            src, how = f"data:audio/wav;base64,{data}", ""
        else:
            src, how = self._link(path), " (linked: over the page's audio budget)"
        aid = f"audio{self.counter}"
        return (f"<div class=\"player\"><span><b>{_e(label)}</b> <span class=\"duration\" id=\"{aid}-duration\">"
                f"</span>{_e(how)}</span><audio controls preload=\"metadata\" id=\"{aid}\" title=\"{_e(alt)}\" "
                f"src=\"{src}\"></audio><small>{_e(path.name)}</small></div>")

    def image(self, path: Path, alt: str) -> str:
        key = f"\x00img{len(self.images)}\x00"
        self.images[key] = path
        return f"<p><img class=\"mel\" alt=\"{_e(alt)}\" src=\"{key}\"></p>"

    def fit_images(self, room: int) -> None:
        for key, path in self.images.items():
            size = 4 * ((path.stat().st_size + 2) // 3)
            self.embed_images[key] = size <= room
            room -= size if size <= room else 0

    def render(self, part: str) -> str:
        for key, path in self.images.items():
            if key in part:
                src = ("data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
                       if self.embed_images.get(key) else self._link(path))
                part = part.replace(key, src)
        return part

    def notes(self) -> List[str]:
        if not self.linked:
            return []
        names = ", ".join(f"<code>{_e(p.name)}</code>" for p in self.linked)
        return [f"<p class=\"note\">{len(self.linked)} file(s) would have taken the page over its size limit: they "
                f"are linked, not embedded, and copied to <code>{MEDIA_DIR}/</code> beside this page (keep the "
                f"folder with it): {names}</p>"]
