"""The ``mint`` command line.

Each subcommand lives in its own module ``mint.cli.<name>_cmd`` exposing a click command called
``command``; modules are imported only when their command runs, so ``mint --help`` stays fast.
A command whose module is absent is simply not offered.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from mint import __version__
from mint.errors import MintError, first_line
from mint.io import replacing

#: command name -> module that defines ``command``
COMMANDS: dict[str, str] = {
    "predict": "mint.cli.predict_cmd",
    "profile": "mint.cli.profile_cmd",
    "compare-labels": "mint.cli.compare_labels_cmd",
    "cluster": "mint.cli.cluster_cmd",
    "plot": "mint.cli.plot_cmd",
    "tune": "mint.cli.tune_cmd",
    "evaluate": "mint.cli.evaluate_cmd",
    "export": "mint.cli.export_cmd",
    "route": "mint.cli.route_cmd",
    "run": "mint.cli.run_cmd",
    "demo": "mint.cli.demo_cmd",
}


class InputError(click.ClickException):
    """A :class:`MintError` surfaced to the user: ``Error: ...`` and exit code 2."""

    exit_code = 2


class MintGroup(click.Group):
    """Lazy subcommands, and one-line errors instead of tracebacks."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n, mod in COMMANDS.items() if importlib.util.find_spec(mod) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        mod = COMMANDS.get(name)
        if mod is None or importlib.util.find_spec(mod) is None:
            return None
        return importlib.import_module(mod).command

    def invoke(self, ctx: click.Context):
        try:
            with replacing(False):  # outputs never replace a file; a command's --force allows it
                return super().invoke(ctx)
        except MintError as e:
            raise InputError(str(e)) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as e:  # anything else: exit 1 with one line, traceback only on request
            if os.environ.get("MINT_DEBUG"):
                raise
            click.echo(
                f"Error: {type(e).__name__}: {first_line(e, '')} (set MINT_DEBUG=1 for the traceback)",
                err=True,
            )
            sys.exit(1)


@click.group(cls=MintGroup)
@click.version_option(__version__, prog_name="mint")
def main() -> None:
    """Group multimodal tasks by how their modalities interact, then tune one LoRA adapter per group."""
