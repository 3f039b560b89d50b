"""``interplay.errors``: the helper scripts use for the command line's one-line errors."""

from __future__ import annotations

import pytest

from interplay.errors import ConfigError, report_errors


def test_report_errors_turns_a_user_error_into_one_line_and_status_2(capsys) -> None:
    assert report_errors(lambda: 0) == 0
    assert report_errors(lambda: 3) == 3

    def bad() -> int:
        raise ConfigError("data.n_train: expected a positive integer, got 0")

    assert report_errors(bad) == 2
    err = capsys.readouterr().err
    assert err == "error: data.n_train: expected a positive integer, got 0\n"


def test_report_errors_lets_other_exceptions_through() -> None:
    def broken() -> int:
        raise RuntimeError("a bug, not bad input")

    with pytest.raises(RuntimeError, match="a bug"):
        report_errors(broken)
