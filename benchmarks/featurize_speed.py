"""Featurization throughput against MLIR's own C++ parser.

Measures ``MLIRFeaturizer().fit_transform`` (reading + all three feature
families) in MB/s and compares it with parsing the same texts with MLIR's C++
parser through IREE's Python bindings (``iree.compiler.ir.Module.parse``), on

(a) the shared corpus (``../shared/mlir-corpus``), split at ``// -----``;
(b) a 6-layer transformer encoder lowered to linalg with torch-mlir, weights
    elided (``get_asm(large_elements_limit=16)``);
(c) the same model as StableHLO and TOSA.

Texts the C++ parser rejects are excluded from both sides and counted. Run::

    python benchmarks/featurize_speed.py [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import time
import warnings
from pathlib import Path

from mlircost_classic.featurize import MLIRFeaturizer

__all__ = ["main"]

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "mlir-corpus"


def host_cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def corpus_texts() -> list[str]:
    texts = []
    for path in sorted(CORPUS.glob("*/*.mlir")):
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.extend(chunk for chunk in text.split("// -----") if chunk.strip())
    return texts


def model_texts() -> dict[str, str]:
    """The encoder printed at three levels, weights elided."""
    import torch
    from torch_mlir import fx

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(
        d_model=256, nhead=4, dim_feedforward=1024, batch_first=True
    )
    model = torch.nn.TransformerEncoder(layer, num_layers=6, enable_nested_tensor=False)
    model.eval()
    x = torch.randn(1, 64, 256)
    texts = {}
    for output_type in ("linalg-on-tensors", "stablehlo", "tosa"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = fx.export_and_import(model, x, output_type=output_type)
            text = module.operation.get_asm(large_elements_limit=16)
        except Exception as exc:  # noqa: BLE001 - report the level and go on
            print(f"  {output_type}: lowering failed ({type(exc).__name__}: {exc})")
            continue
        # Weights live in the dialect_resources blob at the end, which
        # large_elements_limit does not elide: drop it (~38 MB -> ~150 KB).
        blob = text.find("{-#")
        texts[output_type] = text if blob < 0 else text[:blob]
    return texts


def accepted_by_cpp(texts: list[str]) -> tuple[list[str], int]:
    from iree.compiler import ir

    ctx = ir.Context()
    ctx.allow_unregistered_dialects = True
    ok = []
    for text in texts:
        try:
            ir.Module.parse(text, ctx)
        except Exception:  # noqa: BLE001 - the C++ parser's MLIRError and friends
            continue
        ok.append(text)
    return ok, len(texts) - len(ok)


def best_time(fn, repeat: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def measure(name: str, texts: list[str], repeat: int, profile: bool) -> None:
    from iree.compiler import ir

    ok, rejected = accepted_by_cpp(texts)
    if not ok:
        print(f"{name}: all {rejected} texts rejected by the C++ parser, not measured")
        return
    size = sum(len(t.encode()) for t in ok)
    mb = size / 1e6

    def cpp():
        ctx = ir.Context()
        ctx.allow_unregistered_dialects = True
        for text in ok:
            ir.Module.parse(text, ctx)

    def ours():
        MLIRFeaturizer().fit_transform(ok)

    t_cpp = best_time(cpp, repeat)
    t_ours = best_time(ours, repeat)
    print(
        f"{name}: {len(ok)} texts, {size / 1e3:.1f} KB "
        f"({rejected} rejected by the C++ parser, excluded)"
    )
    print(f"  C++ parser (iree.compiler.ir): {mb / t_cpp:8.2f} MB/s ({t_cpp:.3f} s)")
    print(f"  MLIRFeaturizer fit_transform:  {mb / t_ours:8.2f} MB/s ({t_ours:.3f} s)")
    print(f"  ratio ours / C++: {t_cpp / t_ours:.3f}")
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        ours()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile our side")
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args(argv)
    print(f"host CPU: {host_cpu()}")
    if CORPUS.is_dir():
        measure("(a) shared corpus", corpus_texts(), args.repeat, args.profile)
    else:
        print(f"(a) corpus not found at {CORPUS}, skipped")
    if args.skip_model:
        return
    for level, text in model_texts().items():
        print(f"  encoder at {level}: {len(text.encode()) / 1e3:.1f} KB printed")
        measure(
            f"({'b' if level.startswith('linalg') else 'c'}) 6-layer encoder, {level}",
            [text],
            max(args.repeat, 5),
            args.profile,
        )


if __name__ == "__main__":
    main()
