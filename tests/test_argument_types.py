"""The argparse number types every command line shares (``host.argument_types``): each takes what
it names, refuses the rest with one message saying what it must be, and a command line prints
that message as one line naming the option."""

from __future__ import annotations

import argparse

import pytest

from host.argument_types import (
    accuracy_difference,
    float_at_least,
    integer_at_least,
    positive_float,
    sparsity_ratio,
)

TYPES = {
    "integer >= 1": (integer_at_least(1), {"1": 1, "12": 12}, ["0", "-3", "2.5", "one", ""], "an integer >= 1"),
    "integer >= 0": (integer_at_least(0), {"0": 0}, ["-1"], "an integer >= 0"),
    "float >= 1": (float_at_least(1), {"1": 1.0, "2.5": 2.5}, ["0.5", "inf", "nan", "x"], "a finite number >= 1"),
    "positive": (positive_float, {"5e-3": 5e-3, "30": 30.0}, ["0", "-0.01", "nan", "inf", "x"], "a finite number > 0"),
    "sparsity": (sparsity_ratio, {"0": 0.0, "0.9": 0.9}, ["1", "1.5", "-0.1", "nan", "most"], "a sparsity ratio"),
    "accuracy": (accuracy_difference, {"0": 0.0, "1": 1.0}, ["1.01", "-0.1", "nan", "x"], "an accuracy difference"),
}


@pytest.mark.parametrize("name", TYPES)
def test_number_types_take_what_they_name_and_refuse_the_rest(name):
    parse, good, bad, requirement = TYPES[name]
    for text, value in good.items():
        assert parse(text) == value and type(parse(text)) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"(must be|expected) {requirement}.*, got "):
            parse(text)


def test_a_refused_number_is_one_line_naming_the_option(capsys):
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--ratio", type=sparsity_ratio)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--ratio", "1.5"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "p: error: argument --ratio: must be a sparsity ratio in [0, 1), got 1.5"
    )
