"""Parameterized PyTorch program families, written for this project.

A :class:`Family` draws parameters with a seeded :class:`numpy.random.Generator`
and builds the matching ``torch.nn.Module`` with example inputs. A
:class:`ProgramSpec` (family name + parameters) is the unit of a corpus:
:func:`sample_specs` makes a reproducible, duplicate-free list of them from a
seed. Third-party model zoos are deliberately not used here: they are kept for
out-of-distribution evaluation.

Sizes are drawn log-uniformly, so costs span orders of magnitude, and then
snapped to the sizes real networks use: half the time a power of two, else a
multiple of 8, 16, 32 or 64 (sizes under 8: a power of two). They stay under a
budget (:data:`MAX_MACS`, :data:`MAX_ELEMENTS`) that keeps one compile and one
callgrind run of a program in seconds. Draws avoid degenerate programs that
no family is about: no size-1 reduced axes, no matmul dimension of 1, no
sequence of one step. Element types are f32 and f16; families whose programs
hold no weights also draw bf16 (IREE 3.13's llvm-cpu backend for x86-64-v3
fails on bf16 weight constants: "'arith.constant' op failed to verify that all
of {value, result} have same type"), and ``bmm`` also draws int8 operands with
int32 accumulation (IREE 3.13 compiles ``i8 x i8 -> i32`` matmuls for llvm-cpu,
CUDA sm_80 and ROCm gfx942). Every parameter changes the program text;
weights and inputs are seeded from the spec, so a build is deterministic. torch
is imported only when a program is built.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_MACS",
    "MAX_ELEMENTS",
    "ProgramSpec",
    "Family",
    "BF16_DTYPES",
    "FAMILIES",
    "FLOAT_DTYPES",
    "INT8_DTYPES",
    "sample_specs",
]

#: Most multiply-accumulates (or element operations) one program may do.
MAX_MACS = 3e8
#: Most elements any one tensor (input, weight, activation) may hold.
MAX_ELEMENTS = 2**22
#: Element type -> share of the draws. Half-precision programs stay a minority,
#: as they are among models deployed on CPUs.
FLOAT_DTYPES = {"f32": 0.7, "f16": 0.3}
#: The same with bf16, for families whose programs hold no weights.
BF16_DTYPES = {"f32": 0.6, "f16": 0.25, "bf16": 0.15}
#: The same with int8 operands, for families whose program takes them.
INT8_DTYPES = {"f32": 0.5, "f16": 0.2, "bf16": 0.1, "i8": 0.2}
_TORCH_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "i8": "int8"}
# A size is snapped to a multiple of one of these (when at least that large).
_SIZE_UNITS = (8, 16, 32, 64)


@dataclass(frozen=True)
class ProgramSpec:
    """One program of a corpus: a family and its parameters.

    Attributes
    ----------
    family : str
        Name of a family in :data:`FAMILIES`.
    params : dict
        JSON-serialisable parameters, including ``"dtype"`` (``"f32"``,
        ``"f16"``, ``"bf16"`` or, for some families, ``"i8"``).
    """

    family: str
    params: dict

    def key(self) -> str:
        """Canonical JSON of family and parameters (stable across runs)."""
        return json.dumps(
            {"family": self.family, "params": self.params},
            sort_keys=True,
            separators=(",", ":"),
        )

    def __hash__(self) -> int:
        return hash(self.key())


class _Draw:
    """Parameter drawing helpers over a numpy Generator.

    With ``small=True`` every size stays near its lower bound and every count
    at its minimum, for quick tests; choices and flags are drawn as usual.
    """

    def __init__(self, rng: np.random.Generator, small: bool):
        self.rng = rng
        self.small = small

    def dim(self, lo: int, hi: int) -> int:
        """A size in [lo, hi] as networks use them.

        Log-uniform, then half the time a power of two; else the nearest
        multiple of a unit drawn among 8, 16, 32 and 64 (those not above
        the value); a value under 8 becomes the nearest power of two. Where
        [lo, hi] holds no such size, the log-uniform integer itself.
        """
        if self.small:
            hi = min(hi, max(lo, 2 * lo, 4))
        pows = [2**e for e in range(int(math.log2(hi)) + 1) if lo <= 2**e <= hi]
        if pows and self.rng.random() < 0.5:
            return int(self.rng.choice(pows))
        value = math.exp(self.rng.uniform(math.log(lo), math.log(hi + 1)))
        value = min(hi, max(lo, math.floor(value)))
        units = [u for u in _SIZE_UNITS if u <= value]
        if units:
            unit = int(self.choice(units))
            near = [unit * k for k in (round(value / unit), value // unit)]
            sizes = [n for n in near if lo <= n <= hi]
        else:
            sizes = sorted(pows, key=lambda n: abs(math.log(n / value)))
        return int(sizes[0]) if sizes else int(value)

    def count(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (``lo`` when small)."""
        return lo if self.small else int(self.rng.integers(lo, hi + 1))

    def choice(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def flag(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def weighted(self, shares: dict[str, float]) -> str:
        """A key of ``shares``, drawn with the probabilities its values give."""
        keys = list(shares)
        weights = np.array([shares[k] for k in keys], dtype=float)
        return keys[int(self.rng.choice(len(keys), p=weights / weights.sum()))]


class Family:
    """A parameterized program family.

    Parameters
    ----------
    name : str
        Family name, the ``family`` of its specs.
    description : str
        What the family covers.
    draw : callable
        ``draw(d: _Draw) -> dict | None``: parameters without ``dtype``, or
        None when the draw exceeds the size budget (then drawn again).
    make : callable
        ``make(params) -> (module, inputs)`` in float32; called with torch's
        random state seeded from the spec.
    dtypes : dict, default FLOAT_DTYPES
        Element type -> share of the draws. With ``"i8"``, ``make`` must
        accept ``params["dtype"] == "i8"`` (its float inputs become random
        int8 values).
    """

    def __init__(
        self,
        name: str,
        description: str,
        draw: Callable[[_Draw], dict | None],
        make: Callable[[dict], tuple[Any, tuple]],
        dtypes: dict[str, float] = FLOAT_DTYPES,
    ):
        self.name = name
        self.description = description
        self.dtypes = dict(dtypes)
        self._draw = draw
        self._make = make

    def __repr__(self) -> str:
        return f"Family({self.name!r})"

    def sample(self, rng: np.random.Generator, *, small: bool = False) -> dict:
        """Draw one parameter set.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness; the same state gives the same parameters.
        small : bool, default=False
            Draw tiny sizes (for tests).

        Returns
        -------
        dict
            JSON-serialisable parameters including ``"dtype"``.
        """
        d = _Draw(rng, small)
        for _ in range(1000):
            params = self._draw(d)
            if params is not None:
                params["dtype"] = d.weighted(self.dtypes)
                return params
        raise RuntimeError(f"family {self.name!r}: no draw fits the size budget")

    def build(self, params: dict) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
        """Build the module (eval mode, seeded weights) and example inputs.

        Parameters
        ----------
        params : dict
            Parameters from :meth:`sample`.

        Returns
        -------
        module : torch.nn.Module
        inputs : tuple of torch.Tensor
            Floating inputs in the spec's dtype (int8: uniform in [-128, 127]);
            index inputs are int64.
        """
        import torch

        dtype = getattr(torch, _TORCH_DTYPES[params["dtype"]])
        key = ProgramSpec(self.name, params).key()
        seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module, inputs = self._make(params)
            if dtype.is_floating_point:
                module = module.to(dtype)
                inputs = tuple(
                    x.to(dtype) if x.is_floating_point() else x for x in inputs
                )
            else:
                inputs = tuple(
                    torch.randint(-128, 128, x.shape, dtype=dtype)
                    if x.is_floating_point()
                    else x
                    for x in inputs
                )
        return module.eval(), inputs


# ----------------------------------------------------------------------------
# Building blocks shared by the families (torch imported lazily)


@functools.cache
def _program_class():
    import torch

    class Program(torch.nn.Module):
        """A module whose forward is a plain function of its submodules."""

        def __init__(self, forward, **modules):
            super().__init__()
            self._forward = forward
            for name, module in modules.items():
                setattr(self, name, module)

        def forward(self, *inputs):
            return self._forward(self, *inputs)

    return Program


def _program(forward, **modules):
    return _program_class()(forward, **modules)


def _randn(*shape):
    import torch

    return torch.randn(*shape)


def _activation(name: str):
    import torch.nn as nn

    return {
        "relu": nn.ReLU(),
        "relu6": nn.ReLU6(),
        "gelu": nn.GELU(),
        "gelu_tanh": nn.GELU(approximate="tanh"),
        "silu": nn.SiLU(),
        "tanh": nn.Tanh(),
        "sigmoid": nn.Sigmoid(),
        "hardswish": nn.Hardswish(),
        "none": nn.Identity(),
    }[name]


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _fits(macs: float, *elements: float) -> bool:
    return macs <= MAX_MACS and all(e <= MAX_ELEMENTS for e in elements)


# ----------------------------------------------------------------------------
# mlp


def _draw_mlp(d: _Draw) -> dict | None:
    widths = [d.dim(8, 2048) for _ in range(d.count(1, 4) + 1)]
    batch = d.dim(1, 512)
    macs = batch * sum(a * b for a, b in itertools.pairwise(widths))
    if not _fits(macs, *(batch * w for w in widths), max(widths) ** 2):
        return None
    # one layer has no hidden activation, so the choice would not show in the program
    acts = ["relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid"]
    act = d.choice(acts) if len(widths) > 2 else "none"
    return {"batch": batch, "widths": widths, "activation": act, "bias": d.flag(0.8)}


def _make_mlp(p: dict):
    import torch.nn as nn

    layers = []
    widths = p["widths"]
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b, bias=p["bias"]))
        if i < len(widths) - 2:
            layers.append(_activation(p["activation"]))
    return nn.Sequential(*layers), (_randn(p["batch"], widths[0]),)


# ----------------------------------------------------------------------------
# skinny_gemm

# Rows of a skinny product: decode steps, pooled features, small batches.
_SKINNY_ROWS = (1, 2, 3, 4, 4, 5, 6, 8, 8, 12, 16)


def _skinny_width(d: _Draw, hi: int) -> int:
    """A reduction or output width in [8, hi], log-uniform, snapped to a step
    of 4 to 32 rather than to powers of two: where GPU compilers switch
    strategy (a gfx942 matmul over 4 rows takes IREE's warp reduction when K
    is a multiple of the 64-lane subgroup, 27 VGPRs at K = 64 or 128, and
    TileAndFuse with the K loop unrolled when it is not, 392-494 VGPRs at
    K = 80-100)."""
    if d.small:
        return 8
    unit = int(d.choice((4, 8, 16, 32)))
    value = math.exp(d.rng.uniform(math.log(8), math.log(hi + 1)))
    return int(min(hi // unit, max(1, round(value / unit))) * unit)


def _draw_skinny_gemm(d: _Draw) -> dict | None:
    # Half the first reductions under 160, where the K loop is unrolled (the
    # first 484 programs, item 27 of the datasheet, drew all of them up to 512).
    widths = [_skinny_width(d, 160 if d.flag() else 512)]
    widths += [
        d.dim(16, 4096) if i == 0 else _skinny_width(d, 512)
        for i in range(d.count(1, 2))
    ]
    rows = int(d.choice(_SKINNY_ROWS))
    if not _fits(
        rows * sum(a * b for a, b in itertools.pairwise(widths)),
        *(a * b for a, b in itertools.pairwise(widths)),
    ):
        return None
    return {
        "rows": rows,
        "widths": widths,
        "activation": d.choice(
            ("none", "relu", "gelu", "silu", "sigmoid", "hardswish")
        ),
        "bias": d.flag(0.8),
        # x @ W with W stored K x N, instead of nn.Linear's N x K
        "weight_kn": d.flag(0.3),
    }


def _make_skinny_gemm(p: dict):
    import torch.nn as nn

    pairs = list(itertools.pairwise(p["widths"]))
    if p["weight_kn"]:
        modules = {
            "weights": nn.ParameterList(
                nn.Parameter(_randn(a, b) / a**0.5) for a, b in pairs
            ),
            "biases": nn.ParameterList(
                nn.Parameter(_randn(b)) for _, b in (pairs if p["bias"] else [])
            ),
        }
    else:
        linears = (nn.Linear(a, b, bias=p["bias"]) for a, b in pairs)
        modules = {"linears": nn.ModuleList(linears)}

    def forward(m, x):
        for i in range(len(pairs)):
            if p["weight_kn"]:
                x = x @ m.weights[i]
                if p["bias"]:
                    x = x + m.biases[i]
            else:
                x = m.linears[i](x)
            x = m.act(x)
        return x

    act = _activation(p["activation"])
    return _program(forward, act=act, **modules), (_randn(p["rows"], p["widths"][0]),)


# ----------------------------------------------------------------------------
# conv2d


def _draw_conv2d(d: _Draw) -> dict | None:
    batch = d.dim(1, 16)
    cin, cout = d.dim(1, 256), d.dim(1, 256)
    grouping = d.choice(["dense", "dense", "depthwise", "grouped"])
    if grouping == "depthwise":
        cout = cin
        groups = cin
    elif grouping == "grouped":
        common = [
            g
            for g in range(2, math.gcd(cin, cout) + 1)
            if cin % g == 0 and cout % g == 0
        ]
        if not common:
            return None
        groups = d.choice(common)
    else:
        groups = 1
    kernel = d.choice([1, 3, 3, 5, 7])
    stride = d.choice([1, 1, 2, 3])
    dilation = d.choice([1, 1, 2, 3]) if kernel > 1 else 1
    padding = d.choice([0, dilation * (kernel // 2)])
    height, width = d.dim(4, 256), d.dim(4, 256)
    depth = d.count(1, 3)
    h, w, c, macs = height, width, cin, 0
    for _ in range(depth):
        h = _conv_out(h, kernel, stride, padding, dilation)
        w = _conv_out(w, kernel, stride, padding, dilation)
        if h < 1 or w < 1:
            return None
        macs += batch * cout * h * w * (c // groups) * kernel * kernel
        c = cout
    if not _fits(macs, batch * cin * height * width, batch * cout * h * w):
        return None
    return {
        "batch": batch,
        "in_channels": cin,
        "out_channels": cout,
        "height": height,
        "width": width,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "depth": depth,
        "bias": d.flag(0.7),
        "activation": d.choice(["none", "relu", "relu6", "silu"]),
    }


def _make_conv2d(p: dict):
    import torch.nn as nn

    layers = []
    c = p["in_channels"]
    for _ in range(p["depth"]):
        layers.append(
            nn.Conv2d(
                c,
                p["out_channels"],
                p["kernel"],
                stride=p["stride"],
                padding=p["padding"],
                dilation=p["dilation"],
                groups=p["groups"],
                bias=p["bias"],
            )
        )
        if p["activation"] != "none":
            layers.append(_activation(p["activation"]))
        c = p["out_channels"]
    x = _randn(p["batch"], p["in_channels"], p["height"], p["width"])
    return nn.Sequential(*layers), (x,)


# ----------------------------------------------------------------------------
# residual blocks with batch norm


def _draw_resblock(d: _Draw) -> dict | None:
    kind = d.choice(["basic", "bottleneck"])
    batch, cin, width = d.dim(1, 8), d.dim(4, 256), d.dim(4, 128)
    size, stride, blocks = d.dim(4, 64), d.choice([1, 2]), d.count(1, 3)
    cout = width * 4 if kind == "bottleneck" else width
    out = (size - 1) // stride + 1
    per_pixel = (
        9 * width * width if kind == "basic" else width * width * 9 + 8 * width * width
    )
    macs = batch * out * out * (per_pixel * blocks + cin * cout)
    if not _fits(macs, batch * cin * size * size, batch * cout * out * out):
        return None
    return {
        "kind": kind,
        "batch": batch,
        "in_channels": cin,
        "width": width,
        "size": size,
        "stride": stride,
        "blocks": blocks,
    }


def _make_resblock(p: dict):
    import torch.nn as nn

    def bn_conv(cin, cout, kernel, stride=1):
        return [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        ]

    def block(cin, stride):
        width = p["width"]
        if p["kind"] == "basic":
            cout = width
            body = (
                bn_conv(cin, width, 3, stride) + [nn.ReLU()] + bn_conv(width, width, 3)
            )
        else:
            cout = 4 * width
            body = (
                bn_conv(cin, width, 1)
                + [nn.ReLU()]
                + bn_conv(width, width, 3, stride)
                + [nn.ReLU()]
                + bn_conv(width, cout, 1)
            )
        short = (
            nn.Sequential(*bn_conv(cin, cout, 1, stride))
            if stride > 1 or cin != cout
            else nn.Identity()
        )
        return nn.Sequential(*body), short, cout

    bodies, shorts = nn.ModuleList(), nn.ModuleList()
    c, stride = p["in_channels"], p["stride"]
    for _ in range(p["blocks"]):
        body, short, c = block(c, stride)
        bodies.append(body)
        shorts.append(short)
        stride = 1

    def forward(m, x):
        for body, short in zip(m.bodies, m.shorts, strict=True):
            x = m.relu(body(x) + short(x))
        return x

    x = _randn(p["batch"], p["in_channels"], p["size"], p["size"])
    return _program(forward, bodies=bodies, shorts=shorts, relu=nn.ReLU()), (x,)


# ----------------------------------------------------------------------------
# depthwise-separable / inverted residual blocks


def _draw_dwsep(d: _Draw) -> dict | None:
    batch, cin, cout = d.dim(1, 16), d.dim(4, 192), d.dim(4, 192)
    expansion, kernel = d.choice([1, 2, 4, 6]), d.choice([3, 5])
    size, stride = d.dim(4, 112), d.choice([1, 2])
    hidden = cin * expansion
    out = (size - 1) // stride + 1
    macs = batch * (
        size * size * cin * hidden + out * out * hidden * (kernel * kernel + cout)
    )
    if not _fits(macs, batch * hidden * size * size):
        return None
    return {
        "batch": batch,
        "in_channels": cin,
        "out_channels": cout,
        "expansion": expansion,
        "kernel": kernel,
        "size": size,
        "stride": stride,
        "activation": d.choice(["relu6", "silu", "hardswish"]),
        "squeeze_excite": d.flag(0.3),
    }


def _make_dwsep(p: dict):
    import torch.nn as nn

    cin, cout, k = p["in_channels"], p["out_channels"], p["kernel"]
    hidden = cin * p["expansion"]
    act = p["activation"]
    layers = []
    if p["expansion"] > 1:
        layers += [
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            _activation(act),
        ]
    layers += [
        nn.Conv2d(hidden, hidden, k, p["stride"], k // 2, groups=hidden, bias=False),
        nn.BatchNorm2d(hidden),
        _activation(act),
    ]
    body = nn.Sequential(*layers)
    squeeze = max(1, hidden // 4)
    se = nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(hidden, squeeze, 1),
        nn.ReLU(),
        nn.Conv2d(squeeze, hidden, 1),
        nn.Sigmoid(),
    )
    project = nn.Sequential(
        nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)
    )
    residual = p["stride"] == 1 and cin == cout

    def forward(m, x):
        y = m.body(x)
        if p["squeeze_excite"]:
            y = y * m.se(y)
        y = m.project(y)
        return x + y if residual else y

    x = _randn(p["batch"], cin, p["size"], p["size"])
    return _program(forward, body=body, se=se, project=project), (x,)


# ----------------------------------------------------------------------------
# pooling


def _draw_pooling(d: _Draw) -> dict | None:
    kind = d.choice(["max", "avg", "adaptive_avg", "adaptive_max", "global_avg"])
    batch, channels = d.dim(1, 16), d.dim(1, 256)
    height, width = d.dim(2, 256), d.dim(2, 256)
    if not _fits(
        batch * channels * height * width * 9, batch * channels * height * width
    ):
        return None
    params = {
        "kind": kind,
        "batch": batch,
        "channels": channels,
        "height": height,
        "width": width,
    }
    if kind in ("max", "avg"):
        kernel = d.choice([2, 3, 4, 5])
        stride = d.choice([1, 2, kernel])
        padding = d.count(0, kernel // 2)
        if min(height, width) + 2 * padding < kernel:
            return None
        # flags that would not change the program are left at their default
        ceil_matters = any(
            _pool_out(n, kernel, stride, padding, True)
            != _pool_out(n, kernel, stride, padding, False)
            for n in (height, width)
        )
        ceil_mode = ceil_matters and d.flag(0.3)
        params.update(
            kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode
        )
        if kind == "avg":
            params["count_include_pad"] = padding > 0 and d.flag()
    elif kind.startswith("adaptive"):
        # torch-mlir lowers adaptive pooling only when the windows tile evenly
        g = math.gcd(height, width)
        params["output_size"] = d.choice([k for k in range(1, g + 1) if g % k == 0])
    return params


def _pool_out(size: int, kernel: int, stride: int, padding: int, ceil: bool) -> int:
    """Output length of a pooling window (PyTorch's rule for ``ceil_mode``)."""
    out = (size + 2 * padding - kernel + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _make_pooling(p: dict):
    import torch.nn as nn

    kind = p["kind"]
    if kind == "max":
        pool = nn.MaxPool2d(
            p["kernel"], p["stride"], p["padding"], ceil_mode=p["ceil_mode"]
        )
    elif kind == "avg":
        pool = nn.AvgPool2d(
            p["kernel"],
            p["stride"],
            p["padding"],
            ceil_mode=p["ceil_mode"],
            count_include_pad=p["count_include_pad"],
        )
    elif kind == "adaptive_avg":
        pool = nn.AdaptiveAvgPool2d(p["output_size"])
    elif kind == "adaptive_max":
        pool = nn.AdaptiveMaxPool2d(p["output_size"])
    else:
        pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return pool, (_randn(p["batch"], p["channels"], p["height"], p["width"]),)


# ----------------------------------------------------------------------------
# attention, encoder and decoder layers


def _draw_attention_shape(d: _Draw) -> dict:
    heads = d.choice([1, 2, 4, 8, 12, 16])
    return {
        "batch": d.dim(1, 16),
        "seq": d.dim(8, 512),
        "heads": heads,
        "head_dim": d.choice([8, 16, 32, 64]),
    }


def _attention_macs(b: int, s: int, kv: int, e: int) -> int:
    return b * (2 * s * e * e + 2 * kv * e * e + 2 * s * kv * e)


def _attention_modules(embed: int, bias: bool):
    import torch.nn as nn

    return nn.ModuleDict(
        {name: nn.Linear(embed, embed, bias=bias) for name in ("q", "k", "v", "o")}
    )


def _attend(proj, x, kv, heads: int, impl: str, causal: bool):
    """Multi-head attention of ``x`` over ``kv`` with the projections ``proj``."""
    import torch
    import torch.nn.functional as F

    b, s, e = x.shape
    t = kv.shape[1]
    q = proj["q"](x).reshape(b, s, heads, e // heads).transpose(1, 2)
    k = proj["k"](kv).reshape(b, t, heads, e // heads).transpose(1, 2)
    v = proj["v"](kv).reshape(b, t, heads, e // heads).transpose(1, 2)
    if impl == "sdpa":
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:
        scores = q @ k.transpose(-1, -2) * (e // heads) ** -0.5
        if causal:
            rows = torch.arange(s).unsqueeze(1)
            cols = torch.arange(t).unsqueeze(0)
            scores = scores.masked_fill(cols > rows, float("-inf"))
        y = scores.softmax(-1) @ v
    return proj["o"](y.transpose(1, 2).reshape(b, s, e))


def _draw_mha(d: _Draw) -> dict | None:
    p = _draw_attention_shape(d)
    p["cross"] = d.flag(0.3)
    p["kv_seq"] = d.dim(8, 512) if p["cross"] else p["seq"]
    e = p["heads"] * p["head_dim"]
    b, s, t = p["batch"], p["seq"], p["kv_seq"]
    if not _fits(_attention_macs(b, s, t, e), b * p["heads"] * s * t, b * s * e):
        return None
    p["impl"] = d.choice(["sdpa", "explicit"])
    p["bias"] = d.flag(0.7)
    return p


def _make_mha(p: dict):
    e = p["heads"] * p["head_dim"]
    proj = _attention_modules(e, p["bias"])
    x = _randn(p["batch"], p["seq"], e)
    if p["cross"]:
        memory = _randn(p["batch"], p["kv_seq"], e)

        def forward(m, x, memory):
            return _attend(m.proj, x, memory, p["heads"], p["impl"], False)

        return _program(forward, proj=proj), (x, memory)

    def forward_self(m, x):
        return _attend(m.proj, x, x, p["heads"], p["impl"], False)

    return _program(forward_self, proj=proj), (x,)


def _rmsnorm(x, weight, eps: float = 1e-6):
    return x * (x.pow(2).mean(-1, keepdim=True) + eps).rsqrt() * weight


def _norm_module(kind: str, dim: int):
    import torch
    import torch.nn as nn

    if kind == "layernorm":
        return nn.LayerNorm(dim)
    weight = nn.Parameter(torch.rand(dim) + 0.5)
    return _program(lambda m, x: _rmsnorm(x, m.weight), weight=weight)


def _draw_transformer(d: _Draw, decoder: bool) -> dict | None:
    p = _draw_attention_shape(d)
    p["layers"] = d.count(1, 3 if not decoder else 2)
    p["ffn_mult"] = d.choice([1, 2, 4])
    e, b, s = p["heads"] * p["head_dim"], p["batch"], p["seq"]
    per_layer = _attention_macs(b, s, s, e) + 2 * b * s * e * e * p["ffn_mult"]
    if decoder:
        p["cross"] = d.flag()
        p["memory_seq"] = d.dim(8, 512) if p["cross"] else 0
        if p["cross"]:
            per_layer += _attention_macs(b, s, p["memory_seq"], e)
    if not _fits(
        per_layer * p["layers"],
        b * p["heads"] * s * max(s, p.get("memory_seq", 0)),
        b * s * e * p["ffn_mult"],
    ):
        return None
    p["norm"] = d.choice(["layernorm", "rmsnorm"])
    p["norm_first"] = d.flag()
    p["activation"] = d.choice(["relu", "gelu", "silu"])
    p["impl"] = d.choice(["sdpa", "explicit"])
    return p


def _make_transformer(p: dict, decoder: bool):
    import torch.nn as nn

    e, heads = p["heads"] * p["head_dim"], p["heads"]
    cross = decoder and p["cross"]
    layers = nn.ModuleList()
    for _ in range(p["layers"]):
        parts = {
            "attn": _attention_modules(e, True),
            "norm1": _norm_module(p["norm"], e),
            "norm2": _norm_module(p["norm"], e),
            "ffn": nn.Sequential(
                nn.Linear(e, e * p["ffn_mult"]),
                _activation(p["activation"]),
                nn.Linear(e * p["ffn_mult"], e),
            ),
        }
        if cross:
            parts["cross"] = _attention_modules(e, True)
            parts["norm3"] = _norm_module(p["norm"], e)
        layers.append(nn.ModuleDict(parts))

    def sublayer(x, norm, fn):
        if p["norm_first"]:
            return x + fn(norm(x))
        return norm(x + fn(x))

    def forward(m, x, memory=None):
        for layer in m.layers:

            def self_attention(h, layer=layer):
                return _attend(layer["attn"], h, h, heads, p["impl"], decoder)

            def cross_attention(h, layer=layer):
                return _attend(layer["cross"], h, memory, heads, p["impl"], False)

            x = sublayer(x, layer["norm1"], self_attention)
            if memory is not None:
                x = sublayer(x, layer["norm3"], cross_attention)
            x = sublayer(x, layer["norm2"], layer["ffn"])
        return x

    inputs = (_randn(p["batch"], p["seq"], e),)
    if cross:
        inputs += (_randn(p["batch"], p["memory_seq"], e),)
    return _program(forward, layers=layers), inputs


# ----------------------------------------------------------------------------
# normalization / activation chains


_CHAIN_OPS = (
    "layernorm",
    "rmsnorm",
    "softmax",
    "log_softmax",
    "gelu",
    "gelu_tanh",
    "silu",
)


def _draw_norm_chain(d: _Draw) -> dict | None:
    batch, rows, dim = d.dim(1, 32), d.dim(1, 1024), d.dim(8, 4096)
    if not _fits(batch * rows * dim * 8, batch * rows * dim):
        return None
    ops = [d.choice(_CHAIN_OPS) for _ in range(d.count(1, 6))]
    return {
        "batch": batch,
        "rows": rows,
        "dim": dim,
        "ops": ops,
        "residual": d.flag(0.3),
    }


def _make_norm_chain(p: dict):
    import torch.nn as nn
    import torch.nn.functional as F

    dim = p["dim"]
    norms = nn.ModuleList(
        _norm_module(op, dim) if op in ("layernorm", "rmsnorm") else nn.Identity()
        for op in p["ops"]
    )
    functions = {
        "softmax": lambda x: x.softmax(-1),
        "log_softmax": lambda x: x.log_softmax(-1),
        "gelu": F.gelu,
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "silu": F.silu,
    }

    def forward(m, x):
        y = x
        for op, norm in zip(p["ops"], m.norms, strict=True):
            y = norm(y) if op in ("layernorm", "rmsnorm") else functions[op](y)
        return x + y if p["residual"] else y

    return _program(forward, norms=norms), (_randn(p["batch"], p["rows"], dim),)


# ----------------------------------------------------------------------------
# recurrent cells, unrolled


def _draw_rnn(d: _Draw) -> dict | None:
    cell = d.choice(["lstm", "gru", "rnn_tanh"])
    batch, features, hidden = d.dim(1, 64), d.dim(8, 512), d.dim(8, 512)
    steps, layers = d.count(2, 8), d.count(1, 2)
    gates = {"lstm": 4, "gru": 3, "rnn_tanh": 1}[cell]
    macs = steps * layers * batch * gates * hidden * (features + hidden)
    if not _fits(macs, gates * hidden * max(features, hidden)):
        return None
    return {
        "cell": cell,
        "batch": batch,
        "features": features,
        "hidden": hidden,
        "steps": steps,
        "layers": layers,
    }


def _make_rnn(p: dict):
    import torch
    import torch.nn as nn

    make = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn_tanh": nn.RNNCell}[p["cell"]]
    hidden = p["hidden"]
    cells = nn.ModuleList(
        make(p["features"] if i == 0 else hidden, hidden) for i in range(p["layers"])
    )

    def forward(m, xs):
        batch = xs.shape[1]
        outputs = []
        states = [
            (xs.new_zeros(batch, hidden), xs.new_zeros(batch, hidden)) for _ in m.cells
        ]
        for t in range(xs.shape[0]):
            h = xs[t]
            for i, cell in enumerate(m.cells):
                if p["cell"] == "lstm":
                    states[i] = cell(h, states[i])
                    h = states[i][0]
                else:
                    h = cell(h, states[i][0])
                    states[i] = (h, h)
            outputs.append(h)
        return torch.stack(outputs)

    return _program(forward, cells=cells), (
        _randn(p["steps"], p["batch"], p["features"]),
    )


# ----------------------------------------------------------------------------
# embedding + pooling


def _draw_embedding(d: _Draw) -> dict | None:
    vocab, dim = d.dim(8, 65536), d.dim(4, 512)
    batch, length = d.dim(1, 64), d.dim(8, 512)
    pool = d.choice(["mean", "sum", "max", "none"])
    classes = d.dim(2, 64) if d.flag() else 0
    if not _fits(
        batch * length * dim + batch * dim * classes, vocab * dim, batch * length * dim
    ):
        return None
    return {
        "vocab": vocab,
        "dim": dim,
        "batch": batch,
        "length": length,
        "pool": pool,
        "classes": classes,
    }


def _make_embedding(p: dict):
    import torch
    import torch.nn as nn

    def forward(m, ids):
        x = m.table(ids)
        if p["pool"] == "mean":
            x = x.mean(1)
        elif p["pool"] == "sum":
            x = x.sum(1)
        elif p["pool"] == "max":
            x = x.amax(1)
        return m.head(x)

    head = nn.Linear(p["dim"], p["classes"]) if p["classes"] else nn.Identity()
    ids = torch.randint(0, p["vocab"], (p["batch"], p["length"]))
    return _program(forward, table=nn.Embedding(p["vocab"], p["dim"]), head=head), (
        ids,
    )


# ----------------------------------------------------------------------------
# batched matmul


def _draw_bmm(d: _Draw) -> dict | None:
    batch_dims = [d.dim(1, 64) for _ in range(d.count(0, 2))]
    m, k, n = d.dim(8, 1024), d.dim(8, 1024), d.dim(8, 1024)
    batch = math.prod(batch_dims)
    if not _fits(batch * m * n * k, batch * m * k, batch * k * n, batch * m * n):
        return None
    return {
        "batch_dims": batch_dims,
        "m": m,
        "k": k,
        "n": n,
        "transpose_a": d.flag(0.3),
        "transpose_b": d.flag(0.3),
        "broadcast_b": bool(batch_dims) and d.flag(0.3),
    }


def _make_bmm(p: dict):
    import torch

    lead = p["batch_dims"]
    a_shape = [*lead, p["k"], p["m"]] if p["transpose_a"] else [*lead, p["m"], p["k"]]
    b_lead = [] if p["broadcast_b"] else lead
    b_shape = (
        [*b_lead, p["n"], p["k"]] if p["transpose_b"] else [*b_lead, p["k"], p["n"]]
    )

    def forward(m, a, b):
        if p["transpose_a"]:
            a = a.transpose(-1, -2)
        if p["transpose_b"]:
            b = b.transpose(-1, -2)
        if p["dtype"] == "i8":  # int8 operands, int32 accumulation
            return a.to(torch.int32) @ b.to(torch.int32)
        return a @ b

    return _program(forward), (_randn(*a_shape), _randn(*b_shape))


# ----------------------------------------------------------------------------
# reductions


_REDUCTIONS = (
    "sum",
    "mean",
    "amax",
    "amin",
    "prod",
    "var",
    "std",
    "logsumexp",
    "norm",
    "argmax",
)


def _draw_reduction(d: _Draw) -> dict | None:
    shape = [d.dim(1, 2048) for _ in range(d.count(1, 4))]
    if not _fits(math.prod(shape), math.prod(shape)):
        return None
    op = d.choice(_REDUCTIONS)
    # Reducing a size-1 axis is a copy: reduce among the longer ones.
    long = [axis for axis, size in enumerate(shape) if size > 1]
    if not long:
        return None
    if op == "argmax":
        axes = [d.choice(long)]
    else:
        axes = sorted(
            int(a) for a in d.rng.choice(long, d.count(1, len(long)), replace=False)
        )
    return {"shape": shape, "op": op, "axes": axes, "keepdim": d.flag()}


def _make_reduction(p: dict):
    import torch

    axes, keep = p["axes"], p["keepdim"]
    ops = {
        "sum": lambda x: x.sum(axes, keepdim=keep),
        "mean": lambda x: x.mean(axes, keepdim=keep),
        "amax": lambda x: x.amax(axes, keepdim=keep),
        "amin": lambda x: x.amin(axes, keepdim=keep),
        "prod": lambda x: functools.reduce(
            lambda y, a: y.prod(a, keepdim=keep), sorted(axes, reverse=True), x
        ),
        "var": lambda x: x.var(axes, keepdim=keep),
        "std": lambda x: x.std(axes, keepdim=keep),
        "logsumexp": lambda x: x.logsumexp(axes, keepdim=keep),
        "norm": lambda x: torch.linalg.vector_norm(x, 2, axes, keepdim=keep),
        "argmax": lambda x: x.argmax(axes[0], keepdim=keep),
    }
    fn = ops[p["op"]]
    return _program(lambda m, x: fn(x)), (_randn(*p["shape"]),)


# ----------------------------------------------------------------------------
# elementwise chains


_UNARY = (
    "exp",
    "tanh",
    "sigmoid",
    "abs",
    "neg",
    "sqrt_abs",
    "relu",
    "sin",
    "cos",
    "erf",
    "square",
    "clamp",
)
_BINARY = ("add", "mul", "sub", "div", "maximum", "minimum", "where_gt")


def _draw_elementwise(d: _Draw) -> dict | None:
    shape = [d.dim(1, 1024) for _ in range(d.count(1, 4))]
    n_inputs = d.count(1, 3)
    length = d.count(1, 10)
    if not _fits(math.prod(shape) * length, math.prod(shape)):
        return None
    # Extra inputs may broadcast: each of their dims is kept or set to 1.
    broadcast = [[int(d.flag(0.7)) for _ in shape] for _ in range(n_inputs - 1)]
    ops = []
    for _ in range(length):
        if n_inputs > 1 and d.flag():
            ops.append(f"{d.choice(_BINARY)}:{d.count(1, n_inputs - 1)}")
        else:
            ops.append(d.choice(_UNARY))
    return {"shape": shape, "keep_dims": broadcast, "ops": ops}


def _make_elementwise(p: dict):
    import torch

    unary = {
        "exp": torch.exp,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "abs": torch.abs,
        "neg": torch.neg,
        "sqrt_abs": lambda x: x.abs().sqrt(),
        "relu": torch.relu,
        "sin": torch.sin,
        "cos": torch.cos,
        "erf": torch.erf,
        "square": torch.square,
        "clamp": lambda x: x.clamp(-1.0, 1.0),
    }
    binary = {
        "add": torch.add,
        "mul": torch.mul,
        "sub": torch.sub,
        "div": lambda a, b: a / (b.abs() + 1.0),
        "maximum": torch.maximum,
        "minimum": torch.minimum,
        "where_gt": lambda a, b: torch.where(a > b, a, b * 0.5),
    }

    def forward(m, x, *others):
        for op in p["ops"]:
            name, _, arg = op.partition(":")
            x = binary[name](x, others[int(arg) - 1]) if arg else unary[name](x)
        return x

    inputs = [_randn(*p["shape"])]
    for keep in p["keep_dims"]:
        inputs.append(
            _randn(*(s if k else 1 for s, k in zip(p["shape"], keep, strict=True)))
        )
    return _program(forward), tuple(inputs)


# ----------------------------------------------------------------------------
# data movement


def _draw_data_movement(d: _Draw) -> dict | None:
    shape = [d.dim(1, 256) for _ in range(d.count(2, 4))]
    start = list(shape)
    ops = []
    for _ in range(d.count(1, 6)):
        rank = len(shape)
        kind = d.choice(
            ["permute", "reshape", "concat", "slice", "flip", "pad", "repeat"]
        )
        if kind == "permute":
            perm = [int(i) for i in d.rng.permutation(rank)]
            if perm == sorted(perm):
                continue
            ops.append(["permute", perm])
            shape = [shape[i] for i in perm]
        elif kind == "reshape":
            axis = d.count(0, rank - 2)
            if rank > 2 and d.flag():
                ops.append(["merge", axis])
                shape = (
                    shape[:axis] + [shape[axis] * shape[axis + 1]] + shape[axis + 2 :]
                )
            else:
                factors = [f for f in range(2, shape[axis] + 1) if shape[axis] % f == 0]
                if not factors or rank >= 5:
                    continue
                f = d.choice(factors)
                ops.append(["split", axis, f])
                shape = shape[:axis] + [f, shape[axis] // f] + shape[axis + 1 :]
        elif kind == "concat":
            axis = d.count(0, rank - 1)
            ops.append(["concat", axis])
            shape[axis] *= 2
        elif kind == "slice":
            axis = d.count(0, rank - 1)
            step = d.choice([1, 2, 3])
            begin = d.count(0, shape[axis] - 1)
            if begin == 0 and step == 1:
                continue
            ops.append(["slice", axis, begin, step])
            shape[axis] = len(range(begin, shape[axis], step))
        elif kind == "flip":
            axis = d.count(0, rank - 1)
            if shape[axis] == 1:
                continue
            ops.append(["flip", axis])
        elif kind == "pad":
            before, after = d.count(0, 3), d.count(1, 3)
            ops.append(["pad", before, after])
            shape[-1] += before + after
        else:
            axis, times = d.count(0, rank - 1), d.count(2, 3)
            ops.append(["repeat", axis, times])
            shape[axis] *= times
        if math.prod(shape) > MAX_ELEMENTS:
            return None
    if not ops:
        return None
    return {"shape": start, "ops": ops}


def _make_data_movement(p: dict):
    import torch
    import torch.nn.functional as F

    def forward(m, x):
        for op in p["ops"]:
            kind, *args = op
            if kind == "permute":
                x = x.permute(*args[0])
            elif kind == "merge":
                x = x.flatten(args[0], args[0] + 1)
            elif kind == "split":
                axis, f = args
                x = x.unflatten(axis, (f, x.shape[axis] // f))
            elif kind == "concat":
                x = torch.cat([x, x * 2.0], args[0])
            elif kind == "slice":
                axis, start, step = args
                index = [slice(None)] * x.dim()
                index[axis] = slice(start, None, step)
                x = x[tuple(index)]
            elif kind == "flip":
                x = x.flip(args[0])
            elif kind == "pad":
                x = F.pad(x, (args[0], args[1]))
            else:
                axis, times = args
                reps = [1] * x.dim()
                reps[axis] = times
                x = x.repeat(*reps)
        return x.contiguous()

    return _program(forward), (_randn(*p["shape"]),)


# ----------------------------------------------------------------------------
# upsampling


def _draw_upsample(d: _Draw) -> dict | None:
    mode = d.choice(
        ["nearest", "bilinear", "bicubic", "conv_transpose", "pixel_shuffle"]
    )
    batch, channels = d.dim(1, 8), d.dim(1, 128)
    height, width = d.dim(2, 128), d.dim(2, 128)
    scale = d.choice([2, 3, 4])
    out = batch * channels * height * width * scale * scale
    macs = out * (channels if mode == "conv_transpose" else 16)
    if not _fits(macs, out):
        return None
    params = {
        "mode": mode,
        "batch": batch,
        "channels": channels,
        "height": height,
        "width": width,
        "scale": scale,
    }
    if mode in ("bilinear", "bicubic"):
        params["align_corners"] = d.flag()
    return params


def _make_upsample(p: dict):
    import torch.nn as nn

    c, r, mode = p["channels"], p["scale"], p["mode"]
    if mode == "conv_transpose":
        module = nn.ConvTranspose2d(c, c, r, stride=r)
    elif mode == "pixel_shuffle":
        module = nn.Sequential(nn.Conv2d(c, c * r * r, 1), nn.PixelShuffle(r))
    else:
        module = nn.Upsample(
            scale_factor=r, mode=mode, align_corners=p.get("align_corners")
        )
    return module, (_randn(p["batch"], c, p["height"], p["width"]),)


# ----------------------------------------------------------------------------


def _family_list() -> list[Family]:
    return [
        Family(
            "mlp", "stack of Linear layers with an activation", _draw_mlp, _make_mlp
        ),
        Family(
            "skinny_gemm",
            "Linear layers over 1-16 rows (decode steps, pooled features, small "
            "batches), widths in steps of 4-32, fused bias and activation",
            _draw_skinny_gemm,
            _make_skinny_gemm,
        ),
        Family(
            "conv2d",
            "Conv2d stacks: kernel, stride, padding, dilation, groups / depthwise",
            _draw_conv2d,
            _make_conv2d,
        ),
        Family(
            "resblock",
            "ResNet basic or bottleneck blocks with batch norm and projection shortcut",
            _draw_resblock,
            _make_resblock,
        ),
        Family(
            "dwsep",
            "depthwise-separable / inverted-residual block, optional squeeze-excite",
            _draw_dwsep,
            _make_dwsep,
        ),
        Family(
            "pooling",
            "max, average, adaptive and global 2-D pooling",
            _draw_pooling,
            _make_pooling,
            dtypes=BF16_DTYPES,
        ),
        Family(
            "mha",
            "multi-head self or cross attention (SDPA or explicit softmax(QK^T)V)",
            _draw_mha,
            _make_mha,
        ),
        Family(
            "encoder",
            "transformer encoder layers (pre/post norm, layernorm or rmsnorm)",
            lambda d: _draw_transformer(d, decoder=False),
            lambda p: _make_transformer(p, decoder=False),
        ),
        Family(
            "decoder",
            "transformer decoder layers with a causal mask, optional cross attention",
            lambda d: _draw_transformer(d, decoder=True),
            lambda p: _make_transformer(p, decoder=True),
        ),
        Family(
            "norm_chain",
            "chains of layernorm, rmsnorm, softmax, log-softmax, gelu, silu",
            _draw_norm_chain,
            _make_norm_chain,
        ),
        Family(
            "rnn", "unrolled LSTM, GRU or tanh-RNN cells, stacked", _draw_rnn, _make_rnn
        ),
        Family(
            "embedding",
            "embedding lookup, pooled over the sequence, optional linear head",
            _draw_embedding,
            _make_embedding,
        ),
        Family(
            "bmm",
            "batched matmul over varied shapes, transposed or broadcast operands, "
            "int8 operands with int32 accumulation among the draws",
            _draw_bmm,
            _make_bmm,
            dtypes=INT8_DTYPES,
        ),
        Family(
            "reduction",
            "reductions over chosen axes of rank-1..4 tensors",
            _draw_reduction,
            _make_reduction,
            dtypes=BF16_DTYPES,
        ),
        Family(
            "elementwise",
            "chains of unary and broadcasting binary elementwise ops",
            _draw_elementwise,
            _make_elementwise,
            dtypes=BF16_DTYPES,
        ),
        Family(
            "data_movement",
            "permute, reshape, concat, strided slice, flip, pad, repeat",
            _draw_data_movement,
            _make_data_movement,
            dtypes=BF16_DTYPES,
        ),
        Family(
            "upsample",
            "nearest / bilinear / bicubic interpolation, transposed conv, pixel shuffle",
            _draw_upsample,
            _make_upsample,
        ),
    ]


#: Every family, by name.
FAMILIES: dict[str, Family] = {f.name: f for f in _family_list()}


def sample_specs(
    families: Sequence[str] | None, count: int, seed: int, *, small: bool = False
) -> list[ProgramSpec]:
    """Draw a reproducible, duplicate-free list of program specs.

    Families take turns (round robin in the given order, or sorted by name
    when ``families`` is None). Each family draws from its own stream,
    seeded by ``seed`` and its name, so a family's specs do not depend on
    which other families are in the corpus.

    Parameters
    ----------
    families : sequence of str or None
        Family names; None means all of :data:`FAMILIES`.
    count : int
        Number of specs.
    seed : int
        Seed of the whole list.
    small : bool, default=False
        Draw tiny programs (for tests).

    Returns
    -------
    list of ProgramSpec

    Raises
    ------
    ValueError
        If a family name is unknown, or the families cannot give ``count``
        distinct specs.
    """
    names = sorted(FAMILIES) if families is None else list(dict.fromkeys(families))
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {sorted(FAMILIES)}")
    if not names:
        raise ValueError("no family given")
    rngs = {n: np.random.default_rng([seed, zlib.crc32(n.encode())]) for n in names}
    seen: set[str] = set()
    specs: list[ProgramSpec] = []
    active = list(names)
    turn = 0
    while len(specs) < count and active:
        name = active[turn % len(active)]
        for _ in range(100):
            spec = ProgramSpec(name, FAMILIES[name].sample(rngs[name], small=small))
            if spec.key() not in seen:
                seen.add(spec.key())
                specs.append(spec)
                turn += 1
                break
        else:
            active.remove(name)
    if len(specs) < count:
        raise ValueError(f"only {len(specs)} distinct specs for {count} requested")
    return specs
