"""What the command groups share: the user-error type, reading inputs, parent parsers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = [
    "UserError",
    "data_home_parser",
    "positive_int",
    "quiet_parser",
    "read_inputs",
    "read_one",
    "seed_parser",
    "suite_parser",
]


class UserError(Exception):
    """A mistake on the command line or in the user's files: printed without a traceback."""


def positive_int(value: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def read_one(path: str, error_type: type[Exception] = UserError) -> tuple[str, str]:
    """``(name, text)`` of one MLIR file; ``-`` reads standard input.

    Raises
    ------
    error_type
        If the file cannot be read or decoded, with the path in the message.
    """
    from mlircost_classic.mlir import read_source

    try:
        if path == "-":
            return "<stdin>", read_source(sys.stdin.buffer.read(), input="content")
        return path, read_source(path, input="filename")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        message = str(exc)  # read_source's own messages name the file already
        raise error_type(message if path in message else f"{path}: {message}") from None


def read_inputs(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return (names, texts) for the given paths; ``-`` reads standard input."""
    pairs = [read_one(path) for path in paths]
    return [name for name, _ in pairs], [text for _, text in pairs]


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def data_home_parser() -> argparse.ArgumentParser:
    """``--data-home``: a dataset folder or a collection run folder."""
    p = _parent()
    p.add_argument("--data-home", help="a dataset folder or a collection run folder")
    return p


def seed_parser() -> argparse.ArgumentParser:
    """``--seed`` (default 0)."""
    p = _parent()
    p.add_argument("--seed", type=int, default=0)
    return p


def quiet_parser() -> argparse.ArgumentParser:
    """``--quiet``: no progress bar."""
    p = _parent()
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def suite_parser(help_text: str) -> argparse.ArgumentParser:
    """``--suite {main,ood}``."""
    p = _parent()
    p.add_argument("--suite", choices=["main", "ood"], default="main", help=help_text)
    return p
