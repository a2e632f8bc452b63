"""The ``mlircost`` command: output formats and clear errors for user mistakes."""

import csv
import io
import json
from pathlib import Path

import pytest

from mlircost_classic.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mlp_linalg.mlir"


def test_featurize_table_shows_costs_first(capsys):
    assert main(["featurize", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.index("[shapes]") < out.index("[opcodes]") < out.index("[ngrams]")
    # 2*32*256*512 + 2*32*512*128: the two matmuls of the example.
    line = next(x for x in out.splitlines() if x.strip().startswith("matmul FLOPs"))
    assert float(line.split()[-1]) == pytest.approx(12582912, rel=1e-5)


def test_featurize_csv_has_one_row_per_file(capsys):
    assert main(["featurize", str(EXAMPLE), str(EXAMPLE), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][0] == "file"
    assert len(rows) == 3
    assert rows[1][1:] == rows[2][1:]


def test_featurize_json_from_stdin(capsys, monkeypatch):
    text = "func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {\n  return %a : tensor<4xf32>\n}\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["featurize", "-", "--features", "opcode", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["file"] == "<stdin>"
    assert out[0]["features"]["op func.func"] == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        (b"\x00\x01\x02binary", "NUL"),
        (b"func.func @f() {\n  %0 = arith.constant 1 : i32\n", "line"),
    ],
)
def test_featurize_bad_files_are_clear_errors(tmp_path, capsys, content, message):
    path = tmp_path / "bad.mlir"
    if content is not None:
        path.write_bytes(content)
    assert main(["featurize", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlircost featurize: error:")
    assert message.lower() in err.lower()
    assert "Traceback" not in err


def test_collect_needs_count_or_input(tmp_path, capsys):
    assert main(["collect", "--out", str(tmp_path / "run")]) == 2
    assert "--count" in capsys.readouterr().err


def test_bad_timeout_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(
            ["collect", "--count", "1", "--out", str(tmp_path), "--timeout", "compile"]
        )
    assert info.value.code == 2
    assert "STAGE=SECONDS" in capsys.readouterr().err


def test_dataset_info_on_missing_folder_is_a_clear_error(tmp_path, capsys):
    code = main(["dataset", "info", "--data-home", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    assert code == 2
    assert "mlircost dataset: error:" in err


def test_collect_hardware_and_its_deprecated_alias(tmp_path, capsys):
    from mlircost_classic.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["collect", "--out", str(tmp_path)])
    assert args.hardware == [
        "cpu_x86_64_v3",
        "nvidia_sm80",
        "nvidia_sm90",
        "amd_gfx942",
    ]
    args = parser.parse_args(["collect", "--hardware", "cpu_host", "--out", "x"])
    assert args.hardware == ["cpu_host"]
    assert "deprecated" not in capsys.readouterr().err
    args = parser.parse_args(["collect", "--targets", "nvidia_h100", "--out", "x"])
    assert args.hardware == ["nvidia_h100"]
    assert "--targets is deprecated, use --hardware" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["collect", "--hardware", "tpu", "--out", "x"])


def test_written_out_choices_agree_with_the_library():
    from mlircost_classic.cli import _predict
    from mlircost_classic.models import DEFAULT_MODELS, VARIANT_TASKS

    assert _predict._MODEL_NAMES == [f"{k}-{lv}" for k, lv in DEFAULT_MODELS]
    assert _predict._VARIANT_NAMES == [f"variants-{hw}" for hw in VARIANT_TASKS]


def test_runs_as_a_module():
    import subprocess
    import sys

    from mlircost_classic import __version__

    out = subprocess.run(
        [sys.executable, "-m", "mlircost_classic.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == f"mlircost {__version__}"


def test_collect_input_of_an_empty_file_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "empty.mlir"
    path.write_text("")
    out = tmp_path / "run"
    assert main(["collect", "--input", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlircost collect: error:")
    assert "empty.mlir: the file holds no MLIR operations" in err
    assert not out.exists()


def test_cost_model_commands_take_modules_and_kernels_not_variants():
    from mlircost_classic.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["benchmark", "--protocols", "template", "random"])
    assert args.protocols == ["template", "random"]
    for argv in (
        ["benchmark", "--kinds", "variants"],
        ["benchmark", "--max-per-family", "0"],
        ["report", "--out", "x", "--kind", "variants"],
        ["predict", "--kind", "variants", "f.mlir"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
