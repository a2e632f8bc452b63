"""The report: readable feature names, importance measures, files, command line.

The importance functions are checked on synthetic data where the answer is
known (one informative column, one noise column); the report itself is built
once on a small sample of the bundled dataset and checked for what a reader
needs: every figure it links exists, the tables have their columns and finite
values, and the names are readable.
"""

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBRegressor

from mlircost_classic.cli import main
from mlircost_classic.featurize import MLIRFeaturizer
from mlircost_classic.models import (
    ROOFLINE_COLUMNS,
    readable_feature_name,
    readable_feature_names,
)
from mlircost_classic.report import (
    IMPORTANCE_COLUMNS,
    METRIC_COLUMNS,
    build_report,
    gain_importance,
    linear_coefficients,
    permutation_importances,
    shap_values,
)
from mlircost_classic.report._report import _split

pytest.importorskip("matplotlib")

TARGETS = ["cpu_x86_64_v3.instructions", "nvidia_sm80.registers"]
PNG = b"\x89PNG\r\n\x1a\n"


# -- readable names ---------------------------------------------------------------
@pytest.mark.parametrize(
    "name, expected",
    [
        ("opcodes__op linalg.matmul", "op linalg.matmul count"),
        ("op linalg.matmul", "op linalg.matmul count"),
        ("opcodes__op <unseen>", "ops unseen in training (count)"),
        ("opcodes__dialect linalg", "linalg dialect ops (count)"),
        ("ngrams__ngram linalg.matmul", "op linalg.matmul (tf-idf)"),
        (
            "ngrams__ngram linalg.fill linalg.matmul",
            "op pair linalg.fill → linalg.matmul (tf-idf)",
        ),
        (
            "ngrams__ngram a.x b.y c.z",
            "op sequence a.x → b.y → c.z (tf-idf)",
        ),
        ("shapes__matmul FLOPs", "estimated matmul FLOPs"),
        ("shapes__log1p FLOPs total", "log(1 + estimated FLOPs (total))"),
        ("shapes__bytes f32", "bytes of f32 values"),
        ("shapes__bytes moved conv", "estimated bytes moved by conv ops"),
        ("shapes__ops conv", "conv ops"),
        ("shapes__ops", "ops (total)"),
        (
            "shapes__log1p heaviest op innermost dim",
            "log(1 + heaviest op: innermost output dimension)",
        ),
        ("parse_error", "unreadable MLIR (parse error)"),
        ("other__whatever", "other__whatever"),
    ],
)
def test_readable_feature_name(name, expected):
    assert readable_feature_name(name) == expected


def test_readable_names_of_a_fitted_featurizer_are_distinct_and_unprefixed():
    text = """func.func @mm(%a: tensor<8x4xf32>, %b: tensor<4x16xf32>,
                       %c: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%c : tensor<8x16xf32>) -> tensor<8x16xf32>
  %0 = linalg.matmul ins(%a, %b : tensor<8x4xf32>, tensor<4x16xf32>)
                     outs(%f : tensor<8x16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}"""
    featurizer = MLIRFeaturizer().fit([text])
    names = readable_feature_names(featurizer)
    assert len(names) == len(featurizer.get_feature_names_out())
    assert len(set(names)) == len(names)
    assert not any("__" in name for name in names)
    assert "op pair linalg.fill → linalg.matmul (tf-idf)" in names


# -- importance measures on known data ------------------------------------------
@pytest.fixture(scope="module")
def signal_and_noise():
    """y depends on column 0 only; column 1 is noise; a log-target xgboost model."""
    rng = np.random.RandomState(0)
    X = rng.rand(400, 2)
    y = 100 * np.exp(3 * X[:, 0])
    model = TransformedTargetRegressor(
        regressor=XGBRegressor(n_estimators=60, max_depth=3, n_jobs=1),
        func=np.log1p,
        inverse_func=np.expm1,
        check_inverse=False,
    ).fit(X[:300], y[:300])
    return model, X[300:], y[300:]


@pytest.mark.parametrize("as_sparse", [False, True])
def test_permutation_importance_of_a_noise_feature_is_about_zero(
    signal_and_noise, as_sparse
):
    model, X, y = signal_and_noise
    F = sparse.csr_matrix(X) if as_sparse else X
    mean, std = permutation_importances(
        model, F, y, [0, 1], n_repeats=5, random_state=0
    )
    assert mean[0] > 1.0  # shuffling the signal ruins R² on the log scale
    assert abs(mean[1]) < 0.02
    assert std.shape == (2,)


def test_permutation_importance_of_a_subset_keeps_the_other_columns(signal_and_noise):
    model, X, y = signal_and_noise
    mean, _ = permutation_importances(model, X, y, [1], n_repeats=3, random_state=0)
    # Only the noise column is shuffled: the signal stays, the score hardly moves.
    assert mean.shape == (1,) and abs(mean[0]) < 0.02


def test_gain_and_shap_values_favour_the_signal(signal_and_noise):
    model, X, _ = signal_and_noise
    gain = gain_importance(model, 2)
    assert gain[0] > 100 * gain[1]
    contributions, bias = shap_values(model, X)
    assert contributions.shape == X.shape
    # Rows add up to the prediction on the fitted (log1p) scale.
    np.testing.assert_allclose(
        bias + contributions.sum(axis=1), np.log1p(model.predict(X)), atol=1e-3
    )
    assert np.abs(contributions[:, 0]).mean() > 20 * np.abs(contributions[:, 1]).mean()


def test_linear_coefficients_are_per_standard_deviation():
    rng = np.random.RandomState(0)
    X = rng.rand(200, 2) * [1.0, 100.0]
    y = 3 * X[:, 0] + 0.03 * X[:, 1]
    pipe = make_pipeline(StandardScaler(with_mean=False), Ridge(alpha=1e-8)).fit(X, y)
    coef = linear_coefficients(pipe)
    np.testing.assert_allclose(coef, [3, 0.03] * X.std(axis=0), rtol=1e-4)
    with pytest.raises(TypeError, match="linear"):
        linear_coefficients(make_pipeline(XGBRegressor(n_estimators=2)).fit(X, y))


def test_split_holds_out_families_near_the_test_share_of_records():
    # one family as large as a third of the records, forty small ones
    groups = np.array(
        ["large"] * 300 + [f"small{i}" for i in range(40) for _ in range(15)]
    )
    for seed in range(10):
        train, test = _split(groups, 0.25, seed)
        assert not set(groups[train]) & set(groups[test])
        assert len(train) + len(test) == len(groups)
        assert abs(len(test) / len(groups) - 0.25) < 0.1, seed


# -- the report -------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    page = build_report(
        out,
        targets=TARGETS,
        max_rows=120,
        n_repeats=2,
        n_permutation_features=10,
        random_state=0,
    )
    return page


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_page_links_every_figure_and_table(report):
    out = report.parent
    assert report.name == "index.html"
    html = report.read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', html)
    # The overview plus four figures per target.
    assert len(images) == 1 + 4 * len(TARGETS)
    for image in images:
        assert (out / image).read_bytes()[:8] == PNG, image
    assert set(images) == {f"img/{p.name}" for p in (out / "img").glob("*.png")}
    for link in re.findall(r'<a href="([^"#]+)"', html):
        assert (out / link).is_file(), link
    # Self-contained: no script, nothing fetched from the network.
    assert "<script" not in html and "http" not in html
    for target in TARGETS:
        assert target in html


def test_metrics_table(report):
    columns, rows = _read_csv(report.parent / "metrics.csv")
    assert tuple(columns) == METRIC_COLUMNS
    assert {(r["target"], r["model"]) for r in rows} == {
        (t, m) for t in TARGETS for m in ("xgboost", "linear")
    }
    for row in rows:
        assert int(row["n_test"]) > 0 and int(row["n_train"]) > int(row["n_test"])
        assert -1 <= float(row["spearman"]) <= 1
        assert np.isfinite(float(row["median_ape"]))


def test_importance_table(report):
    columns, rows = _read_csv(report.parent / "importance.csv")
    assert tuple(columns) == IMPORTANCE_COLUMNS
    for target in TARGETS:
        mine = [r for r in rows if r["target"] == target]
        assert mine
        for column in ("gain", "gain_share", "shap_mean_abs", "linear_coef"):
            values = np.array([float(r[column]) for r in mine])
            assert np.isfinite(values).all(), column
        assert sum(float(r["gain_share"]) for r in mine) == pytest.approx(1.0)
        # Rows come by gain; the permutation importance of the top ones is filled in.
        gains = [float(r["gain"]) for r in mine]
        assert gains == sorted(gains, reverse=True)
        permutation = [r["permutation_mean"] for r in mine]
        assert all(p != "" for p in permutation[:5])
        assert all(np.isfinite(float(p)) for p in permutation if p != "")
        # A feature no split uses cannot change a prediction when shuffled, unless
        # the roofline prior reads it (its SHAP values include the prior's term).
        unused = [r for r in mine if float(r["gain"]) == 0]
        assert all(
            float(r["shap_mean_abs"]) == 0
            for r in unused
            if not any(r["feature"] in names for names in ROOFLINE_COLUMNS)
        )
        for row in mine:
            assert row["name"] == readable_feature_name(row["feature"])


def test_report_fails_clearly_without_two_families(tmp_path, monkeypatch):
    import mlircost_classic.report._report as module

    real = module.load_dataset

    def one_family(*args, **kwargs):
        data = real(*args, **kwargs)
        data.groups = np.full(len(data.groups), "mlp", dtype=object)
        return data

    monkeypatch.setattr(module, "load_dataset", one_family)
    with pytest.raises(ValueError, match="2 families"):
        build_report(tmp_path, targets=TARGETS[:1], max_rows=40)


# -- command line -----------------------------------------------------------------
def test_cli_report_writes_the_page(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(
        [
            "report",
            "--out",
            str(out),
            "--quick",
            "--targets",
            TARGETS[0],
            "--max-rows",
            "80",
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out / "index.html")
    assert printed.err == ""  # --quiet: no progress bar
    assert (out / "index.html").is_file()
    assert (out / "img" / f"{TARGETS[0]}.predicted.png").is_file()


def test_cli_report_unknown_target_is_a_clear_error(tmp_path, capsys):
    code = main(["report", "--out", str(tmp_path), "--targets", "no_such.target"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("mlircost report: error:") and "no_such.target" in err
    assert "Traceback" not in err
