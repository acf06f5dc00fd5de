"""The argparse types of the numbers every command line takes (``models.train``, ``models.admm``,
``models.pruning``, ``python -m overlay`` with ``explore``, ``hls_project``, ``host.stream``, the
benchmarks).

Each parses one value and refuses a bad one with an ``argparse.ArgumentTypeError`` saying what it
must be; argparse prints it as one line naming the option and exits with code 2, before any work.

Standard library only: ``host`` runs on the board, and ``host.stream`` uses these too.
"""

from __future__ import annotations

import argparse
import math


def checked_number(parse, check, requirement: str):
    """An argparse type: ``parse(text)`` (``int`` or ``float``) for which ``check`` holds, refused
    otherwise as ``expected <requirement>`` (not a number) or ``must be <requirement>``."""

    def number(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {requirement}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    return number


def integer_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    return checked_number(int, lambda value: value >= minimum, f"an integer >= {minimum}")


def finite_float(check, requirement: str):
    """An argparse type: a finite number for which ``check`` holds (``requirement`` says which)."""
    return checked_number(float, lambda value: math.isfinite(value) and check(value), requirement)


def float_at_least(minimum: float):
    """An argparse type: a finite number >= ``minimum``."""
    return finite_float(lambda value: value >= minimum, f"a finite number >= {minimum:g}")


positive_float = finite_float(lambda value: value > 0, "a finite number > 0")
sparsity_ratio = finite_float(lambda value: 0 <= value < 1, "a sparsity ratio in [0, 1)")
accuracy_difference = finite_float(lambda value: 0 <= value <= 1, "an accuracy difference in [0, 1]")
