"""Plots and the self-contained report.html (images embedded as base64, no external files).

The report opens with the verdict at the method's own calibrated threshold (defects caught,
good parts flagged) and with examples of caught defects, missed defects and false alarms;
the detailed tables and figures follow.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scae_tf.evaluation import plots
from scae_tf.evaluation.examples import CAUGHT, FALSE_ALARM, MISSED, pick
from scae_tf.evaluation.verdict import verdict_counts, verdict_sentences

if TYPE_CHECKING:
    from scae_tf.evaluation.records import Evaluation

FIGURES = {
    "roc.png": ("Image-level ROC curves: method, baselines and the mean-brightness shortcut", plots.plot_roc),
    "confusion_matrix.png": ("Confusion matrices at the calibrated threshold (images, patches)", plots.plot_confusion_matrices),
    "score_vs_brightness.png": ("Method score against mean brightness", plots.plot_score_vs_brightness),
}
COLUMNS = ("image_auroc", "pixel_auroc", "aupro", "accuracy", "precision", "recall", "f1", "threshold")
EXAMPLES = {  # outcome: (figure file, title)
    CAUGHT: ("examples_caught.png", "Caught defects"),
    MISSED: ("examples_missed.png", "Missed defects"),
    FALSE_ALARM: ("examples_false_alarms.png", "False alarms (good parts flagged)"),
}
EXAMPLES_SHOWN = 8  # per outcome, spread over the defect types


def write_outputs(evaluation: Evaluation, out_dir: Path) -> dict[str, Path]:
    """Write every figure and report.html into ``out_dir``; returns {file name: path}."""
    written: dict[str, Path] = {}
    examples: dict[str, Path] = {}
    for outcome, (name, title) in EXAMPLES.items():
        chosen = pick(evaluation.thumbnails, outcome, EXAMPLES_SHOWN)
        if chosen:
            examples[outcome] = written[name] = plots.plot_overlays(chosen, out_dir / name, title=title)
    for name, (_, plot) in FIGURES.items():
        written[name] = plot(evaluation, out_dir / name)
    report = out_dir / "report.html"
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text(render_html(evaluation.metrics, {n: written[n] for n in FIGURES}, examples), encoding="utf-8")
    tmp.replace(report)
    written["report.html"] = report
    return written


def _verdict_section(metrics: dict[str, Any]) -> str:
    headline, threshold, reading = verdict_sentences(verdict_counts(metrics))
    return (f'<div class="verdict"><p class="headline">{html.escape(headline)}</p>'
            f"<p>{html.escape(threshold)} {html.escape(reading)}</p></div>")


def _examples_section(metrics: dict[str, Any], examples: dict[str, Path]) -> str:
    cm = metrics["confusion_matrix"]
    counts = {CAUGHT: cm["tp"], MISSED: cm["fn"], FALSE_ALARM: cm["fp"]}
    empty = {
        CAUGHT: "None: no defective part was flagged.",
        MISSED: "None: every defective part was flagged.",
        FALSE_ALARM: "None: no good part was flagged.",
    }
    parts = [f"<h2>Examples</h2><p class=note>Up to {EXAMPLES_SHOWN} images per group, spread over the defect types: "
             f"{html.escape(plots.MAP_LEGEND)}.</p>"]
    for outcome, (_, title) in EXAMPLES.items():
        parts.append(f"<h3>{html.escape(title)}: {counts[outcome]}</h3>")
        if outcome in examples:
            parts.append(_image(examples[outcome], f"{title}: {plots.MAP_LEGEND}"))
        else:
            parts.append(f"<p>{empty[outcome]}</p>")
    return "".join(parts)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _interval(values: Any) -> str:
    if not values or any(v is None for v in values):
        return ""
    return f"[{values[0]:.2f}, {values[1]:.2f}]"


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _methods_table(block: dict[str, Any]) -> str:
    head = "".join(
        f"<th>{c.replace('_', ' ')}</th>"
        for c in ("method", COLUMNS[0], "95% CI", "minus method, 95% CI", *COLUMNS[1:], "tn / fp / fn / tp")
    )
    rows = []
    for name, method in block["methods"].items():
        cm = method["confusion_matrix"]
        cells = f"<td>{_fmt(method.get(COLUMNS[0]))}</td><td>{_interval(method.get('image_auroc_ci95'))}</td>"
        cells += f"<td>{_interval(method.get('image_auroc_minus_method_ci95'))}</td>"
        cells += "".join(f"<td>{_fmt(method.get(c))}</td>" for c in COLUMNS[1:])
        style = ' class="method"' if name == "segmentation_guided" else ""
        rows.append(
            f"<tr{style}><td title=\"{html.escape(method['description'])}\">{html.escape(name)}</td>{cells}"
            f"<td>{cm['tn']} / {cm['fp']} / {cm['fn']} / {cm['tp']}</td></tr>"
        )
    note = (
        "<p class=note>95% CIs: stratified bootstrap over the test images (2000 resamples, the same for all "
        "methods, so 'minus method' is a paired difference). With a few dozen test images, gaps whose interval "
        "contains 0 are not evidence either way.</p>"
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{note}"


def _detection_table(block: dict[str, Any]) -> str:
    methods = block["methods"]
    types = sorted(next(iter(methods.values()))["detection_rates"])
    head = "<th>type (n)</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in methods)
    rows = []
    for defect_type in types:
        n = next(iter(methods.values()))["detection_rates"][defect_type]["n"]
        cells = "".join(f"<td>{_fmt(m['detection_rates'][defect_type]['rate'])}</td>" for m in methods.values())
        rows.append(f"<tr><td>{html.escape(defect_type)} ({n})</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table><p class=note>Fraction of images flagged at each method's calibrated threshold (for good images: the false-alarm rate).</p>"


def _per_type_auroc_table(block: dict[str, Any]) -> str:
    methods = block["methods"]
    types = sorted(next(iter(methods.values())).get("per_type_auroc", {}))
    head = "<th>defect type vs good</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in methods)
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td>" + "".join(f"<td>{_fmt(m['per_type_auroc'].get(t))}</td>" for m in methods.values()) + "</tr>"
        for t in types
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _shortcut_section(block: dict[str, Any]) -> str:
    shortcut = block["shortcut"]
    parts = []
    if shortcut["warning"]:
        parts.append(f'<p class="warning">&#9888; {html.escape(shortcut["warning"])}</p>')
    rows = "".join(
        f"<tr><td>{html.escape(name.replace('_', ' '))}</td><td>{_fmt(s['auroc'])}</td>"
        f"<td>{_fmt(s['auroc_either_direction'])}</td><td>{html.escape(s['direction'])}</td></tr>"
        for name, s in shortcut["statistics"].items()
    )
    parts.append(
        "<table><tr><th>trivial statistic</th><th>AUROC</th><th>AUROC (better direction)</th><th>direction</th></tr>"
        f"{rows}</table>"
    )
    corr = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_fmt(c['all'])}</td><td>{_fmt(c['good_only'])}</td><td>{_fmt(c['defective_only'])}</td></tr>"
        for name, c in shortcut["spearman_score_vs_brightness"].items()
    )
    parts.append(
        "<table><tr><th>score vs mean brightness (Spearman)</th><th>all images</th><th>good only</th><th>defective only</th></tr>"
        f"{corr}</table>"
    )
    return "".join(parts)


def _patch_section(block: dict[str, Any]) -> str:
    patch = block["patch_level"]
    cm = patch["confusion_matrix"]
    cand = patch["candidates_only"]
    return (
        f"<p>{html.escape(patch['definition'])}. Defective patches are rare, so compare the accuracy with the "
        "all-good accuracy (calling every patch good) and look at the balanced accuracy.</p>"
        "<table><tr><th>patches</th><th>n</th><th>defective</th><th>accuracy</th><th>all-good accuracy</th>"
        "<th>balanced accuracy</th><th>precision</th><th>recall</th><th>f1</th><th>tn / fp / fn / tp</th></tr>"
        f"<tr><td>all object patches</td><td>{patch['n_patches']}</td><td>{patch['n_defective_patches']}</td>"
        f"<td>{_fmt(patch['accuracy'])}</td><td>{_fmt(patch['all_good_accuracy'])}</td><td>{_fmt(patch['balanced_accuracy'])}</td>"
        f"<td>{_fmt(patch['precision'])}</td><td>{_fmt(patch['recall'])}</td><td>{_fmt(patch['f1'])}</td>"
        f"<td>{cm['tn']} / {cm['fp']} / {cm['fn']} / {cm['tp']}</td></tr>"
        f"<tr><td>candidates (top fraction)</td><td>{cand['n_patches']}</td><td></td><td>{_fmt(cand['accuracy'])}</td>"
        f"<td>{_fmt(cand['all_good_accuracy'])}</td><td>{_fmt(cand['balanced_accuracy'])}</td>"
        f"<td>{_fmt(cand['precision'])}</td><td>{_fmt(cand['recall'])}</td><td>{_fmt(cand['f1'])}</td>"
        f"<td>{cand['confusion_matrix']['tn']} / {cand['confusion_matrix']['fp']} / {cand['confusion_matrix']['fn']} / {cand['confusion_matrix']['tp']}</td></tr>"
        "</table>"
    )


def _block_section(title: str, block: dict[str, Any]) -> str:
    return (
        f"<h2>{html.escape(title)}</h2>"
        + (f"<p class=note>{html.escape(block['definition'])}</p>" if "definition" in block else "")
        + "<h3>Method vs baselines</h3>" + _methods_table(block)
        + "<h3>Detection rate per defect type</h3>" + _detection_table(block)
        + "<h3>Image AUROC per defect type</h3>" + _per_type_auroc_table(block)
        + "<h3>Patch level (the reference work's form)</h3>" + _patch_section(block)
        + "<h3>Shortcut check</h3>" + _shortcut_section(block)
    )


STYLE = """
body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.method{font-weight:bold;background:#eef5ff}
.warning{background:#fff3cd;border:1px solid #e0a800;padding:.6em;font-weight:bold}
.note{color:#555;font-size:13px}figure{margin:1em 0}img{max-width:100%}
.verdict{border:2px solid #345;background:#f3f6fa;padding:.4em 1em;margin:1em 0}.verdict .headline{font-size:1.3em;font-weight:bold}
"""


ODD_IMAGES = (
    ("skipped", "not evaluated: the image or its mask could not be read"),
    ("no_part_found", "no part found: judged anomalous by every method"),
    ("out_of_distribution", "judged with a warning: unlike the training parts or images (size, aspect, pose, intensity)"),
)
ODD_NAMES_SHOWN = 10


def _odd_images_section(metrics: dict[str, Any]) -> str:
    """The test images that were not judged like the others, by reason and name ('' when there are none)."""
    items = []
    for key, what in ODD_IMAGES:
        names = metrics.get(key) or []
        if names:
            more = f" and {len(names) - ODD_NAMES_SHOWN} more" if len(names) > ODD_NAMES_SHOWN else ""
            shown = ", ".join(html.escape(str(n)) for n in names[:ODD_NAMES_SHOWN])
            items.append(f"<li>{len(names)} {html.escape(what)}: {shown}{more}</li>")
    return f"<p>Images not judged like the others (the log and metrics.json name them all):</p><ul>{''.join(items)}</ul>" if items else ""


def render_html(metrics: dict[str, Any], figures: dict[str, Path], examples: dict[str, Path] | None = None) -> str:
    """The report as one HTML string (no external references): verdict, examples, then the details."""
    sections = [
        "<h1>scae evaluate</h1>",
        _verdict_section(metrics),
    ]
    if metrics["shortcut"]["warning"]:
        sections.append(f'<p class="warning">&#9888; {html.escape(metrics["shortcut"]["warning"])}</p>')
    sections += [
        _examples_section(metrics, examples or {}),
        f"<h2>Details</h2><p>{metrics['n_images']} test images ({metrics['n_good']} good, "
        f"{metrics['n_defective']} defective) from <code>{html.escape(str(metrics['data']))}</code>, "
        f"model <code>{html.escape(str(metrics.get('source')))}</code>. Thresholds calibrated on "
        f"{metrics['calibration']['n_images']} good calibration images (never on test labels), target false-alarm "
        f"rate {_fmt(metrics['calibration']['target_false_alarm_rate'])}. Pixel metrics at "
        f"{metrics['pixel_metrics_resolution']}&#178; px; AUPRO integrated to FPR 0.3 and normalised.</p>",
    ]
    sections.append(_odd_images_section(metrics))
    sections.append(_block_section("Raw test set", metrics))
    if "brightness_controlled" in metrics:
        sections.append(_block_section("Brightness-controlled test set", metrics["brightness_controlled"]))
    sections.append("<h2>Figures</h2>")
    captions = {name: caption for name, (caption, _) in FIGURES.items()}
    for name, path in figures.items():
        sections.append(_image(path, captions.get(name, name)))
    body = "\n".join(sections)
    return f"<!DOCTYPE html><html><head><meta charset=utf-8><title>scae evaluate</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
