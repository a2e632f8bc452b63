"""NeuralTextRegressor: tokens, sklearn conventions, NaN targets, training control.

Every network here is tiny (d_model 16, a few epochs, a few dozen short texts) so
that the file runs in well under a minute on two CPU cores.
"""

import pickle
import sys

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.model_selection import GroupKFold

from mlircost_classic.models import NeuralTextRegressor, evaluate
from mlircost_classic.models._neural import tokenize

torch = pytest.importorskip("torch")

TINY = dict(d_model=16, n_layers=1, n_heads=2, max_len=64, n_threads=1)


def _chain(n: int, k: int, op: str = "arith.addf", fn: str = "f", arg: str = "a"):
    """``k`` elementwise ops in a chain on ``tensor<n x f32>``."""
    t = f"tensor<{n}xf32>"
    lines = [f"func.func @{fn}(%{arg}: {t}) -> {t} {{"]
    prev = f"%{arg}"
    for i in range(k):
        lines.append(f"  %v{i} = {op} {prev}, {prev} : {t}")
        prev = f"%v{i}"
    lines += [f"  return {prev} : {t}", "}"]
    return "\n".join(lines)


def _corpus():
    """48 texts whose cost is a strong function of size and length: k * n."""
    texts, y = [], []
    for i, n in enumerate([4, 16, 64, 256, 1024, 4096, 16384, 65536]):
        for k in (1, 3, 6):
            for op in ("arith.addf", "arith.mulf"):
                texts.append(_chain(n, k, op, arg=f"x{i}"))
                y.append(float(k * n))
    return texts, np.array(y)


@pytest.fixture(scope="module")
def corpus():
    return _corpus()


@pytest.fixture(scope="module")
def two_targets(corpus):
    """Two target columns with NaNs: size x length (log-skewed) and length."""
    texts, y = corpus
    k = np.array([t.count(" = arith.") for t in texts], dtype=float)
    Y = np.column_stack([y, k])
    Y[::4, 0] = np.nan
    Y[1::5, 1] = np.nan
    return texts, Y


# -- tokens -------------------------------------------------------------------
def test_tokenize_drops_names_and_buckets_shapes():
    a = _chain(64, 2, fn="f", arg="a")
    b = _chain(64, 2, fn="other", arg="input").replace("%v", "%t")
    assert tokenize(a) == tokenize(b)
    tokens = tokenize(
        "func.func @g(%a: tensor<64x140xf32>) -> tensor<64x140xf32> {\n"
        "  return %a : tensor<64x140xf32>\n}"
    )
    assert tokens[0] == "func.func"
    # 64 -> 2 log2 64 = 12, 140 -> round(14.26) = 14, 8960 elements -> 2^13.
    assert tokens[1:5] == ["tensor:f32", "d12", "d14", "n13"]
    assert not any(tok.startswith("%") or "@g" in tok for tok in tokens)
    # Sizes within a half octave share a token; farther ones do not.
    assert tokenize(_chain(64, 1)) == tokenize(_chain(66, 1))
    assert tokenize(_chain(64, 1)) != tokenize(_chain(128, 1))


def test_tokenize_falls_back_on_unreadable_text():
    text = (
        "func.func @f(%a: tensor<4x8xf32>) {\n"
        "  %0 = arith.addf %a, %a : tensor<4x8xf32>\n"
        '  %1 = "foo.bar\n'
    )
    tokens = tokenize(text)
    assert "arith.addf" in tokens and "foo.bar" in tokens
    assert ["tensor:f32", "d4", "d6", "n5"] == tokens[1:5]


# -- fit / predict --------------------------------------------------------------
@pytest.mark.parametrize("arch", ["transformer", "lstm", "cnn"])
def test_every_arch_fits_and_predicts_all_targets(arch, two_targets):
    texts, Y = two_targets
    model = NeuralTextRegressor(arch, max_epochs=2, random_state=0, **TINY)
    model.fit(texts, Y, target_names=["size", "ops"])
    pred = model.predict(texts[:7])
    assert pred.shape == (7, 2)
    assert np.isfinite(pred).all()
    assert model.target_names_ == ["size", "ops"]
    assert model.log_targets_ == [True, False]
    assert 1 <= model.n_epochs_ <= 2
    assert len(model.loss_curve_) == model.n_epochs_
    assert np.isfinite(model.loss_curve_).all()
    assert np.isfinite(model.validation_loss_curve_).all()
    # Padding is invisible: a text alone is predicted as among longer ones.
    alone = np.vstack([model.predict([text]) for text in texts[:3]])
    assert np.allclose(alone, model.predict(texts)[:3], rtol=1e-4)


def test_lstm_with_odd_width():
    texts, y = _corpus()
    model = NeuralTextRegressor("lstm", max_epochs=1, random_state=0, **TINY)
    model.set_params(d_model=15).fit(texts[:12], y[:12])
    assert np.isfinite(model.predict(texts[:3])).all()


def test_nan_targets_are_left_out_of_the_loss(two_targets):
    texts, Y = two_targets
    Y = np.column_stack([Y, np.full(len(texts), np.nan)])
    model = NeuralTextRegressor("cnn", max_epochs=3, random_state=0, **TINY)
    with pytest.warns(UserWarning, match="'never' has no measured row"):
        model.fit(texts, Y, target_names=["size", "ops", "never"])
    assert np.isfinite(model.loss_curve_).all()
    assert np.isfinite(model.validation_loss_curve_).all()
    assert np.isfinite(model.best_validation_loss_)
    pred = model.predict(texts)
    assert np.isfinite(pred[:, :2]).all()
    assert np.isnan(pred[:, 2]).all()


def test_one_d_target_gives_one_d_predictions(corpus):
    texts, y = corpus
    model = NeuralTextRegressor("cnn", max_epochs=1, random_state=0, **TINY)
    pred = model.fit(texts, y).predict(texts)
    assert pred.shape == (len(texts),)
    assert model.target_names_ == ["target0"]


def test_log_target_is_inverted_on_predict(corpus):
    texts, y = corpus  # 4 .. 393216: skewed, so "auto" takes the log
    model = NeuralTextRegressor("cnn", max_epochs=2, random_state=0, **TINY)
    pred = model.fit(texts, y).predict(texts)
    assert model.log_targets_ == [True]
    # Back in the targets' units: near their geometric mean (about e^7.2),
    # far from z-scores (about 0) or log1p values (about 7).
    assert (pred > 0).all()
    assert abs(np.median(np.log1p(pred)) - np.log1p(y).mean()) < 2.0
    linear = NeuralTextRegressor("cnn", max_epochs=2, log_target=False, **TINY)
    assert linear.fit(texts, y).log_targets_ == [False]
    with pytest.raises(ValueError, match="non-negative"):
        NeuralTextRegressor("cnn", log_target=True, **TINY).fit(texts, -y)


def test_learns_size_from_text(corpus):
    texts, y = corpus
    model = NeuralTextRegressor(
        "cnn",
        max_epochs=25,
        learning_rate=3e-3,
        validation_fraction=0.0,
        dropout=0.0,
        random_state=0,
        **TINY,
    )
    pred = model.fit(texts, y).predict(texts)
    rho = stats.spearmanr(y, pred).statistic
    assert rho > 0.9, rho
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]


# -- sklearn conventions -------------------------------------------------------------
def test_same_random_state_gives_identical_predictions(two_targets):
    texts, Y = two_targets
    params = dict(max_epochs=2, dropout=0.2, **TINY)
    first = NeuralTextRegressor("transformer", random_state=3, **params)
    second = NeuralTextRegressor("transformer", random_state=3, **params)
    other = NeuralTextRegressor("transformer", random_state=4, **params)
    pred = first.fit(texts, Y).predict(texts)
    assert np.array_equal(pred, second.fit(texts, Y).predict(texts))
    assert not np.allclose(pred, other.fit(texts, Y).predict(texts))
    # A fit leaves torch's global RNG, thread count and determinism as it found them.
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    first.fit(texts, Y)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_clone_params_and_pickle(corpus):
    texts, y = corpus
    model = NeuralTextRegressor("lstm", max_epochs=1, random_state=0, **TINY)
    assert clone(model).get_params() == model.get_params()
    assert NeuralTextRegressor().get_params()["arch"] == "transformer"
    assert not hasattr(NeuralTextRegressor(), "vocabulary_")  # no work in __init__
    model.fit(texts, y)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "vocabulary_")
    pred = model.predict(texts)
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(restored.predict(texts), pred)
    # Parameters changed after fit do not reach the fitted network.
    model.set_params(max_len=512)
    assert np.array_equal(model.predict(texts), pred)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"arch": "gru"}, "arch"),
        ({"arch": "transformer", "d_model": 16, "n_heads": 3}, "multiple of n_heads"),
        ({"max_len": 4}, "max_len"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_bad_parameters_raise(params, match, corpus):
    texts, y = corpus
    with pytest.raises(ValueError, match=match):
        NeuralTextRegressor(**params).fit(texts[:4], y[:4])


def test_input_checks(corpus):
    texts, y = corpus
    model = NeuralTextRegressor("cnn", max_epochs=1, **TINY)
    with pytest.raises(TypeError, match="wrap one text in a list"):
        model.fit(texts[0], y[:1])
    with pytest.raises(ValueError, match="3 texts but y has 4 rows"):
        model.fit(texts[:3], y[:4])
    with pytest.raises(ValueError, match="mark a missing target with NaN"):
        model.fit(texts[:3], [1.0, np.inf, 2.0])


def test_missing_torch_names_the_extra(monkeypatch, corpus):
    texts, y = corpus
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"\[neural\]"):
        NeuralTextRegressor("cnn").fit(texts, y)


# -- training control ------------------------------------------------------------------
def test_early_stopping_keeps_the_best_epoch(two_targets):
    texts, Y = two_targets
    model = NeuralTextRegressor(
        "cnn",
        max_epochs=40,
        patience=2,
        learning_rate=3e-2,
        validation_fraction=0.3,
        random_state=0,
        **TINY,
    )
    model.fit(texts, Y)
    curve = model.validation_loss_curve_
    assert len(curve) == model.n_epochs_
    assert model.best_epoch_ == int(np.argmin(curve)) + 1
    assert model.best_validation_loss_ == min(curve)
    assert model.n_epochs_ < 40, "a large learning rate should stop early"
    assert model.n_epochs_ - model.best_epoch_ == 2

    without = NeuralTextRegressor(
        "cnn", max_epochs=2, validation_fraction=0.0, random_state=0, **TINY
    ).fit(texts, Y)
    assert without.validation_loss_curve_ == []
    assert np.isnan(without.best_validation_loss_)
    assert without.n_epochs_ == without.best_epoch_ == 2


def test_max_seconds_stops_training(corpus):
    texts, y = corpus
    model = NeuralTextRegressor(
        "cnn", max_epochs=10_000, max_seconds=1e-6, batch_size=8, **TINY
    )
    model.fit(texts, y)
    assert model.n_epochs_ == 1
    assert len(model.loss_curve_) == 1
    assert np.isfinite(model.predict(texts)).all()


def test_long_texts_are_cut_to_max_len():
    texts = [_chain(32, k) for k in (2, 40, 80)]
    model = NeuralTextRegressor("transformer", max_epochs=1, random_state=0, **TINY)
    model.set_params(max_len=16, min_frequency=1).fit(texts, [1.0, 2.0, 3.0])
    sequences, log_lengths = model._encode(texts)
    assert max(len(s) for s in sequences) == 16
    assert model.vocabulary_["<cut>"] in sequences[2]
    # The untruncated length is still seen.
    assert log_lengths[2] > log_lengths[1] > np.log(16)
    assert np.isfinite(model.predict(texts)).all()


# -- evaluation protocol ----------------------------------------------------------------
def test_works_in_evaluate_with_group_folds():
    import mlircost_classic as mc

    ds = mc.load_dataset("modules", level="linalg")
    groups = np.asarray(ds.groups)
    lengths = np.array([len(t) for t in ds.data])
    # The three shortest modules of each family.
    rows = np.concatenate(
        [
            np.flatnonzero(groups == g)[np.argsort(lengths[groups == g])[:3]]
            for g in np.unique(groups)
        ]
    )
    texts = [ds.data[i] for i in rows]
    names = ["cpu_x86_64_v3.instructions", "nvidia_sm80.registers"]
    Y = np.asarray(ds.target, dtype=float)[rows][
        :, [list(ds.target_names).index(name) for name in names]
    ]
    model = NeuralTextRegressor("cnn", max_epochs=2, random_state=0, **TINY)
    table, predictions = evaluate(
        {"neural": model},
        texts,
        Y,
        names,
        groups[rows],
        cv=GroupKFold(n_splits=3),
        latency_repeats=1,
        batch_size=4,
        batch_repeats=1,
        as_frame=False,
        return_predictions=True,
    )
    oof = predictions["neural"]
    assert oof.shape == Y.shape
    assert np.isfinite(oof[~np.isnan(Y)]).all()
    values = {(r["target"], r["metric"]): r["value"] for r in table}
    for name in names:
        assert np.isfinite(values[(name, "spearman")])
    assert values[("*", "fit_seconds")] > 0
