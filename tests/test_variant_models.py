"""The spill classifier, the ranker's target estimate and saved variant models."""

import json
import zipfile

import numpy as np
import pytest

from mlircost_classic.featurize import ConfigFeatures
from mlircost_classic.models import (
    VARIANT_TASKS,
    SpillClassifier,
    VariantModels,
    VariantRanker,
    load_variant_models,
    save_variant_models,
    variant_models,
)
from mlircost_classic.models._pretrained import PRETRAINED_DIR
from mlircost_classic.models._rank import _spill_classifier
from tests.test_variants_rank import _thread_variants


def _candidates():
    """The thread-tile candidates of a dispatch; the largest tiles "spill"."""
    texts, volume = _thread_variants()
    groups = np.zeros(len(texts), dtype=int)
    families = np.array(["a", "b", "c", "d"] * (len(texts) // 4), dtype=object)
    spill_bytes = np.where(volume >= 32, volume * 8.0, 0.0)
    return texts, volume, groups, families, spill_bytes


def test_spill_classifier_learns_which_candidates_spill():
    texts, volume, _, families, spill_bytes = _candidates()
    clf = SpillClassifier().fit(texts, spill_bytes, groups=families)
    proba = clf.predict_proba(texts)
    assert proba.shape == (len(texts), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the same classifier and threshold as the spill benchmark's
    F = clf.featurizer_.transform(texts)
    inner, threshold = _spill_classifier(F, (spill_bytes > 0).astype(int), families)
    assert clf.threshold_ == threshold
    np.testing.assert_array_equal(proba[:, 1], inner.predict_proba(F)[:, 1])
    assert (clf.predict(texts) == (spill_bytes > 0)).mean() >= 0.9
    assert set(clf.classes_) == {0, 1}


def test_spill_classifier_of_one_class_is_that_class():
    texts, *_ = _candidates()
    clf = SpillClassifier().fit(texts, np.zeros(len(texts)))
    assert clf.estimator_ is None
    assert (clf.predict(texts) == 0).all()
    assert (clf.predict_proba(texts)[:, 1] == 0).all()
    with pytest.raises(ValueError, match="texts"):
        SpillClassifier().fit(texts, np.zeros(3))


def test_ranker_estimates_the_target_it_ranks_by():
    texts, volume, groups, *_ = _candidates()
    ranker = VariantRanker(n_estimators=60).fit(texts, volume, groups=groups)
    estimate = ranker.predict_target(texts)
    assert estimate.shape == (len(texts),)
    assert (estimate >= 0).all()
    # on its training candidates, close to the values in log space
    assert np.corrcoef(np.log1p(estimate), np.log1p(volume))[0, 1] > 0.9
    regression = VariantRanker(objective="regression", n_estimators=60).fit(
        texts, volume
    )
    np.testing.assert_allclose(
        regression.predict_target(texts), regression.predict(texts)
    )
    ranking = VariantRanker(objective="rank:pairwise", n_estimators=5)
    with pytest.raises(ValueError, match="without estimating"):
        ranking.fit(texts, volume, groups=groups).predict_target(texts)


def _fitted_models():
    texts, volume, groups, families, spill_bytes = _candidates()
    ranker = VariantRanker(n_estimators=40).fit(texts, volume, groups=groups)
    spills = SpillClassifier().fit(texts, spill_bytes, groups=families)
    spills.featurizer_ = ranker.featurizer_
    models = VariantModels(
        "nvidia_sm80",
        "nvidia_sm80.registers",
        ranker,
        spills,
        "nvidia_sm80.spill_bytes",
    )
    return models, texts


def test_variant_models_round_trip_without_pickle(tmp_path):
    models, texts = _fitted_models()
    path = tmp_path / "variants-nvidia_sm80.zip"
    save_variant_models(models, path)
    with pytest.raises(FileExistsError):
        save_variant_models(models, path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == [
            "manifest.json",
            "ranker.ubj",
            "regressor.ubj",
            "spills.ubj",
        ]
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["target"] == "nvidia_sm80.registers"
    loaded = load_variant_models(path)
    assert (loaded.hardware, loaded.target, loaded.spill_metric) == (
        "nvidia_sm80",
        "nvidia_sm80.registers",
        "nvidia_sm80.spill_bytes",
    )
    np.testing.assert_array_equal(
        loaded.ranker.predict(texts), models.ranker.predict(texts)
    )
    np.testing.assert_array_equal(
        loaded.ranker.predict_target(texts), models.ranker.predict_target(texts)
    )
    np.testing.assert_array_equal(
        loaded.spills.predict_proba(texts), models.spills.predict_proba(texts)
    )
    assert loaded.spills.threshold_ == models.spills.threshold_
    assert loaded.ranker.get_params() == models.ranker.get_params()


def _rewrite_manifest(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            zout.writestr(name, data)


def test_variant_models_refuse_files_they_cannot_read(tmp_path):
    models, _ = _fitted_models()
    path = tmp_path / "m.zip"
    save_variant_models(models, path)
    stale = tmp_path / "stale.zip"
    _rewrite_manifest(path, stale, lambda m: m.update(feature_names_sha256="0" * 64))
    with pytest.raises(ValueError, match="does not reproduce"):
        load_variant_models(stale)
    newer = tmp_path / "newer.zip"
    _rewrite_manifest(path, newer, lambda m: m.update(format_version=99))
    with pytest.raises(ValueError, match="format version 99"):
        load_variant_models(newer)
    other = tmp_path / "other.zip"
    _rewrite_manifest(path, other, lambda m: m.update(format="something else"))
    with pytest.raises(ValueError, match="variant models"):
        load_variant_models(other)
    with pytest.raises(ValueError, match=r"\.zip"):
        save_variant_models(models, tmp_path / "folder")
    # a model with another featurizer or objective is not written
    models.ranker.objective = "regression"
    with pytest.raises(ValueError, match="default VariantRanker"):
        save_variant_models(models, tmp_path / "r.zip")


def test_a_model_folder_without_the_file_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="mlircost train"):
        variant_models("amd_gfx942", path=tmp_path)
    with pytest.raises(ValueError, match="known"):
        variant_models("tpu_v5")


@pytest.mark.parametrize("hardware", list(VARIANT_TASKS))
def test_shipped_variant_models_load_with_this_release(hardware):
    # A ConfigFeatures or ShapeFeatures column added since they were fitted
    # makes loading fail here: refit with `mlircost train --out
    # mlircost_classic/data/pretrained --models variants-<hardware>`.
    path = PRETRAINED_DIR / f"variants-{hardware}.zip"
    models = load_variant_models(path)
    target, spill, _ = VARIANT_TASKS[hardware]
    assert (models.hardware, models.target, models.spill_metric) == (
        hardware,
        target,
        spill,
    )
    assert (models.spills is None) == (spill is None)
    with open(PRETRAINED_DIR / f"variants-{hardware}.json", encoding="utf-8") as f:
        info = json.load(f)
    assert info["dataset"]["candidates"] > 1000


def test_shipped_ranker_orders_gpu_candidates_and_flags_spills():
    texts, volume = _thread_variants()
    models = variant_models("nvidia_sm80")
    assert models.candidates == 0  # read from the file, not fitted here
    estimate = models.ranker.predict_target(texts)
    # larger thread tiles hold more registers
    assert np.corrcoef(np.log(volume), np.log(estimate))[0, 1] > 0.5
    p = models.spills.predict_proba(texts)[:, 1]
    assert p[np.argmax(volume)] > p[np.argmin(volume)]
    assert ConfigFeatures().fit(texts).transform(texts).shape[0] == len(texts)


def test_shipped_model_serves_rank(monkeypatch):
    from mlircost_classic.models import _rank

    texts, volume = _thread_variants()
    _rank._bundled_ranker.cache_clear()
    monkeypatch.setattr(
        _rank.VariantRanker,
        "fit",
        lambda *a, **k: pytest.fail("rank fitted a ranker though one is shipped"),
    )
    order = _rank.rank(texts, target="nvidia_sm80.registers")
    assert sorted(order) == list(range(len(texts)))
    _rank._bundled_ranker.cache_clear()


def test_cli_rank_reads_a_model_folder(tmp_path, capsys):
    from mlircost_classic.cli import main
    from mlircost_classic.models import _variant_models

    models, texts = _fitted_models()
    save_variant_models(models, tmp_path / "models" / "variants-nvidia_sm80.zip")
    for i, text in enumerate(texts):
        (tmp_path / f"c{i:02d}.mlir").write_text(text)
    args = ["rank", str(tmp_path), "--target", "nvidia_sm80.registers"]
    folder = ["--model-dir", str(tmp_path / "models")]
    assert main([*args, *folder]) == 0
    rows = capsys.readouterr().out.splitlines()[1:-1]
    # this folder's ranker: its estimates, best candidate first
    estimate = models.ranker.predict_target(texts)
    first = int(rows[0].split()[1][1:3])
    assert float(rows[0].split()[3]) == pytest.approx(estimate[first], rel=1e-3)
    assert first == int(np.argmin(models.ranker.predict(texts)))
    assert main([*args, "--model-dir", str(tmp_path / "none")]) == 2
    assert "mlircost train" in capsys.readouterr().err
    _variant_models._variant_models.cache_clear()


def test_assess_is_the_three_predictions_from_one_featurization(monkeypatch):
    from mlircost_classic.featurize import VariantFeaturizer

    models, texts = _fitted_models()
    expected = (
        models.ranker.predict(texts),
        models.ranker.predict_target(texts),
        models.spills.predict_proba(texts)[:, 1],
    )
    calls = []
    original = VariantFeaturizer.transform
    monkeypatch.setattr(
        VariantFeaturizer,
        "transform",
        lambda self, X: calls.append(len(X)) or original(self, X),
    )
    got = models.assess(texts)
    assert calls == [len(texts)]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    # without a spill classifier: no probability
    models.spills = None
    assert models.assess(texts)[2] is None
