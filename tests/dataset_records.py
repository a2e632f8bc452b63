"""Small valid dataset records for the tests (module and kernel builders)."""

from mlircost_classic.datasets import complete_record

LINALG = "func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {{ return %a : tensor<4xf32> }} // {}"


def module(n=0, family="mlp", targets=None, levels=("linalg", "torch"), **extra):
    rec = {
        "kind": "module",
        "key": f"k{n}",
        "family": family,
        "params": {"width": n, "dtype": "f32"},
        "ir": {lv: LINALG.format(f"{lv}{n}") for lv in levels},
        "compiled_level": "linalg" if "linalg" in levels else levels[0],
        "targets": {"cpu_x86_64_v3.instructions": 100.0 + n}
        if targets is None
        else targets,
        "kernels": [],
        "provenance": {"date": "2026-01-01T00:00:00Z", "seed": 0},
        "status": "ok",
        "failures": [],
        "seconds": {"lower": 1.5},
    }
    rec.update(extra)
    return complete_record(rec)


def kernel(n=0, module_id="0" * 64, family="mlp"):
    return complete_record(
        {
            "kind": "kernel",
            "key": "k0",
            "name": f"dispatch_{n}",
            "module_id": module_id,
            "family": family,
            "params": {},
            "ir": {"dispatch": f"hal.executable @e{n} {{}}"},
            "compiled_level": "dispatch",
            "targets": {"nvidia_sm80.registers": 32.0 + n},
            "provenance": {"hardware": ["nvidia_sm80"]},
            "status": "ok",
            "failures": [],
            "seconds": {},
        }
    )
