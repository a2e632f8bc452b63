"""The op catalog: one TOML file per MLIR dialect, shipped as package data.

Installed as ``mlircost_classic.catalog``. Each file maps op names to a family
and to named FLOP / byte rules; the vocabulary and the file format are
documented in :mod:`mlircost_classic.featurize._catalog`. Adding a dialect is
adding a file here; no code changes.
"""

__all__: list[str] = []
