"""Presentation of ``harness diagnose`` results: the text table and the self-contained HTML report."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import soundfile as sf

from harness.judging.evidence import mel_figure
from harness.surfaces.diagnose.findings import Diagnosis

#: table columns: (metric key, header, format)
COLUMNS = (("mel_l1", "mel_l1", "{:.3f}"), ("mel_snr", "mel_snr", "{:.1f}"), ("lsd", "lsd", "{:.1f}"),
           ("mrstft", "mrstft", "{:.2f}"), ("snr", "snr", "{:.1f}"), ("correlation", "corr", "{:.3f}"),
           ("si_sdr", "si_sdr", "{:.1f}"))
UNITS = "mel_l1 nats; mel_snr, lsd, snr, si_sdr dB; waveform metrics after lag and gain alignment"


def _fmt(value, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def _stats(s: Optional[dict]) -> str:
    if not s:
        return "-"
    return (f"mean {s['mean']:.2f}  std {s['std']:.2f}  min {s['min']:.2f}  max {s['max']:.2f}  "
            f"floor {100 * s['floor_fraction']:.1f}%")


def _input_line(inp: dict) -> str:
    if inp["kind"] == "mel":
        return f"log-mel .npy, {inp['frames']} frames"
    db = lambda v: "-inf" if v is None else f"{v:.1f}"  # noqa: E731
    return (f"{inp['sample_rate']} Hz, {inp['channels']} ch, {inp['duration']:.2f} s, peak {db(inp['peak_dbfs'])} "
            f"dBFS, rms {db(inp['rms_dbfs'])} dBFS, clipped {100 * inp['clipped_fraction']:.2f}%, "
            f"silent {100 * inp['silent_fraction']:.0f}%")


def stage_rows(report: dict) -> List[List[str]]:
    """Header + one row per stage: label, input, the metrics of :data:`COLUMNS` (``-`` if n/a), error."""
    rows = [["stage", "input"] + [h for _, h, _ in COLUMNS] + ["error"]]
    for st in report["stages"].values():
        m = st["metrics"]
        rows.append([st["label"], st["input"]] + [_fmt(m.get(k), f) for k, _, f in COLUMNS] + [st["error"] or ""])
    return rows


def format_table(report: dict) -> str:
    """The text report of one file (or its one-line error)."""
    if "error" in report:
        return f"== {report['file']}\nerror: {report['error']}"
    c = report["checks"]
    lines = [f"== {report['file']}   front-end {report['frontend']}, VAE {report['vae']}, vocoder {report['vocoder']}",
             f"input      {_input_line(c['input'])}"]
    lines += [f"  [{f['severity']}] {f['message']}" for f in c["input"]["findings"]]
    lines.append(f"front-end  {_stats(c['frontend']['stats'])}")
    if c["frontend"]["reference"]:
        lines.append(f"  expected (audioldm2 mel of this audio): {_stats(c['frontend']['reference'])}")
    lines += [f"  [{f['severity']}] {f['message']}" for f in c["frontend"]["findings"]]
    rows = stage_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i < 2 or i == len(r) - 1 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    lines.append(f"({UNITS})")
    v = report["verdict"]
    # a note (the bundled model's own limits) is not a verdict against the user's code: it is not called one
    lines.append(f"{'note' if v.get('tone') == 'note' else 'verdict'} [{v['stage']}]: {v['message']}")
    return "\n".join(lines)


# --- HTML ----------------------------------------------------------------------------------------

CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;border-top:1px solid #ccc;padding-top:.8em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,td:nth-child(2),th{text-align:left}.err{color:#b00;text-align:left}
.verdict{padding:.5em .8em;border-radius:4px;background:#e8f5e9}.verdict.bad{background:#fdecea}.verdict.note{background:#eef1f5}
.flag{color:#b00}.info{color:#555}img{max-width:100%;border:1px solid #eee}
.players{display:flex;flex-wrap:wrap;gap:1em}.players figure{margin:0}figcaption{font-size:.8em}
table.summary td.msg{text-align:left;max-width:60em}table.summary tr.bad td:nth-child(3){color:#b00;font-weight:bold}
table.summary tr.good td:nth-child(3){color:#2e7d32}"""


def _image(diag: Diagnosis) -> str:
    """The mel figure of one file as a base64 WebP (a third of the PNG's size)."""
    panels = [(title, mel) for title, mel in diag.mels.items()]
    buf = io.BytesIO()
    mel_figure(panels, reference=panels[0][1], path=buf, fmt="webp")
    return base64.b64encode(buf.getvalue()).decode()


def _ogg(x: np.ndarray) -> str:
    """A 16 kHz waveform as base64 Ogg Vorbis (about a tenth of 16-bit WAV; every current browser plays it)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), 16000, format="OGG", subtype="VORBIS")
    return base64.b64encode(buf.getvalue()).decode()


def _anchor(index: int) -> str:
    return f"file-{index}"


def summary_rows(diags: Sequence[Diagnosis]) -> List[List[str]]:
    """Header + one row per file: file, input, blamed stage, kind, full-chain mel L1, the first finding."""
    rows = [["file", "input", "verdict", "kind", "chain mel_l1 (nats)", "message"]]
    for d in diags:
        r = d.report
        if "error" in r:
            rows.append([r["file"], "-", "error", "input", "-", r["error"]])
            continue
        chain = [st for st in r["stages"].values() if st["label"].startswith("full chain")]
        l1 = chain[0]["metrics"].get("mel_l1") if chain else None
        v = r["verdict"]
        rows.append([r["file"], _input_line(r["checks"]["input"]).split(", peak")[0], v["stage"], v.get("kind", "-"),
                     _fmt(l1, "{:.3f}"), v["message"]])
    return rows


def _summary(diags: Sequence[Diagnosis]) -> str:
    e = html.escape
    rows = summary_rows(diags)
    out = ["<table class='summary'><tr>" + "".join(f"<th>{e(h)}</th>" for h in rows[0]) + "</tr>"]
    for i, (row, d) in enumerate(zip(rows[1:], diags)):
        tone = "error" if "error" in d.report else _tone(d.report["verdict"]).strip()
        out.append(f"<tr class='{'good' if not tone else 'note' if tone == 'note' else 'bad'}'><td><a href='#{_anchor(i)}'>{e(Path(row[0]).name)}</a>"
                   "</td>" + "".join(f"<td>{e(v)}</td>" for v in row[1:5]) + f"<td class='msg'>{e(row[5])}</td></tr>")
    return "\n".join(out) + "</table>"


def _tone(v: dict) -> str:
    """The verdict's CSS class suffix: green when nothing stands out, neutral for a note about the bundled model,
    red for a finding."""
    return "" if v["stage"] == "none" else " note" if v.get("tone") == "note" else " bad"


def _section(diag: Diagnosis, index: int) -> str:
    r, e = diag.report, html.escape
    head = f"<h2 id='{_anchor(index)}'>{e(r['file'])}</h2>"
    if "error" in r:
        return f"{head}<p class='verdict bad'>error: {e(r['error'])}</p>"
    c = r["checks"]
    out = [f"{head}<p>front-end <b>{e(r['frontend'] or 'n/a (.npy mel)')}</b>, VAE <b>{e(r['vae'])}</b>, "
           f"vocoder <b>{e(r['vocoder'])}</b></p>",
           f"<p class='verdict{_tone(r['verdict'])}'><b>{'note' if r['verdict'].get('tone') == 'note' else 'verdict'} "
           f"[{e(r['verdict']['stage'])}]</b>: {e(r['verdict']['message'])}</p>",
           f"<p>input: {e(_input_line(c['input']))}<br>front-end mel: {e(_stats(c['frontend']['stats']))}"
           + (f"<br>expected (audioldm2 mel of this audio): {e(_stats(c['frontend']['reference']))}"
              if c["frontend"]["reference"] else "") + "</p><ul>"]
    out += [f"<li class='{f['severity']}'>[{f['severity']}] {e(f['message'])}</li>"
            for f in c["input"]["findings"] + c["frontend"]["findings"]]
    rows = stage_rows(r)
    out.append("</ul><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in rows[0]) + "</tr>")
    for row in rows[1:]:
        out.append("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row[:-1]) + f"<td class='err'>{e(row[-1])}</td></tr>")
    out.append(f"</table><p class='info'>{e(UNITS)}</p>")
    out.append(f"<img alt='log-mels of the input and of each stage, with |difference| to the input' "
               f"src='data:image/webp;base64,{_image(diag)}'>")
    out.append("<div class='players'>")
    for title, wave in diag.waves.items():
        body = "<i>stage failed</i>" if wave is None else \
            f"<audio controls preload='none' src='data:audio/ogg;base64,{_ogg(wave)}'></audio>"
        out.append(f"<figure><figcaption>{e(title)}</figcaption>{body}</figure>")
    return "\n".join(out) + "</div>"


def write_html(diags: Sequence[Diagnosis], out_dir, model: str = "") -> Path:
    """Write ``out_dir/report.html`` and return its path.

    Self-contained (images WebP and audio Ogg Vorbis as data URIs, a few hundred kB per file): a summary
    table of all files first, each row linking to the file's section (verdict, checks, stage table,
    mel figure, players).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = _summary(diags) + "\n" + "\n".join(_section(d, i) for i, d in enumerate(diags))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>harness diagnose</title><style>{CSS}</style>"
            f"</head><body><h1>harness diagnose{' &mdash; model ' + html.escape(model) if model else ''}</h1>"
            f"{body}</body></html>")
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
