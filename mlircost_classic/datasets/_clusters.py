"""Groups of architectures whose programs compile to the same dispatches.

Holding out one architecture at a time (``GroupKFold`` over ``families``)
overstates how well a model does on a new network when other architectures
in the training folds are the same design under another name: the
transformers source builds every architecture at the same sizes, so
ELECTRA, ERNIE, MPNet and Megatron-BERT programs lower to the same
dispatches (same root ops, shapes and element types), and a model that
memorises "this text, these sizes" scores well on the held-out one without
having learnt anything that carries to BERT at another size.
:func:`architecture_clusters` joins such architectures into one group: two
architectures are joined when a program of one and a program of the other
have nearly the same set of dispatch signatures (Jaccard index of the sets
at least ``threshold``), and the groups are the connected components of that
relation. A dispatch's signature is its IREE export name without the
``<function>_dispatch_<n>_`` prefix (``matmul_1024x48x192_f32``): the root
op, its loop extents and element type, as IREE names it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ._shards import get_data_home, iter_dataset, shard_paths

__all__ = [
    "architecture_clusters",
    "cluster_families",
    "cluster_groups",
    "dispatch_signature",
]

#: Two programs are the same design when the Jaccard index of their dispatch
#: signature sets is at least this (see :func:`architecture_clusters`).
DEFAULT_THRESHOLD = 0.8

_EXPORT = re.compile(r"hal\.executable\.export\s+(?:public\s+)?@(\w+)")
_PREFIX = re.compile(r"^\w*?_dispatch_\d+_")


def dispatch_signature(text: str) -> str | None:
    """The export name of a dispatch text without its ``..._dispatch_<n>_``
    prefix (``matmul_1024x48x192_f32``), or None when it has no export."""
    match = _EXPORT.search(text)
    if match is None:
        return None
    return _PREFIX.sub("", match.group(1))


def cluster_families(
    programs: Iterable[tuple[str, Iterable[str]]],
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, str]:
    """Join families whose programs share their dispatch signatures.

    Parameters
    ----------
    programs : iterable of (family, signatures)
        One item per program: its family (architecture) and the signatures of
        its dispatches (any hashable strings; repeats count once).
    threshold : float, default=0.8
        Two programs of different families join their families when the
        Jaccard index of their signature sets is at least this (in (0, 1]).
        Programs without signatures join nothing.

    Returns
    -------
    dict
        family -> cluster name, for every family given: the family itself
        when it joined no other, else ``"<first family>+<n - 1>"`` (the
        alphabetically first member and how many others the cluster holds),
        the same for all its members.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    families, sets = [], []
    for family, signatures in programs:
        families.append(str(family))
        sets.append(set(signatures))
    names = sorted(set(families))
    if not names:
        return {}
    family_index = {f: i for i, f in enumerate(names)}
    vocabulary = {s: j for j, s in enumerate(sorted({s for ss in sets for s in ss}))}
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.fromiter(
        (vocabulary[s] for ss in sets for s in ss), dtype=np.int64, count=len(rows)
    )
    member = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(sets), len(vocabulary))
    )
    sizes = np.asarray(member.sum(axis=1)).ravel()
    shared = (member @ member.T).tocoo()
    union = sizes[shared.row] + sizes[shared.col] - shared.data
    fam = np.array([family_index[f] for f in families])
    joined = (shared.data >= threshold * union) & (fam[shared.row] != fam[shared.col])
    edges = sparse.coo_matrix(
        (
            np.ones(int(joined.sum())),
            (fam[shared.row[joined]], fam[shared.col[joined]]),
        ),
        shape=(len(names), len(names)),
    )
    _, labels = connected_components(edges, directed=False)
    members: dict[int, list[str]] = {}
    for name, label in zip(names, labels, strict=True):
        members.setdefault(int(label), []).append(name)
    out = {}
    for group in members.values():
        title = group[0] if len(group) == 1 else f"{group[0]}+{len(group) - 1}"
        out |= dict.fromkeys(group, title)
    return out


def architecture_clusters(
    data_home: str | os.PathLike | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, str]:
    """Family -> cluster of the dataset's module records (see the module docstring).

    Reads the module records (their ``kernels`` lists) and the kernel records
    (their export names) of ``data_home`` (default: the bundled dataset; the
    answer is kept while its files stay the same).
    Families of every source take part: a program family that lowers to the
    same dispatches as a network joins it too.

    Use it for held-out evaluation that does not reward memorising a design
    seen under another name::

        modules = load_dataset("modules", groups="cluster")

    or, by hand, ``cluster_groups(modules.families, architecture_clusters())``
    (kernels alike: a kernel's family is that of its first module).

    Parameters
    ----------
    data_home : path-like, optional
        As in :func:`~mlircost_classic.datasets.load_dataset` (main suite).
    threshold : float, default=0.8
        See :func:`cluster_families`.

    Returns
    -------
    dict
        family -> cluster name, for every family with a module record.
    """
    home = get_data_home(data_home)
    files = tuple(
        (str(path), path.stat().st_mtime_ns, path.stat().st_size)
        for kind in ("modules", "kernels")
        for path in (shard_paths(kind, home) or [home / f"{kind}.jsonl"])
        if path.is_file()
    )
    return dict(_clusters(str(home), files, threshold))


@functools.lru_cache(maxsize=4)
def _clusters(home: str, files: tuple, threshold: float) -> tuple:
    """:func:`architecture_clusters` of ``home``, kept while its ``files``
    (path, modification time, size) stay the same."""
    del files  # only part of the cache key
    try:
        signature = {
            rec["id"]: dispatch_signature(rec.get("ir", {}).get("dispatch", ""))
            for rec in iter_dataset("kernels", home)
        }
    except FileNotFoundError:  # no kernel records: no signatures, no joins
        signature = {}
    programs = [
        (
            rec["family"],
            [s for k in rec.get("kernels") or () if (s := signature.get(k))],
        )
        for rec in iter_dataset("modules", home)
    ]
    return tuple(sorted(cluster_families(programs, threshold).items()))


def cluster_groups(families, clusters: Mapping[str, str]) -> np.ndarray:
    """Each family's cluster (itself where ``clusters`` lacks it), as an object array."""
    return np.array([clusters.get(f, f) for f in families], dtype=object)
