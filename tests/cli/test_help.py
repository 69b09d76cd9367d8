"""`krp --help` lists every subcommand; `krp <subcommand> --help` describes each one."""

import pytest
from django.core.management import call_command

from provisioning.management.commands.krp import SUBCOMMANDS
from tests.cli import assert_refused, run_krp


def squeezed(text: str) -> str:
    """Text without whitespace: argparse wraps (and hyphen-breaks) lines to the terminal."""
    return "".join(text.split())


@pytest.mark.parametrize("subcommand", SUBCOMMANDS, ids=lambda s: s.name)
def test_each_subcommand_describes_itself_with_help_and_exits_zero(subcommand, capsys):
    with pytest.raises(SystemExit) as done:
        call_command("krp", subcommand.name, "--help")

    assert done.value.code == 0
    text = capsys.readouterr().out
    assert f"krp {subcommand.name}" in text
    assert squeezed(subcommand.description or subcommand.help) in squeezed(text)
    assert ("--json" in text) == subcommand.json_option


def test_krp_help_as_a_process_lists_every_subcommand_with_what_it_does():
    done = run_krp("--help")

    assert done.returncode == 0, done.stderr
    for subcommand in SUBCOMMANDS:
        assert subcommand.name in done.stdout
        assert squeezed(subcommand.help) in squeezed(done.stdout)


def test_subcommand_help_as_a_process_names_its_options():
    done = run_krp("submit", "--help")

    assert done.returncode == 0, done.stderr
    for option in ("--env", "--type", "--name", "--spec", "--tag", "--user", "--wait", "--json"):
        assert option in done.stdout


def test_krp_without_a_subcommand_or_with_an_unknown_one_is_refused():
    assert_refused(run_krp(), "subcommand")
    assert_refused(run_krp("deploy"), "invalid choice: 'deploy'")
