"""The hardware the collector measures: the target table of ``datasets``.

The table (names, units, bounds, aggregation over dispatches, deterministic or
timed, tools, measuring backend) lives in
:mod:`mlircost_classic.datasets._targets`, where every part of the package
reads it; the collector's names for it are kept here.
"""

from __future__ import annotations

from ..datasets._targets import HARDWARE, target_names
from ..datasets._targets import Hardware as HardwareSpec

__all__ = ["HARDWARE", "HardwareSpec", "target_names"]
