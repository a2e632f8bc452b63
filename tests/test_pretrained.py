"""Pretrained models: train_pretrained, load_pretrained, explain, and the
mlircost train / predict / explain commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from xgboost import XGBRegressor

import mlircost_classic as mc
from mlircost_classic.cli import main
from mlircost_classic.mlir import detect_level
from mlircost_classic.models import (
    MODULE_FIT_EXCLUDED_FAMILIES,
    CostModel,
    explain,
    load_pretrained,
    pretrained_info,
    pretrained_name,
    resolve_target,
    target_unit,
    train_pretrained,
)

SMALL = XGBRegressor(n_estimators=25, max_depth=3, learning_rate=0.3, n_jobs=1)

MATMUL = """
func.func @main(%a: tensor<64x128xf32>, %b: tensor<128x32xf32>) -> tensor<64x32xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %0 = tensor.empty() : tensor<64x32xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<64x32xf32>) -> tensor<64x32xf32>
  %2 = linalg.matmul ins(%a, %b : tensor<64x128xf32>, tensor<128x32xf32>)
       outs(%1 : tensor<64x32xf32>) -> tensor<64x32xf32>
  return %2 : tensor<64x32xf32>
}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small linalg model trained by train_pretrained into a temp folder."""
    out = tmp_path_factory.mktemp("pretrained")
    infos = train_pretrained(
        out,
        models=[("modules", "linalg")],
        estimator=SMALL,
        n_splits=2,
        max_rows=60,
        random_state=0,
    )
    return out, infos[0]


def test_detect_level():
    assert detect_level(MATMUL) == "linalg"
    assert detect_level("%0 = torch.aten.mm %a, %b : !torch.vtensor") == "torch"
    assert detect_level("%0 = stablehlo.add %a, %b : tensor<4xf32>") == "stablehlo"
    assert detect_level("%0 = tosa.add %a, %b : tensor<4xf32>") == "tosa"
    loops = "affine.for %i = 0 to 4 { %v = affine.load %m[%i] : memref<4xf32> }"
    assert detect_level(loops) == "affine"
    assert mc.detect_level is detect_level


def test_units_and_names():
    assert target_unit("cpu_x86_64_v3.instructions") == "instructions"
    assert target_unit("nvidia_h100.latency_us") == "µs"
    assert target_unit("nvidia_sm80.registers") == "registers / thread"
    assert target_unit("amd_gfx942.occupancy") == "fraction of max waves"
    assert target_unit("nvidia_sm80.occupancy") == "fraction of max warps"
    assert target_unit("made_up.thing") == ""
    assert pretrained_name() == "modules-linalg"
    assert pretrained_name("kernels") == "kernels-dispatch"
    with pytest.raises(ValueError, match="no default model"):
        pretrained_name("modules", "llvm")
    with pytest.raises(ValueError, match="kind"):
        pretrained_name("programs")


def test_resolve_target():
    names = ["cpu_host.latency_us", "nvidia_sm80.registers", "nvidia_sm90.registers"]
    assert resolve_target(names, "nvidia_sm90.registers") == 2
    assert resolve_target(names, "latency_us") == 0
    assert resolve_target(names, "cpu_host") == 0
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_target(names, "registers")
    with pytest.raises(ValueError, match="unknown target"):
        resolve_target(names, "spills")


def test_train_writes_model_and_record(trained):
    out, info = trained
    assert (out / "modules-linalg.zip").is_file()
    on_disk = json.loads((out / "modules-linalg.json").read_text())
    assert on_disk["name"] == info["name"] == "modules-linalg"
    assert on_disk == pretrained_info("modules", "linalg", path=out)
    assert on_disk["dataset"]["records"] == 60
    assert len(on_disk["dataset"]["sha256"]) == 64
    assert on_disk["dataset"]["files"], "the shard files are listed"
    targets = on_disk["targets"]
    assert "cpu_x86_64_v3.instructions" in targets
    assert not [t for t in targets if t.endswith("_spread")]
    assert targets["cpu_x86_64_v3.instructions"]["unit"] == "instructions"
    cv = on_disk["cv"]["metrics"]["cpu_x86_64_v3.instructions"]
    assert -1 <= cv["spearman"] <= 1 and 0 <= cv["coverage"] <= 1
    assert "GroupKFold" in on_disk["cv"]["protocol"]


def test_load_pretrained_predicts(trained):
    out, info = trained
    model = load_pretrained("modules", "linalg", path=out)
    assert isinstance(model, CostModel)
    assert load_pretrained("modules", "linalg", path=out) is model  # cached
    assert model.target_names_ == list(info["targets"])
    pred = model.predict([MATMUL])
    assert pred.shape == (1, len(model.target_names_))
    assert np.isfinite(pred).all()
    lower, upper = model.predict_interval([MATMUL])
    assert (lower <= pred + 1e-9).all() and (pred <= upper + 1e-9).all()
    # Log targets were never negative: predictions and both bounds stop at 0.
    logs = np.asarray(model.log_targets_)
    assert logs.any() and (lower[:, logs] >= 0).all() and (pred[:, logs] >= 0).all()
    assert (upper[:, logs] >= 0).all()
    with pytest.raises(FileNotFoundError, match="mlircost train"):
        load_pretrained("modules", "tosa", path=out)


def test_explain_adds_up_to_the_prediction(trained):
    model = load_pretrained("modules", "linalg", path=trained[0])
    result = explain(model, MATMUL, "instructions", top=5)
    assert result.target == "cpu_x86_64_v3.instructions"
    assert result.log_scale
    assert result.raw_output == pytest.approx(np.log1p(result.prediction), abs=1e-4)
    assert 0 < len(result.contributions) <= 5
    sizes = [abs(c.contribution) for c in result.contributions]
    assert sizes == sorted(sizes, reverse=True)
    assert all(c.name and c.feature for c in result.contributions)
    assert "pred_contribs" in result.method
    text = str(result)
    assert "base value" in text and result.contributions[0].name in text
    data = result.to_dict()
    assert data["scale"] == "log1p" and len(data["contributions"]) == len(sizes)
    with pytest.raises(ValueError, match="ambiguous"):
        explain(model, MATMUL, "registers")


def test_explain_linear_model():
    bunch = mc.load_dataset("modules", level="linalg")
    j = bunch.target_names.index("cpu_x86_64_v3.instructions")
    rows = np.flatnonzero(np.isfinite(bunch.target[:, j]))[:80]
    texts = [bunch.data[i] for i in rows]
    model = CostModel(estimator=Ridge(alpha=1.0)).fit(
        texts, bunch.target[rows, j], target_names=["cpu_x86_64_v3.instructions"]
    )
    result = explain(model, texts[0], "cpu_x86_64_v3.instructions", top=3)
    assert result.method == "linear coefficients + roofline prior"
    expected = np.log1p(result.prediction) if result.log_scale else result.prediction
    assert result.raw_output == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_cli_predict_formats(trained, capsys, tmp_path):
    out = str(trained[0])
    source = tmp_path / "mm.mlir"
    source.write_text(MATMUL)
    assert main(["predict", str(source), "--model-dir", out]) == 0
    table = capsys.readouterr().out
    assert "level linalg" in table and "90% interval" in table
    assert "cpu_x86_64_v3.instructions" in table and "instructions" in table

    argv = ["predict", str(source), "--model-dir", out, "--format", "json"]
    assert main([*argv, "--targets", "registers"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert {p["target"] for p in result["predictions"]} == {
        "nvidia_sm80.registers",
        "nvidia_sm90.registers",
    }
    for p in result["predictions"]:
        assert p["lower"] <= p["prediction"] <= p["upper"]
        assert p["unit"] == "registers / thread"

    argv = ["predict", str(source), "--model-dir", out, "--format", "csv"]
    assert main([*argv, "--targets", "cpu_x86_64_v3.instructions"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "file,level,target,prediction,lower,upper,unit"
    assert len(lines) == 2 and lines[1].startswith(f"{source},linalg,")


def test_cli_predict_bad_files_do_not_stop_the_others(trained, capsys, tmp_path):
    good = tmp_path / "good.mlir"
    good.write_text(MATMUL)
    broken = tmp_path / "broken.mlir"
    broken.write_text("func.func @f( {{ oops")
    junk = tmp_path / "junk.mlir"
    junk.write_bytes(bytes(range(256)) * 4)
    argv = [str(broken), str(junk), str(tmp_path / "missing.mlir"), str(good)]
    code = main(["predict", *argv, "--model-dir", str(trained[0]), "--format", "json"])
    assert code == 2
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [("error" in r) for r in results] == [True, True, True, False]
    assert "broken.mlir" in captured.err and "binary" in captured.err
    assert "not found" in captured.err
    assert "Traceback" not in captured.err


def test_cli_predict_stdin(trained, capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(MATMUL.encode())))
    argv = ["predict", "-", "--model-dir", str(trained[0]), "--format", "json"]
    assert main([*argv, "--targets", "instructions"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["file"] == "<stdin>"
    assert result["predictions"][0]["target"] == "cpu_x86_64_v3.instructions"


def test_cli_predict_warns_when_far_from_the_training_data(capsys, tmp_path):
    source = tmp_path / "odd.mlir"
    source.write_text(
        """func.func @f(%a: tensor<16xf32>) -> tensor<16xf32> {
  %0 = "test.unknown"(%a) : (tensor<16xf32>) -> tensor<16xf32>
  return %0 : tensor<16xf32>
}"""
    )
    argv = ["predict", str(source), "--level", "linalg", "--format", "json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)
    assert any(
        why.endswith("ops never seen in training: test.unknown")
        for why in result["novelty"]
    )
    (warning,) = captured.err.strip().splitlines()
    assert warning.startswith("mlircost predict: warning: ")
    assert f"odd.mlir is far from the training data of {result['model']}" in warning
    assert "test.unknown" in warning


def test_cli_explain(trained, capsys, tmp_path):
    source = tmp_path / "mm.mlir"
    source.write_text(MATMUL)
    argv = ["explain", str(source), "--model-dir", str(trained[0])]
    assert main([*argv, "--target", "instructions", "--top", "4"]) == 0
    text = capsys.readouterr().out
    assert "cpu_x86_64_v3.instructions =" in text and "base value" in text
    assert main([*argv, "--target", "instructions", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["unit"] == "instructions" and data["level"] == "linalg"
    assert main([*argv, "--target", "registers"]) == 2
    assert "ambiguous" in capsys.readouterr().err


def test_cli_train_without_evaluation(capsys, tmp_path):
    """--cv-folds 0 fits and saves the model and prints no held-out figure."""
    argv = ["train", "--out", str(tmp_path), "--models", "modules-linalg"]
    assert main([*argv, "--cv-folds", "0", "--max-rows", "40", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "modules-linalg: 40 records" in out and "Spearman" not in out
    assert (tmp_path / "modules-linalg.zip").is_file()
    assert pretrained_info("modules", "linalg", path=tmp_path)["cv"]["metrics"] == {}


def test_cli_train_rejects_unknown_model(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path), "--models", "modules-llvm"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("kind, level", mc.models.DEFAULT_MODELS)
def test_shipped_defaults(kind, level):
    """Every default model ships, loads without pickle and knows its training data."""
    from mlircost_classic.datasets import get_data_home

    info = pretrained_info(kind, level)
    assert info["name"] == pretrained_name(kind, level)
    bundled = {p.name for p in get_data_home().iterdir()}
    assert set(info["dataset"]["files"]) <= bundled, "trained on bundled shards"
    model = load_pretrained(kind, level)
    assert model.target_names_ == list(info["targets"])
    assert model.intervals == "conformal"
    assert all(t in model.target_names_ for t in ("cpu_x86_64_v3.instructions",))
    if kind == "modules":
        bunch = mc.load_dataset(kind, level=level)
        pred = model.predict(bunch.data[:3])
        assert pred.shape == (3, len(model.target_names_))
        assert np.isfinite(pred).all()


def test_quickstart_command(capsys):
    """The README's first command: a prediction table for the example module."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "mlp_linalg.mlir"
    assert main(["predict", str(example)]) == 0
    out = capsys.readouterr().out
    head = "model stacked-linalg + composed-linalg (per target), 90% intervals"
    assert head in out
    assert "cpu_x86_64_v3.instructions" in out and "registers / thread" in out


def test_train_the_stacked_model_without_leaky_folds(tmp_path):
    """stacked-linalg: trained on modules, its folds left to composed_ood.py."""
    (info,) = train_pretrained(
        tmp_path,
        models=[("stacked", "linalg")],
        estimator=SMALL,
        n_splits=2,
        max_rows=30,
        random_state=0,
    )
    assert info["name"] == "stacked-linalg" and info["dataset"]["records"] == 30
    # a module-level fit leaves out the families drawn for their kernels
    assert not set(info["families"]) & set(MODULE_FIT_EXCLUDED_FAMILIES)
    assert info["model"]["prior"] == "extensive"  # default_prior("stacked")
    assert info["cv"]["metrics"] == {}  # the kernels model saw every family
    assert info["cv"]["protocol"].startswith("none (held out by benchmarks/")
    model = load_pretrained("stacked", "linalg", path=tmp_path)
    assert type(model.featurizer_).__name__ == "StackedFeaturizer"
    assert model.target_names_ == list(info["targets"])
    pred = model.predict([MATMUL])
    assert pred.shape == (1, len(model.target_names_)) and np.isfinite(pred).all()


def test_training_clears_every_cache_of_loaded_models(tmp_path):
    """After train_pretrained, the auto model's composed and stacked answers
    share one kernels model again (else each module is composed twice)."""
    before = load_pretrained("auto", "linalg")
    train_pretrained(
        tmp_path,
        models=[("modules", "linalg")],
        estimator=SMALL,
        n_splits=0,
        max_rows=30,
        random_state=0,
    )
    after = load_pretrained("auto", "linalg")
    assert after is not before
    composed = after.models_["composed"].kernel_model_
    stacked = after.models_["stacked"].featurizer_.kernel_model_
    assert composed is stacked
