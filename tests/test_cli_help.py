"""``bioprop --help``: every argument of every command says what it is, in plain text."""
import argparse

import pytest

from bioprop.cli import _parser


def _commands(parser):
    """(name, parser) of the top-level parser and of each command's."""
    yield "bioprop", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"bioprop {name}", sub


COMMANDS = list(_commands(_parser()))


def test_every_command_is_walked():
    assert {name for name, _ in COMMANDS} >= {"bioprop run", "bioprop sweep", "bioprop report",
                                              "bioprop info", "bioprop export", "bioprop bench"}


@pytest.mark.parametrize("name, parser", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_argument_has_help(name, parser):
    missing = [action.option_strings[0] if action.option_strings else action.dest
               for action in parser._actions
               if not isinstance(action, argparse._HelpAction)
               and not (action.help or "").strip()]
    assert not missing, f"{name}: no help text for {', '.join(missing)}"


@pytest.mark.parametrize("name, parser", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_help_has_no_markdown(name, parser):
    text = parser.format_help()
    assert "`" not in text, f"{name} --help shows a backtick"
    assert parser.description, f"{name} --help does not say what the command does"
