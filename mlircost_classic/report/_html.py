"""The report's ``index.html``: plain HTML, inline CSS, relative links, no script."""

from __future__ import annotations

import math
from html import escape

__all__ = ["render_page"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.name, th.name { text-align: left; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: 0.4em 0; }
.note { color: #555; font-size: 0.92em; }
.toc { columns: 3; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""

_METRIC_HEADINGS = {
    "spearman": "Spearman",
    "r2_log": "R² (log)",
    "median_ape": "median APE",
    "mape": "MAPE",
}


def _number(value, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if percent:
        return f"{100 * value:.1f}%" if abs(value) < 10 else f"{100 * value:.3g}%"
    return f"{value:.3f}" if abs(value) < 1e4 else f"{value:.3g}"


def _anchor(target: str) -> str:
    return "t-" + "".join(c if c.isalnum() else "-" for c in target)


def _metrics_table(rows: list[dict], with_target: bool) -> str:
    head = ["<tr>"]
    if with_target:
        head.append('<th class="name">target</th>')
    if with_target:
        head.append("<th>fitted on</th>")
    head.append('<th class="name">model</th><th>n train</th><th>n test</th>')
    head.extend(f"<th>{escape(h)}</th>" for h in _METRIC_HEADINGS.values())
    head.append("</tr>")
    body = []
    for row in rows:
        cells = []
        if with_target:
            target = escape(row["target"])
            cells.append(
                f'<td class="name"><a href="#{_anchor(row["target"])}">{target}</a></td>'
            )
            cells.append(f"<td>{'log1p' if row['log_target'] else 'raw'}</td>")
        cells.append(f'<td class="name">{escape(row["model"])}</td>')
        cells.append(f"<td>{row['n_train']}</td><td>{row['n_test']}</td>")
        for metric in _METRIC_HEADINGS:
            percent = metric in ("mape", "median_ape")
            cells.append(f'<td class="metric">{_number(row[metric], percent)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table>{''.join(head)}{''.join(body)}</table>"


def _features_table(rows: list[dict], log: bool) -> str:
    scale = "log1p" if log else "target"
    head = (
        '<tr><th class="name">feature</th><th>gain share</th>'
        f"<th>permutation R² drop ({scale})</th><th>mean |SHAP| ({scale})</th>"
        f"<th>ridge coef. / std ({scale})</th></tr>"
    )
    body = []
    for row in rows:
        perm = row["permutation_mean"]
        perm_text = (
            "–" if math.isnan(perm) else f"{perm:.3f} ± {row['permutation_std']:.3f}"
        )
        body.append(
            f'<tr><td class="name" title="{escape(row["feature"])}">'
            f"{escape(row['name'])}</td>"
            f"<td>{100 * row['gain_share']:.1f}%</td><td>{perm_text}</td>"
            f"<td>{_number(row['shap_mean_abs'])}</td>"
            f"<td>{_number(row['linear_coef'])}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def render_page(context: dict, sections: list[dict]) -> str:
    """The whole page from the report's summary and one section per target."""
    c = context
    toc = "".join(
        f'<li><a href="#{_anchor(s["target"])}">{escape(s["target"])}</a></li>'
        for s in sections
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>mlircost report: {escape(c['kind'])} / {escape(c['level'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>mlircost report: {escape(c['kind'])} at level "
        f"<code>{escape(c['level'])}</code></h1>",
        f"<p>{c['n_rows']} {escape(c['kind'])} from {c['n_families']} families, "
        f"split by family: {c['n_train']} for training, {c['n_test']} held out "
        f"({c['n_test_families']} unseen families: "
        f"{escape(', '.join(c['test_families']))}). Two cost models are fitted on "
        "the training part: <b>xgboost</b> (the default <code>CostModel</code>) and "
        "<b>linear</b> (<code>CostModel(estimator=RidgeCV(...))</code>, on "
        "standardized features). Every figure and metric below is on the held-out "
        "families unless it says otherwise.</p>",
        f'<p class="note">mlircost_classic {escape(c["version"])}; '
        f"random_state={c['random_state']}, test_size={c['test_size']}, "
        f"permutation repeats={c['n_repeats']}; fitting took "
        f"{c['fit_seconds']:.1f} s, the whole report {c['total_seconds']:.1f} s. "
        'Tables as CSV: <a href="metrics.csv">metrics.csv</a>, '
        '<a href="importance.csv">importance.csv</a>.</p>',
        "<h2>Overview</h2>",
        f'<img src="{escape(c["overview"])}" alt="held-out Spearman per target">',
        _metrics_table(c["metrics"], with_target=True),
        '<p class="note">Targets fitted on log1p of their values '
        "have their permutation importance, SHAP values and coefficients on that "
        "scale. MAPE and median APE leave out modules whose measured value is 0. "
        "Gain is measured on the training part, permutation importance and SHAP "
        "values on the held-out part; permutation importance is computed for the "
        f"top {c['n_permutation_features']} features by gain only.</p>",
        f'<ul class="toc">{toc}</ul>',
    ]
    for s in sections:
        scale = "log1p" if s["log"] else "raw"
        parts.append(
            f'<h2 id="{_anchor(s["target"])}">{escape(s["target"])} '
            f'<span class="note">({scale} scale)</span></h2>'
        )
        if s["note"]:
            parts.append(f'<p class="note">{escape(s["note"])}</p>')
        parts.append(_metrics_table(s["metrics"], with_target=False))
        for image, alt in s["images"]:
            parts.append(f'<img src="{escape(image)}" alt="{escape(alt)}">')
        if s["features"]:
            parts.append("<h3>Top features by gain</h3>")
            parts.append(_features_table(s["features"], s["log"]))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
