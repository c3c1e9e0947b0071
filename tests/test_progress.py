"""Long commands show progress: a bar redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from wallet.progress import PLAIN_LINE_SECONDS, Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_one_line_is_redrawn_with_a_bar_share_and_count() -> None:
    stream, clock = Terminal(), Ticks()
    progress = Progress("credit run 2027-01", "budgets", 200, stream, clock)
    for _ in range(4):
        clock.now += 1
        progress.advance(50)
    progress.finish()
    text = stream.getvalue()
    frames = text.split("\r\x1b[2K")[1:]
    assert len(frames) == 5 and text.endswith("\n") and text.count("\n") == 1
    assert "[" + "#" * 15 + " " * 15 + "]  50% 100/200 budgets" in frames[1]
    assert "100% 200/200 budgets" in frames[-1]


def test_into_a_file_plain_lines_every_few_seconds_and_at_the_end() -> None:
    stream, clock = io.StringIO(), Ticks()
    progress = Progress("export transactions", "bytes", None, stream, clock)
    for _ in range(10):  # 10 chunks within one interval: no line yet
        clock.now += PLAIN_LINE_SECONDS / 20
        progress.advance(1_000)
    assert stream.getvalue() == ""
    clock.now += PLAIN_LINE_SECONDS
    progress.advance(1_000)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert lines == [lines[0], lines[1]] and lines[0].startswith("export transactions: 11,000 bytes")
    assert lines[1].startswith("export transactions: 11,000 bytes") and lines[1].endswith("done")


def test_every_subcommand_has_a_description_and_its_exit_codes_in_its_help() -> None:
    import argparse

    from wallet.cli import EXIT_CODES_HELP, parser

    root = parser()
    subcommands = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subcommands.choices) >= {"serve", "token", "credit-run", "export", "check", "demo"}
    for name, command in subcommands.choices.items():
        text = command.format_help()
        assert command.description and len(command.description) > 30, name
        assert EXIT_CODES_HELP in text, name
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"wallet {name} {action.option_strings[0]} has no help"
