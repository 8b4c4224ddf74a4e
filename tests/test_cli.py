"""The command line: help for every sub-command and `scae synth` end to end, incl. its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scae_tf.cli import COMMANDS, main
from scae_tf.data.layout import list_dataset


@pytest.mark.parametrize("command", COMMANDS)
def test_help_works_for_every_command(command: str, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"scae {command}" in capsys.readouterr().out


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


def test_synth_writes_a_dataset_and_a_contact_sheet(tmp_path: Path):
    out = tmp_path / "ds"
    sheet = tmp_path / "sheet.png"
    code = main(["-q", "synth", "--out", str(out), "--size", "96", "--train", "3", "--test-good", "1", "--per-defect", "1", "--seed", "2", "--contact-sheet", str(sheet)])
    assert code == 0
    assert len(list_dataset(out, "train")) == 3
    assert len(list_dataset(out, "test")) == 1 + 4
    assert sheet.is_file()


def _names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "case",
    ["not-empty", "out-is-file", "no-parent", "sheet-folder-missing", "too-small"],
)
def test_synth_errors_exit_2_name_the_path_and_write_nothing(tmp_path: Path, case: str, capsys):
    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--size", "64", "--train", "1", "--test-good", "0", "--per-defect", "0"]
    named = out
    if case == "not-empty":
        out.mkdir()
        (out / "precious.txt").write_text("keep me")
    elif case == "out-is-file":
        out.write_text("a file")
    elif case == "no-parent":
        out = tmp_path / "missing" / "ds"
        args[2] = str(out)
        named = tmp_path / "missing"
    elif case == "sheet-folder-missing":
        named = tmp_path / "nowhere"
        args += ["--contact-sheet", str(named / "sheet.png")]
    elif case == "too-small":
        args[4] = "16"
    before = _names(tmp_path)
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert str(named) in err and "Traceback" not in err
    assert err.startswith("scae synth: error:")
    assert _names(tmp_path) == before


def test_module_entry_point_reports_errors_without_traceback(tmp_path: Path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "x").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "scae_tf", "synth", "--out", str(out), "--size", "64"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert str(out) in proc.stderr and "Traceback" not in proc.stderr
    assert _names(tmp_path) == ["ds", "ds/x"]
