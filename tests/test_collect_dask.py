"""The collection runner on a Dask cluster, through joblib's dask backend."""

import pytest

distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
from test_collect_runner import FakeSpec, check_files, run  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address=None,
        resources={"cpu_timing": 1},
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def test_collection_on_a_local_cluster(client, tmp_path):
    specs = [FakeSpec("mlp", {"n": i}) for i in range(4)]
    with joblib.parallel_config(backend="dask"):
        summary = run(specs, tmp_path, hardware=("cpu_a", "cpu_host"), n_jobs=-1)
    assert summary.written == 4
    mods, kers = check_files(tmp_path)
    assert len(mods) == 4 and len(kers) == 4
    workers = {m["provenance"]["worker"] for m in mods}
    assert workers <= {w["name"] for w in client.scheduler_info()["workers"].values()}
    for m in mods:
        assert set(m["targets"]) == {"cpu_a.instructions", "cpu_host.instructions"}


def test_hardware_no_worker_has_is_a_failure_not_a_hang(client, tmp_path):
    with joblib.parallel_config(backend="dask"):
        run([FakeSpec("mlp", {"n": 0})], tmp_path, hardware=("cpu_a", "gpu"), n_jobs=-1)
    (mod,) = check_files(tmp_path)[0]
    assert mod["status"] == "partial"
    assert set(mod["targets"]) == {"cpu_a.instructions"}
    (failure,) = [f for f in mod["failures"] if f["stage"] == "measure:gpu"]
    assert '--resources "cuda=1"' in failure["message"]


@pytest.mark.collect
def test_real_collection_on_a_local_cluster(client, tmp_path):
    pytest.importorskip("torch_mlir")
    pytest.importorskip("iree.compiler")
    from mlircost_classic.collect import collect

    with joblib.parallel_config(backend="dask"):
        summary = collect(
            ["elementwise", "mlp"],
            2,
            1,
            ["cpu_x86_64_v3"],
            tmp_path,
            n_jobs=-1,
            progress=False,
            small=True,
        )
    assert summary.status == {"ok": 2}
    mods, kers = check_files(tmp_path)
    assert all(m["targets"]["cpu_x86_64_v3.instructions"] > 0 for m in mods)
