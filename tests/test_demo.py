"""``scae demo``: the tour runs end to end (fast mode) and never clobbers a folder it did not make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scae_tf.data.layout import Sample
from scae_tf.demo import MARKER, choose_inspected, format_summary, prepare_out
from scae_tf.errors import ScaeError


def test_prepare_out_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ScaeError, match="not made by `scae demo`"):
        prepare_out(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_prepare_out_clears_only_its_own_results(tmp_path):
    out = tmp_path / "runs" / "today" / "demo"  # created with its parents
    prepare_out(out)
    (out / "report").mkdir()
    (out / "report" / "metrics.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    prepare_out(out)
    assert (out / MARKER).is_file()
    assert not (out / "report").exists()
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_demo_fast_runs_every_stage(tmp_path, capsys):
    from scae_tf.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--fast"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["stage_seconds"]) == ["synth", "train", "export", "evaluate", "inspect", "bench"]
    for key in ("image_auroc", "accuracy", "median_latency_ms", "speedup_vs_target"):
        assert key in summary
    assert summary["target_ms"] == 600.0
    assert (out / "report" / "report.html").is_file() and (out / "report" / "metrics.json").is_file()
    assert json.loads((out / "bundle-int8" / "manifest.json").read_text())["precision"] == "int8"
    assert json.loads((out / "bench.json").read_text())["variants"][0]["status"] == "ok"
    lines = (out / "inspect" / "inspect.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["overlay"].endswith(".overlay.png") for line in lines)
    assert len(list((out / "inspect").rglob("*.overlay.png"))) == len(lines)
    for line in map(json.loads, lines):  # each overlay names the image's folder (its defect type) and file
        assert Path(line["overlay"]).name == f"{Path(line['path']).parent.name}_{Path(line['path']).stem}.overlay.png"
    printed = capsys.readouterr().out
    assert str(out / "report" / "report.html") in printed
    assert format_summary(summary) in printed
    verdict = summary["verdict"]
    assert f"Caught {verdict['caught']} of {verdict['defective']} defective parts" in printed
    assert f"flagged {verdict['flagged']} of {verdict['good']} good parts" in printed
    if summary["caught_overlay"]:
        assert Path(summary["caught_overlay"]).is_file() and summary["caught_overlay"] in printed


def test_demo_overlays_name_the_defect_type_even_without_a_clash():
    from scae_tf.demo import typed_inputs

    names = [str(i.overlay_name) for i in typed_inputs([Path("d/test/good/000.png"), Path("d/test/contamination/002.png")])]
    assert names == ["good_000", "contamination_002"]


def _summary(caught: int, overlay: str | None, auroc: float) -> dict:
    return {
        "fast": False, "elapsed_seconds": 109.0, "cores": 2, "image_auroc": auroc, "pixel_auroc": 0.9, "aupro": 0.8,
        "accuracy": 0.4, "median_latency_ms": 4.9, "speedup_vs_target": 122.0, "target_ms": 600.0,
        "overlays": "demo_out/inspect", "report_html": "demo_out/report/report.html", "caught_overlay": overlay,
        "verdict": {"caught": caught, "defective": 32, "flagged": 1, "good": 16, "threshold": 2.5,
                    "target_false_alarm_rate": 0.01, "image_auroc": auroc},
    }


def test_summary_says_in_plain_words_what_was_caught_and_flagged():
    text = format_summary(_summary(30, "demo_out/inspect/scratch_003.overlay.png", 0.98))
    assert "Caught 30 of 32 defective parts (94 %); flagged 1 of 16 good parts (6 %)" in text
    assert "a caught defect: demo_out/inspect/scratch_003.overlay.png" in text
    assert "It catches nearly every defect" in text and "1 % false-alarm target" in text
    few = format_summary(_summary(0, None, 0.6))
    assert "Caught 0 of 32 defective parts" in few and "It misses most defects" in few
    assert "no caught defect to show" in few


def test_inspected_images_put_caught_defects_first(tmp_path):
    samples = [Sample(tmp_path / f"{kind}/{i}.png", int(kind != "good"), kind) for kind in ("good", "pit", "scratch")
               for i in range(3)]
    caught = {"pit/2.png", "scratch/1.png"}
    metrics = {"images": [{"name": s.name, "predicted": {"segmentation_guided": s.name in caught}} for s in samples]}
    chosen = choose_inspected(samples, metrics, 4)
    assert [p.relative_to(tmp_path).as_posix() for p in chosen] == ["good/0.png", "pit/2.png", "scratch/1.png", "pit/0.png"]


ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@pytest.mark.parametrize("page", ["README.md", "docs/method.md", "docs/results.md"])
def test_tables_end_with_a_blank_line(page):
    """A line glued to a table renders as one more table row, not as the paragraph it is."""
    lines = (ROOT / page).read_text().splitlines()
    glued = [n + 2 for n, (line, after) in enumerate(zip(lines, lines[1:], strict=False))
             if line.startswith("|") and after.strip() and not after.startswith("|")]
    assert glued == [], f"{page} lines {glued} follow a table without a blank line"


def test_readme_links_to_pages_and_sections_that_exist():
    """The README is the front page; its detail lives in docs/, so a moved or renamed section breaks a link."""
    import re

    def anchors(page: Path) -> set[str]:
        heads = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
        return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}

    for page in (README, ROOT / "docs/method.md", ROOT / "docs/results.md"):
        for target in re.findall(r"\]\(([^)#]*)(#[^)]*)?\)", page.read_text()):
            path, anchor = target
            if path.startswith("http"):
                continue
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name} links to {path}, which does not exist"
            if anchor and linked.suffix == ".md":
                assert anchor[1:] in anchors(linked), f"{page.name} links to {path}{anchor}: no such section"


def test_readme_quotes_the_demo_verdict_as_the_demo_prints_it():
    import re

    from scae_tf.evaluation.verdict import verdict_sentences

    text = " ".join(README.read_text().split())  # quotes may wrap across lines
    quoted = re.findall(r'"(Caught (\d+) of (\d+) defective parts.*?)"', text)
    assert quoted, "README.md should quote the demo's verdict line"
    for sentence, caught, defective in quoted:
        flagged, good = map(int, re.search(r"flagged (\d+) of (\d+) good parts", sentence).groups())
        counts = {"caught": int(caught), "defective": int(defective), "flagged": flagged, "good": good,
                  "threshold": None, "target_false_alarm_rate": 0.01, "image_auroc": None}
        assert sentence == verdict_sentences(counts)[0]
