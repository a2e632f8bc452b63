"""The benchmark: result files, tables, goals, the README block, the command.

:func:`run_benchmark` runs once, on a tiny data home written here: the shortest
records of a few families copied from the bundled shards (a collection run's
``modules.jsonl`` and ``kernels.jsonl``), one target made constant, and an
out-of-distribution suite holding modules of a family kept out of training and
no kernels. The checks are what a reader of ``results.md`` relies on.
"""

import csv
import datetime as dt
import importlib.util
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from mlircost_classic.cli import build_parser, main
from mlircost_classic.datasets import append_records, iter_dataset
from mlircost_classic.models import mape, median_ape, r2_log, spearman
from mlircost_classic.report import benchmark_models, run_benchmark, update_readme
from mlircost_classic.report._bench_models import MODEL_NAMES
from mlircost_classic.report._bench_render import (
    BENCHMARK_COLUMNS,
    README_END,
    README_START,
    render_markdown,
    spill_table,
)
from mlircost_classic.report._bench_runs import _targets

# The project's goals are a script of benchmarks/, not part of the package.
_spec = importlib.util.spec_from_file_location(
    "goals", Path(__file__).resolve().parents[1] / "benchmarks" / "goals.py"
)
goals_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(goals_script)
goals = goals_script.goals

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
FAMILIES = 4
PER_FAMILY = 4
CONSTANT = "cpu_x86_64_v3.dispatches"  # made constant in the tiny modules
MODELS = ["xgboost", "ridge", "roofline"]


def _shortest(kind: str, per_family: int, size=len) -> dict[str, list[dict]]:
    by_family = defaultdict(list)
    for record in iter_dataset(kind):
        if record.get("status") == "ok" and record["targets"]:
            by_family[record["family"]].append(record)
    return {
        family: sorted(records, key=size)[:per_family]
        for family, records in by_family.items()
        if len(records) >= per_family
    }


@pytest.fixture(scope="module")
def data_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("data")
    modules = _shortest("modules", PER_FAMILY, lambda r: len(r["ir"].get("linalg", "")))
    families = sorted(modules)[: FAMILIES + 1]
    train, held_out = families[:FAMILIES], families[FAMILIES]
    chosen = [r for f in train for r in modules[f]]
    for record in chosen:
        record["targets"][CONSTANT] = 1.0
    append_records(home / "modules.jsonl", chosen)
    # Kernels are cheap and the shortest ones alike: take more of them, so
    # that enough targets vary to be benchmarked.
    kernels = _shortest("kernels", 3 * PER_FAMILY, lambda r: len(r["ir"]["dispatch"]))
    append_records(
        home / "kernels.jsonl", [r for f in train for r in kernels.get(f, [])]
    )
    (home / "ood").mkdir()
    append_records(home / "ood" / "modules.jsonl", modules[held_out])
    return home


@pytest.fixture(scope="module")
def bench(data_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    rows = run_benchmark(
        out, quick=True, models=MODELS, n_splits=2, data_home=data_home, goals=goals
    )
    return out, rows


def _csv(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_results_csv_has_every_model_and_target(bench, data_home):
    out, rows = bench
    table = _csv(out)
    assert tuple(table[0]) == BENCHMARK_COLUMNS
    assert len(table) == len(rows)
    spearman_rows = {
        (r["kind"], r["protocol"], r["model"], r["target"])
        for r in table
        if r["metric"] == "spearman"
    }
    for kind in ("modules", "kernels"):
        targets = {r["target"] for r in table if r["kind"] == kind} - {"*"}
        assert len(targets) >= 5
        # Noise figures and constant columns are not benchmarked.
        assert not any(t.endswith("_spread") for t in targets)
        protocols = (
            ("group", "template", "random")
            if kind == "kernels"
            else ("group", "random")
        )
        for protocol in protocols:
            for model in MODELS:
                for target in targets:
                    assert (kind, protocol, model, target) in spearman_rows
                assert any(
                    r["kind"] == kind
                    and r["protocol"] == protocol
                    and r["model"] == model
                    and r["metric"] == "latency_one_ms"
                    and float(r["value"]) > 0
                    for r in table
                )
    assert not any(
        r["kind"] == "modules" and r["protocol"] == "template" for r in table
    )
    module_targets = {r["target"] for r in table if r["kind"] == "modules"}
    assert CONSTANT not in module_targets
    assert "cpu_host.latency_us" in module_targets
    assert "cpu_host.latency_us_spread" not in module_targets


def test_ood_scored_where_the_suite_has_records(bench):
    out, _ = bench
    table = _csv(out)
    ood = [r for r in table if r["protocol"] == "ood"]
    assert {r["kind"] for r in ood} == {"modules"}  # the suite has no kernels
    assert {r["model"] for r in ood} == set(MODELS)
    assert max(int(r["n"]) for r in ood if r["metric"] == "spearman") == PER_FAMILY
    text = (out / "results.md").read_text(encoding="utf-8")
    modules, kernels = text.split("## kernels")
    assert "### Spearman rank correlation, out of distribution" in modules
    assert f"scored on the {PER_FAMILY} records of the OOD suite" in modules
    assert "Out of distribution: skipped, the OOD suite has no kernels" in kernels
    assert "out of distribution" not in kernels.split("### ")[1]


def test_results_md_is_readable(bench):
    out, _ = bench
    text = (out / "results.md").read_text(encoding="utf-8")
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert re.search(rf"Measured {today} on .+ logical CPUs", text)
    assert "quick smoke run" in text
    # Fewer records per family than --quick keeps: all of them, no "sample".
    assert f"{FAMILIES * PER_FAMILY} records, {FAMILIES} families" in text
    modules_head = text.split("## kernels")[0].split("### ")[0]
    assert "not benchmarked, fewer than 10 records differ from" in modules_head
    assert f"{CONSTANT} (0)" in modules_head
    header = "| target | n | " + " | ".join(MODELS) + " |"
    for section in ("modules", "kernels"):
        body = text.split(f"## {section}")[1]
        for title in (
            "Spearman rank correlation, by family / architecture",
            "Spearman rank correlation, random split",
            "Median absolute percentage error, by family / architecture",
            "Time, by family / architecture",
        ):
            assert f"### {title}" in body
    modules, kernels = text.split("## kernels")
    assert "### Spearman rank correlation, by op template" in kernels
    assert "by op template" not in modules.split("## modules")[1]
    tables = re.findall(
        r"### Spearman rank correlation, by family / architecture\n\n(.*?)\n\n",
        text,
        re.S,
    )
    assert len(tables) == 2
    for table in tables:
        lines = table.splitlines()
        assert lines[0] == header
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            values = cells[2:]
            numbers = [float(v.strip("*")) for v in values if v != "–"]
            bold = [float(v.strip("*")) for v in values if v.startswith("**")]
            assert bold and max(bold) == max(numbers)  # best per row marked
    assert "## Goals" in text
    assert re.search(r"compiling and measuring one takes [\d.]+ s median", text)
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (out / name).read_bytes().startswith(PNG)
    for kind in ("modules", "kernels"):
        for stem in ("pred_vs_measured", "error_by_model"):
            assert f"({stem}_{kind}.png)" in text


def test_a_neural_baseline_runs_on_the_same_folds(data_home, tmp_path):
    pytest.importorskip("torch")
    rows = run_benchmark(
        tmp_path,
        quick=True,
        kinds=["kernels"],
        protocols=["group"],
        models=["xgboost", "cnn"],
        n_splits=2,
        neural_seconds=0.5,
        data_home=data_home,
        plots=False,
        goals=goals,
    )
    targets = {r["target"] for r in rows} - {"*"}
    for model in ("xgboost", "cnn"):
        assert {
            r["target"]
            for r in rows
            if r["model"] == model and r["metric"] == "spearman"
        } == targets
    goals_text = (tmp_path / "results.md").read_text().split("## Goals")[1]
    assert "best neural model" in goals_text
    assert "neural fits were cut at 0.5 s" in goals_text


def test_targets_without_a_ranking_are_left_out():
    Y = np.zeros((40, 4))
    Y[:9, 0] = np.arange(1, 10)  # 9 records differ from the most common value
    Y[:10, 1] = np.arange(1, 11)  # 10 do
    Y[:, 2] = np.arange(40)  # a noise figure, however varied
    Y[:, 3] = np.nan
    Y[:12, 3] = np.arange(12)
    names = ["a.spills", "a.spill_bytes", "a.latency_us_spread", "a.sparse"]
    keep, skipped = _targets(Y, names)
    assert keep == [1, 3]
    assert skipped == {"a.spills": 9}


def test_goals_state_the_measured_numbers():
    def rows_for(model, sp, latency_ms=None):
        rows = [
            {
                "kind": "modules",
                "protocol": "group",
                "model": model,
                "target": t,
                "metric": "spearman",
                "value": v,
                "n": 10,
            }
            for t, v in sp.items()
        ]
        if latency_ms is not None:
            rows.append(
                {
                    "kind": "modules",
                    "protocol": "group",
                    "model": model,
                    "target": "*",
                    "metric": "latency_one_ms",
                    "value": latency_ms,
                    "n": 5,
                }
            )
        return rows

    rows = rows_for(
        "xgboost",
        {"cpu_x86_64_v3.instructions": 0.95, "nvidia_sm80.registers": 0.5},
        latency_ms=0.5,
    ) + rows_for(
        "roofline", {"cpu_x86_64_v3.instructions": 0.9, "nvidia_sm80.registers": 0.6}
    )
    context = {
        "kinds": {"modules": {}},
        "models": ["xgboost", "roofline"],
        "compile_measure_s": {"modules": 7.0},
    }
    text = "\n".join(goals(rows, context))
    assert "1/2, **missed** (not on nvidia_sm80.registers)" in text
    assert (
        "1/2, **missed** (cpu_x86_64_v3.instructions 0.950, nvidia_sm80.registers 0.500)"
        in text
    )
    assert "0.50 ms median, met" in text
    assert "7.0 s median" in text and "14,000x longer (goal >= 1,000x: met)" in text


README = """# project

Intro.

## Benchmark

The table below comes from `mlircost benchmark`.

{start}
old table
{end}

## License
"""


def test_update_readme_replaces_only_the_block(bench, tmp_path):
    out, _ = bench
    readme = tmp_path / "README.md"
    readme.write_text(README.format(start=README_START, end=README_END))
    assert update_readme(readme, out / "results.md") is True
    text = readme.read_text()
    before, rest = text.split(README_START)
    block, after = rest.split(README_END)
    assert before == README.split("{start}")[0]
    assert after == README.split("{end}")[1]
    assert "old table" not in block
    assert "Spearman rank correlation, by family / architecture" in block
    assert "| target | n | xgboost |" in block and "**Goals**" in block
    assert "results.md](" in block
    assert update_readme(readme, out / "results.md") is False
    assert readme.read_text() == text

    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="benchmark:start"):
        update_readme(readme, out / "results.md")


def test_unknown_model_fails_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="choose from"):
        run_benchmark(tmp_path / "out", models=["xgboost", "gpt"])
    assert not (tmp_path / "out").exists()
    assert set(benchmark_models(["xgboost", "roofline"])) == {"xgboost", "roofline"}


def test_metrics_survive_an_overflowed_prediction():
    # A ridge model on the log scale can predict expm1(1000) = inf.
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.0, 2.0, 3.0, np.inf])
    assert mape(y, p) > 1e300  # the miss it is, and no error
    assert median_ape(y, p) == pytest.approx(0.0)
    assert np.isfinite(r2_log(y, p))
    assert spearman(y, p) == pytest.approx(1.0)


def test_cli_benchmark_arguments():
    args = build_parser().parse_args(["benchmark", "--quick"])
    assert args.quick and args.out == "benchmarks"
    assert args.models is None and args.kinds is None and args.readme is None
    args = build_parser().parse_args(
        ["benchmark", "--models", "xgboost", "cnn", "--kinds", "kernels", "--jobs", "2"]
    )
    assert args.models == ["xgboost", "cnn"] and args.kinds == ["kernels"]
    assert args.jobs == 2 and args.neural_seconds is None
    choices = next(
        a.choices
        for a in build_parser()
        ._subparsers._group_actions[0]
        .choices["benchmark"]
        ._actions
        if a.dest == "models"
    )
    assert tuple(choices) == MODEL_NAMES
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "--models", "gpt"])


def test_cli_benchmark_writes_results_and_readme(data_home, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README.format(start=README_START, end=README_END))
    out = tmp_path / "bench"
    argv = ["benchmark", "--quick", "--out", str(out), "--data-home", str(data_home)]
    argv += ["--models", "roofline", "--kinds", "modules", "--protocols", "group"]
    argv += ["--max-per-family", "3"]
    assert main([*argv, "--readme", str(readme), "--quiet"]) == 0
    assert "updated" in capsys.readouterr().out
    text = (out / "results.md").read_text()
    assert "Reproduce: `mlircost benchmark --out" in text
    assert "--kinds modules --models roofline --protocols group" in text
    assert "--max-per-family 3`" in text
    # PER_FAMILY modules of each family in the data home, 3 of them kept
    assert f"{3 * FAMILIES} records (a sample of the {PER_FAMILY * FAMILIES})" in text
    assert {r["model"] for r in _csv(out)} == {"roofline"}
    assert "| target | n | roofline |" in readme.read_text()
    # The package's command writes tables; the project's goals are not its own.
    assert "## Goals" not in text


def test_goals_script_runs_the_benchmark_with_its_goals(data_home, tmp_path):
    out = tmp_path / "bench"
    argv = ["--quick", "--out", str(out), "--data-home", str(data_home), "--quiet"]
    argv += ["--models", "roofline", "--kinds", "modules", "--protocols", "group"]
    assert goals_script.main(argv) == 0
    assert "## Goals" in (out / "results.md").read_text()


def test_spill_scores_get_their_own_table():
    def row(model, target, metric, value, protocol="group"):
        return {
            "kind": "kernels",
            "protocol": protocol,
            "model": model,
            "target": target,
            "metric": metric,
            "value": value,
            "n": 50,
        }

    spill = "nvidia_sm80.spill_bytes"
    rows = [row(m, "nvidia_sm80.registers", "spearman", 0.8) for m in MODELS]
    for model, f1 in (("xgboost", 0.5), ("ridge", 0.25)):
        rows += [
            row(model, spill, "spearman", 0.1),
            row(model, spill, "spill_f1", f1),
            row(model, spill, "spill_precision", 0.4),
            row(model, spill, "spill_recall", 2 * f1),
            row(model, spill, "spill_share", 0.06),
        ]
    table = spill_table(rows, "kernels", "group", models=["xgboost", "ridge"])
    lines = table.splitlines()
    assert lines[0] == "| target | n | spilling | xgboost | ridge |"
    assert lines[2:] == [
        f"| {spill} | 50 | 0.060 | 0.50 (0.40 / 1.00) | 0.25 (0.40 / 0.50) |"
    ]
    assert spill_table(rows, "kernels", "random") is None
    context = {
        "kinds": {
            "kernels": {"records": 50, "bundled": 50, "families": 5, "targets": 2}
        },
        "skipped": {},
        "compile_measure_s": {},
        "seconds": 60.0,
        "quick": False,
        "n_splits": 5,
        "models": ["xgboost", "ridge"],
        "protocols": ["group"],
        "ood_requested": False,
        "ood": {},
        "command": "mlircost benchmark",
        "min_varied": 10,
    }
    text = render_markdown(rows, context)
    assert (
        "### Does it spill: F1 (precision / recall), by family / architecture" in text
    )
    # The Spearman table keeps every target; the spill table only spill ones.
    spearman = text.split("### Spearman rank correlation, by family / architecture")[1]
    assert "nvidia_sm80.registers" in spearman.split("### Does it spill")[0]


def test_by_source_scores_each_source_on_its_own_rows():
    from mlircost_classic.report._bench_render import _by_source
    from mlircost_classic.report._bench_runs import _score_by_source

    rng = np.random.default_rng(0)
    n = 60
    y = rng.lognormal(3, 1, size=(n, 1))
    pred = y * rng.lognormal(0, 0.5, size=(n, 1))
    sources = np.array(["families"] * 40 + ["transformers"] * 15 + ["torchvision"] * 5)
    groups = np.array([f"g{i % 6}" for i in range(n)])
    rows = _score_by_source("kernels", "xgboost", y, pred, ["t.x"], groups, sources)
    scored = {r["protocol"] for r in rows}
    # torchvision has 5 rows, under MIN_VARIED: left out, not scored on noise
    assert scored == {"group:families", "group:transformers"}
    value = {r["protocol"]: r["value"] for r in rows if r["metric"] == "spearman"}
    assert value["group:transformers"] == pytest.approx(
        spearman(y[40:55, 0], pred[40:55, 0])
    )
    assert value["group:families"] == pytest.approx(spearman(y[:40, 0], pred[:40, 0]))
    text = "\n".join(
        _by_source(
            rows, "kernels", {"families": 40, "transformers": 15, "torchvision": 5}
        )
    )
    assert "#### transformers records only (15)" in text
    assert "torchvision" not in text
    # one source: nothing to split
    assert not _score_by_source(
        "kernels", "xgboost", y, pred, ["t.x"], groups, np.array(["families"] * n)
    )
