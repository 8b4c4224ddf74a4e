"""The command line: help for every sub-command and `scae synth` end to end, incl. its errors."""

from __future__ import annotations

import logging
import os
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
    ["not-empty", "out-is-file", "parent-is-file", "too-small", "too-small-in-new-folders"],
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
    elif case == "parent-is-file":
        (tmp_path / "file").write_text("a file")
        named = tmp_path / "file"
        args[2] = str(named / "ds")
    elif case == "too-small":
        args[4] = "16"
    elif case == "too-small-in-new-folders":  # the parents made for it are removed again
        args[2] = str(tmp_path / "new" / "er" / "ds")
        args += ["--contact-sheet", str(tmp_path / "sheets" / "sheet.png")]
        args[4] = "16"
        named = tmp_path / "new" / "er" / "ds"
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


# --- quiet by default -------------------------------------------------------------------------

C_NOISE = r"""
import logging, os, sys
from scae_tf.cli import configure_logging
from scae_tf.quiet import c_stderr_captured
configure_logging(verbose=len(sys.argv) > 1 and sys.argv[1] == "verbose")
try:
    with c_stderr_captured():
        os.write(2, b"C-LEVEL NOISE\n")
        logging.getLogger("scae").warning("OUR MESSAGE")
        print("OUR PRINT", file=sys.stderr)
        if len(sys.argv) > 1 and sys.argv[1] == "fail":
            raise RuntimeError("boom")
except RuntimeError:
    pass
print("tf", os.environ.get("TF_CPP_MIN_LOG_LEVEL"), logging.getLogger("tensorflow").level)
"""


@pytest.mark.parametrize("mode", ["quiet", "verbose", "fail"])
def test_c_level_stderr_is_held_back_unless_verbose_or_failing(mode: str):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SCAE_VERBOSE")}
    proc = subprocess.run([sys.executable, "-c", C_NOISE, mode], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "OUR MESSAGE" in proc.stderr and "OUR PRINT" in proc.stderr  # Python's own stderr stays visible
    assert ("C-LEVEL NOISE" in proc.stderr) == (mode != "quiet")
    if mode == "verbose":
        assert proc.stdout.split()[:2] == ["tf", "None"] and proc.stdout.split()[2] == str(logging.INFO)
    else:
        assert proc.stdout.split() == ["tf", "3", str(logging.ERROR)]


TENSORFLOW_IMPORT = r"""
import sys
from scae_tf.cli import configure_logging
configure_logging(verbose=sys.argv[1] == "verbose")
import keras  # imports tensorflow through the hook, as a training module does
import tensorflow as tf
print("sum", float(tf.reduce_sum(tf.ones([3]))), "hooks", sum("QuietTensorFlow" in type(f).__name__ for f in sys.meta_path))
"""


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_tensorflow_imports_without_its_startup_banner_unless_verbose(mode: str):
    """On AVX-512 CPUs TensorFlow prints "oneDNN custom operations are on" through absl at import,
    before TF_CPP_MIN_LOG_LEVEL is read; quiet mode holds it back, and TensorFlow still works."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SCAE_VERBOSE")}
    proc = subprocess.run([sys.executable, "-c", TENSORFLOW_IMPORT, mode], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["sum", "3.0", "hooks", "0"]  # the hook removes itself after the one import
    if mode == "quiet":
        assert not [word for word in NOISE if word in proc.stderr], proc.stderr


NOISE = ("oneDNN", "absl", "Assets written to", "fully_quantize", "XNNPACK", "[ WARN", "libpng error", "Traceback")


@pytest.mark.slow
def test_export_and_inspect_print_no_library_chatter(tmp_path: Path, tmp_path_factory):
    from edge_fixtures import cached_tiny_run

    data, run = cached_tiny_run(tmp_path_factory.getbasetemp())
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SCAE_VERBOSE")}
    bundle = tmp_path / "deep" / "er" / "bundle"  # parents created
    export = subprocess.run([sys.executable, "-m", "scae_tf", "export", str(run), "--out", str(bundle), "--precision",
                             "int8"], capture_output=True, text=True, env=env, timeout=600)
    assert export.returncode == 0, export.stderr
    assert not [word for word in NOISE if word in export.stderr], export.stderr
    image = sorted((data / "test" / "good").glob("*.png"))[0]
    truncated, damaged = tmp_path / "truncated.png", tmp_path / "damaged.png"
    truncated.write_bytes(image.read_bytes()[:300])  # OpenCV: "[ WARN:0@...] buffer is incomplete"
    data = bytearray(image.read_bytes())
    data[200] ^= 0xFF
    damaged.write_bytes(bytes(data))  # libpng: "libpng error: ..." straight to file descriptor 2
    command = [sys.executable, "-m", "scae_tf", "inspect", "--bundle", str(bundle), str(truncated), str(damaged),
               str(image)]
    inspect = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert inspect.returncode == 2 and "truncated.png: unreadable or corrupt image" in inspect.stderr
    assert "damaged.png: unreadable or corrupt image" in inspect.stderr
    assert not [word for word in NOISE if word in inspect.stderr], inspect.stderr
    loud = subprocess.run(command[:3] + ["--verbose"] + command[3:], capture_output=True, text=True, env=env, timeout=300)
    assert "XNNPACK" in loud.stderr  # --verbose brings the library messages back


# --- fail fast, output folders with their parents ---------------------------------------------

TRAIN_ON_MISSING_DATA = r"""
import sys
from scae_tf.cli import main
code = main(["train", "--data", sys.argv[1], "--out", sys.argv[2]])
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize("layout", ["missing", "empty-train-good", "not-a-dataset"])
def test_train_checks_data_before_loading_tensorflow(tmp_path: Path, layout: str):
    data = tmp_path / "data"
    if layout == "empty-train-good":
        (data / "train" / "good").mkdir(parents=True)
    elif layout == "not-a-dataset":
        (data / "pictures").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-c", TRAIN_ON_MISSING_DATA, str(data), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "tensorflow imported: False" in proc.stdout
    assert proc.stderr.startswith("scae train: error:") and str(data) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_synth_creates_missing_parent_folders(tmp_path: Path):
    out = tmp_path / "a" / "b" / "c"
    sheet = tmp_path / "sheets" / "x" / "sheet.png"
    code = main(["-q", "synth", "--out", str(out), "--size", "64", "--train", "1", "--test-good", "0", "--per-defect", "0",
                 "--contact-sheet", str(sheet)])
    assert code == 0
    assert len(list_dataset(out, "train")) == 1 and sheet.is_file()


def test_verbosity_flags_work_before_and_after_the_command():
    from scae_tf.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--verbose", "synth", "--out", "x"]).verbose is True
    assert parser.parse_args(["synth", "--out", "x", "--verbose"]).verbose is True
    assert parser.parse_args(["synth", "--out", "x"]).verbose is False
    assert parser.parse_args(["-q", "synth", "--out", "x"]).quiet is True
