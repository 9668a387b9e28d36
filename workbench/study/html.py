"""``report.html``: one self-contained page (plotly.js inlined once, works offline).

Sections follow the study; each opens with its plain-language verdict, then
the numbers, then the figures (``<div id="fig-<name>">``). Clicking a cell of
the attribution heatmap shows that head's numbers below it.

>>> page = render_html({"title": "t", "verdict": "fail", "plain": {"overall": "null"},
...                     "steps": []}, {}, plotly_js="")
>>> "<h1>t</h1>" in page and "badge-fail" in page
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

import plotly.graph_objects as go

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:0 auto;
padding:1em 1.5em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
nav a{margin-right:.8em;font-size:.92em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.badge{display:inline-block;padding:.1em .6em;border-radius:.8em;color:#fff;font-weight:600;font-size:.85em}
.badge-pass{background:#2e7d32}.badge-fail{background:#c62828}.badge-not-run,.badge-incomplete{background:#757575}
.plain{background:#f7f7fb;border-left:4px solid #4C78A8;padding:.5em .8em;margin:.6em 0}
.figure{margin:1em 0}
#head-details{background:#fffbe6;border:1px solid #e6d98c;padding:.5em .8em;min-height:1.5em}
pre{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:.8em}
.muted{color:#666;font-size:.9em}
.decision{background:#eef6ee;border-left:5px solid #2e7d32;padding:.6em .9em;margin:.8em 0}
.decision.untrusted{background:#fdecea;border-left-color:#c62828}
"""

_CLICK_JS = """
window.addEventListener('load', function () {
  var el = document.getElementById('fig-attribution');
  var box = document.getElementById('head-details');
  if (!el || !box || !el.on) { return; }
  el.on('plotly_click', function (data) {
    var p = data.points[0];
    box.innerHTML = '<b>' + p.y + ' ' + p.x + '</b> (layer ' + p.customdata[0] +
      ', head ' + p.customdata[1] + ')<br>' + p.text;
  });
});
"""


def _badge(verdict: str) -> str:
    cls = verdict.replace(" ", "-")
    if verdict == "survives":
        cls = "pass"
    elif verdict.startswith(("explained by", "degenerate")):
        cls = "fail"
    return f'<span class="badge badge-{escape(cls)}">{escape(verdict)}</span>'


def _confound_badge(report: Mapping[str, Any]) -> str:
    """Step 6's verdict on the main fresh set (empty when the report has no step 6)."""
    sixth = next((s for s in report.get("steps", []) if s.get("name") == "confounds"), None)
    if sixth is None:
        return ""
    return f"&nbsp; step 6 (named confounds) {_badge(str(sixth['verdict']))}"


def _plain(text: str | None) -> str:
    return f'<p class="plain">{escape(text or "")}</p>'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if str(c).startswith('<span') else escape(str(c))}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(name: str, figures: Mapping[str, go.Figure]) -> str:
    fig = figures.get(name)
    if fig is None:
        return ""
    height = fig.layout.height or 450
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"fig-{name}",
        default_height=f"{height}px",
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="figure" data-figure="{escape(name)}">{div}</div>'


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _setup(r: Mapping[str, Any]) -> str:
    models = _table(
        ["model", "class", "layers", "d_model", "provenance"],
        [
            [name, m.get("class", ""), m.get("n_layers", ""), m.get("d_model", ""),
             m.get("package") or m.get("path") or m.get("hub_id") or ""]
            for name, m in r.get("models", {}).items()
        ],
    )  # fmt: skip
    items = _table(
        ["split", "items", "families", "correct", "asserted", "truncated"],
        [
            [s, v["n"], ", ".join(f"{k} {n}" for k, n in v["families"].items()),
             _pct(r["labels"]["per_split"][s]["correct_rate"]),
             _pct(r["labels"]["per_split"][s]["assert_rate"]),
             _pct(r["labels"]["per_split"][s]["truncated_rate"])]
            for s, v in r["items"].items()
        ],
    )  # fmt: skip
    lex = r["labels"]["lexicon"]
    agree = lex["agreement"]
    return (
        f"<h3>Models</h3>{models}<h3>Items and labels</h3>"
        "<p>Items come from <code>workbench.labels.domains</code>: train and the fresh sets from "
        "independent generators (different templates, disjoint items); <code>fresh_hard</code> is "
        "harder. Correct: the family's deterministic checker. Verbal: a transparent lexicon. "
        "Truncated: the answer hit <code>max_new_tokens</code>.</p>"
        f"{items}<p>Verbal classifier: {escape(lex['rule'])}. Agreement with the hand-labelled "
        f"sample: {agree['agreement']:.3f} ({agree['n']} responses, Cohen's kappa "
        f"{agree['kappa']:.3f}; labelled by the developer, so treat it as optimistic).</p>"
        f"<details><summary>Word lists</summary><p><b>hedge phrases</b>: "
        f"{escape(', '.join(lex['hedge_phrases']))}</p><p><b>confidence words</b>: "
        f"{escape(', '.join(lex['confidence_words']))}; <b>negators</b>: "
        f"{escape(', '.join(lex['negators']))} (window {lex['negation_window']})</p></details>"
    )


def _truncation(r: Mapping[str, Any]) -> str:
    t = r["truncation"]
    rows = [
        [s, v["n"], v["truncated_short"], v["truncated_main"], v["correct_short"],
         v["correct_main"], v["correct_changed"], v["verbal_changed"]]
        for s, v in t["per_split"].items()
    ]  # fmt: skip
    cap_s, cap_m = t["short_max_new_tokens"], t["max_new_tokens"]
    return _table(
        ["split", "items", f"cut at {cap_s}", f"cut at {cap_m}", f"correct at {cap_s}",
         f"correct at {cap_m}", "correctness changed", "verbal changed"],
        rows,
    ) + f'<p class="muted">{escape(t["method"])}.</p>'  # fmt: skip


def _steps_table(r: Mapping[str, Any]) -> str:
    return _table(
        ["step", "verdict", "what it rules out / the numbers"],
        [[f"{s['step']}. {s['title']}", _badge(s["verdict"]), s["plain"]] for s in r["steps"]],
    )


def _run(r: Mapping[str, Any]) -> str:
    timings = _table(["stage", "seconds"], [[k, v] for k, v in r.get("timings", {}).items()])
    env = r.get("environment", {})
    timings += "<p class='muted'>" + escape(", ".join(f"{k} {v}" for k, v in env.items())) + "</p>"
    cache = _table(["stage", "cache"], [[k, v] for k, v in r.get("cache", {}).items()])
    skipped = _table(["what", "why not run"], [[k, v] for k, v in r.get("skipped", {}).items()])
    config = escape(json.dumps(r.get("config", {}), indent=2))
    return (
        f"<h3>Timings</h3>{timings}<h3>Cache</h3>{cache}<h3>Not run</h3>{skipped}"
        f"<details><summary>Configuration</summary><pre>{config}</pre></details>"
        f"<p class='muted'>Run directory: <code>{escape(r.get('run_dir', ''))}</code>; "
        f"workbench {escape(r.get('workbench_version', ''))}; {escape(r.get('created', ''))}.</p>"
    )


def render_html(
    report: Mapping[str, Any], figures: Mapping[str, go.Figure], *, plotly_js: str | None = None
) -> str:
    """The page for ``report`` (``report.json``'s object) and its figures."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    p = report.get("plain", {})

    def fig(*names: str) -> str:
        return "".join(_figure(n, figures) for n in names)

    def section(sid: str, title: str, body: str) -> str:
        return f'<section id="{sid}"><h2>{escape(title)}</h2>{body}</section>'

    decision = report.get("decision") or {}
    trusted = "" if decision.get("trusted", True) else " untrusted"
    sentences = "".join(
        f"<p><b>{escape(axis)}:</b> {escape(decision[axis]['statement'])}</p>"
        for axis in ("correct", "asserts")
        if axis in decision
    )
    parts = [
        f"<h1>{escape(report['title'])}</h1>",
        f'<div class="decision{trusted}" id="decision">{sentences}</div>' if sentences else "",
        f"pipeline {_badge(str(report['verdict']))} {_confound_badge(report)}",
        _plain(p.get("overall")),
    ]
    nav = [("steps", "Six steps"), ("setup", "Setup"), ("truncation", "Truncation"),
           ("falsification", "Falsification"), ("confounds", "Confounds"), ("depth", "Depth"),
           ("dispositions", "Dispositions"), ("deciding", "Axes and controls"),
           ("attribution", "Heads"),
           ("tempering", "Tempering"), ("sidecar", "Sidecar"), ("traces", "Token traces"),
           ("run", "Run")]  # fmt: skip
    parts.append("<nav>" + "".join(f'<a href="#{i}">{t}</a>' for i, t in nav) + "</nav>")
    if report.get("steps"):
        parts.append(section("steps", "The six steps", _steps_table(report)))
        parts.append(section("setup", "Setup: model, items, labels", _setup(report)))
        parts.append(section("truncation", "Generation and the truncation artifact",
                             _plain(p.get("truncation")) + _truncation(report) + fig("truncation")))  # fmt: skip
        steps = "".join(
            f"<h3>Step {s['step']}: {escape(s['title'])} {_badge(s['verdict'])}</h3>"
            f"{_plain(s['plain'])}<p class='muted'>{escape(s.get('escape_hatch', ''))}</p>"
            for s in report["steps"]
        )
        hard = f"<h3>The harder fresh set</h3>{_plain(p.get('fresh_hard'))}"
        parts.append(section("falsification", "The five-step falsification pipeline",
                             steps + fig("auc_collapse", "roc", "axes", "probe_disposition", "pca") + hard))  # fmt: skip
        parts.append(section("confounds", "Confounds: does the probe beat a trivial feature?",
                             _plain(p.get("confounds")) + fig("confounds")))  # fmt: skip
        parts.append(section("depth", "Where the signal lives: AUC by layer",
                             _plain(p.get("depth_curve")) + fig("depth_curve")))  # fmt: skip
        disp = [n for n in figures if n.startswith("disposition_")]
        parts.append(section("dispositions", "Confidence vs correctness (the 2x2, per condition)",
                             _plain(p.get("conditions") or p.get("dispositions")) + fig(*disp)))  # fmt: skip
        conf = [n for n in figures if n.startswith("confound_step")]
        parts.append(section("deciding", "The axes and the machinery's controls",
                             _plain(p.get("axes_decided")) + _plain(p.get("controls"))
                             + fig("decision_axes", *conf)))  # fmt: skip
        parts.append(section("attribution", "Heads: attribution and per-head probes",
                             _plain(p.get("attribution")) + _plain(p.get("head_screen"))
                             + fig("attribution")
                             + ('<div id="head-details">Click a cell to see that head\'s numbers.</div>'
                                if "attribution" in figures else "")))  # fmt: skip
        parts.append(
            section("tempering", "Tempering sweep", _plain(p.get("tempering")) + fig("sweep"))
        )
        parts.append(section("sidecar", "The sidecar's effect on the 2x2",
                             _plain(p.get("sidecar")) + fig("sidecar_baseline", "sidecar_gated")))  # fmt: skip
        traces = [n for n in figures if n.startswith("trace_")]
        parts.append(section("traces", "Token traces",
                             "<p>Each example: the main probe's p(correct) at every token of the "
                             "response (its value at the last token is the item's score), and the "
                             "top attributed head's o_proj-input norm. Hover for token and value.</p>"
                             + fig(*traces)))  # fmt: skip
        parts.append(section("run", "Run", _run(report)))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(report['title'])}</title><style>{_CSS}</style>"
        f"<script>{plotly_js}</script></head><body>{''.join(parts)}"
        f"<script>{_CLICK_JS}</script></body></html>"
    )
