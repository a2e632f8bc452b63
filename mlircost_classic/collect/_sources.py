"""Where programs come from: the sources of training records.

A record's ``source`` (:data:`~mlircost_classic.datasets.SOURCES`) says how its
program was made:

- ``families``: the program families written for this project
  (:mod:`._families`), sampled by :func:`~._families.sample_specs`;
- ``torchvision``: torchvision's image networks (:mod:`._torchvision`);
- ``transformers``: Hugging Face architectures built from their configuration
  classes (:mod:`._transformers`); the out-of-distribution suite
  (:mod:`._ood`) is made the same way and its records carry this source too,
  but they live apart and are never trained on;
- ``user``: a user's own MLIR files (``collect_files``).

The two network sources list a fixed set of programs per architecture
(:func:`network_specs`), not a sampler.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ._families import FAMILIES, Family, ProgramSpec

__all__ = ["NETWORK_SOURCES", "family_source", "find_family", "network_specs"]

#: The sources whose programs are real networks, listed by :func:`network_specs`.
NETWORK_SOURCES = ("torchvision", "transformers")


def _fixed_families(architectures: dict) -> dict[str, Family]:
    """Families of a table ``name -> (description, make, sizes)``.

    Their ``sample`` draws one of the listed programs (with its dtype).
    """
    return {
        name: Family(name, description, lambda d, s=sizes: dict(d.choice(s)), make)
        for name, (description, make, sizes) in architectures.items()
    }


@functools.cache
def _network_families(source: str) -> dict[str, Family]:
    if source == "torchvision":
        from ._torchvision import ARCHITECTURES
    elif source == "transformers":
        from ._transformers import ARCHITECTURES
    else:
        raise ValueError(
            f"unknown network source {source!r}; choose from {NETWORK_SOURCES}"
        )
    return _fixed_families(ARCHITECTURES)


def _sizes(source: str) -> dict[str, list[dict]]:
    if source == "torchvision":
        from ._torchvision import TORCHVISION_SIZES as sizes
    else:
        from ._transformers import TRANSFORMERS_SIZES as sizes
    return sizes


def family_source(name: str) -> str:
    """The source of a family name (OOD architectures: ``"transformers"``).

    Raises
    ------
    KeyError
        If no source has a family of that name.
    """
    from ._ood import OOD_FAMILIES

    if name in FAMILIES:
        return "families"
    if name in OOD_FAMILIES:
        return "transformers"
    for source in NETWORK_SOURCES:
        if name in _network_families(source):
            return source
    raise KeyError(f"no source has a family named {name!r}")


def find_family(name: str) -> Family:
    """The family of that name, whatever its source (OOD suite included).

    Raises
    ------
    KeyError
        If no source has a family of that name.
    """
    from ._ood import OOD_FAMILIES

    source = family_source(name)
    if source == "families":
        return FAMILIES[name]
    return OOD_FAMILIES.get(name) or _network_families(source)[name]


def network_specs(
    source: str, families: Sequence[str] | None = None
) -> list[ProgramSpec]:
    """Every listed program of a network source, smallest of each first.

    The list goes round the architectures: the first program of each (in the
    source's order, cheapest first for torchvision), then the second of each,
    and so on, so a run stopped early has covered as many architectures as it
    could. It is the same list every time, so ``--resume`` continues it.

    Parameters
    ----------
    source : {"torchvision", "transformers"}
    families : sequence of str, optional
        Architectures (``"tv_resnet18"``, ``"hf_mistral"`` ...); default all.

    Returns
    -------
    list of ProgramSpec

    Raises
    ------
    ValueError
        For an unknown source or architecture.
    """
    known = _network_families(source)
    names = list(known) if families is None else list(dict.fromkeys(families))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown {source} architectures {unknown}; choose from {list(known)}"
        )
    sizes = _sizes(source)
    rounds = max((len(sizes[n]) for n in names), default=0)
    return [
        ProgramSpec(name, dict(sizes[name][i]))
        for i in range(rounds)
        for name in names
        if i < len(sizes[name])
    ]
