"""The shared CLI pieces: one seed grammar for every command, one-line errors."""

from __future__ import annotations

import pytest

from programs.cli import OneLineParser, parse_seeds
from programs.errors import ConfigError


@pytest.mark.parametrize("text, seeds", [("0-3", [0, 1, 2, 3]), ("0..2", [0, 1, 2]), ("1,4,9", [1, 4, 9]),
                                         ("0-1,10", [0, 1, 10]), ("3", [3]), ("4,", [4]), (7, [7]),
                                         ([5, 6], [5, 6])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, msg", [("", "empty"), ("3-1", "reversed"), ("1,1", "repeats seed 1"),
                                       ("0,abc", "'abc' is not a seed"), ("-1", r"must be in \[0, 2\*\*32-1\]")])
def test_parse_seeds_rejects_naming_the_flag(text, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        parse_seeds(text, "--train-seeds")
    assert "--train-seeds" in str(e.value) or "empty" in msg


def test_one_line_parser_exits_2_with_one_line(capsys):
    p = OneLineParser(prog="python -m x")
    p.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--n", "z"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m x: error:")
