"""Packages whose public names are imported on first use (PEP 562)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    exports: dict[str, str],
    namespace: dict,
    subpackages: tuple[str, ...] = (),
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package that imports names on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str -> str
        Public name -> submodule (relative to the package) defining it.
    namespace : dict
        The package's ``globals()``: an imported name is cached there, so
        that the next access does not come back here.
    subpackages : tuple of str, default=()
        Subpackages reachable as attributes (``mlircost_classic.models``)
        before anything imported them.

    Returns
    -------
    __getattr__, __dir__
    """

    def __getattr__(name: str):
        if name in subpackages:
            value = import_module(f"{package}.{name}")
            namespace[name] = value
            return value
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(
                f"module {package!r} has no attribute {name!r}"
            ) from None
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
