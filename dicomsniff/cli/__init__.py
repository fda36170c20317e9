"""Command line: ``dicomsniff analyze CAPTURE`` and friends.

One module per subcommand in this package, each with ``add_parser(subparsers)`` (adds its
parser and sets ``handler``, a callable taking the parsed args and returning the exit code,
with ``set_defaults``); :data:`COMMANDS` lists them, in the order ``--help`` shows them. To add
a subcommand: write ``dicomsniff/cli/NAME.py`` and add ``"NAME"`` to :data:`COMMANDS` (an
underscore in the module name is a dash in the command). Shared options, converters, exit
codes and the progress bar are in :mod:`dicomsniff.cli.args`. Keep the modules' top-level
imports light: all of them load each time ``dicomsniff`` starts.

A subcommand whose module cannot be imported (a missing optional dependency, a broken
install) is still listed; running it prints why in one line and exits 2.

Exit codes (documented in README.md and --help):
  0  analysed (whatever was found, unless --fail-on says otherwise)
  1  findings at or above the --fail-on severity
  2  the file cannot be analysed at all (missing, unreadable, not a capture) or bad usage
  3  the capture is damaged part-way (truncated, corrupt block): everything before the damage
     was analysed and reported
 130 interrupted (Ctrl-C); what was read so far is reported
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from typing import Any

from .args import EXIT_OK, EXIT_UNUSABLE, Parser, pause_collector, settle

# The subcommands: module names in this package, in --help order.
COMMANDS: tuple[str, ...] = (
    "analyze",
    "diagram",
    "live",
    "export_objects",
    "show",
    "studies",
    "tui",
    "rules",
    "conformance",
    "diff",
)


def _unavailable(subparsers: Any, name: str, exc: BaseException) -> None:
    """A subcommand whose module failed to import: listed, and running it says why."""
    command = name.replace("_", "-")
    why = f"{type(exc).__name__}: {exc}"
    p = subparsers.add_parser(command, help=f"(unavailable: {why})", add_help=False,
                              description=f"unavailable: {why}")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def handler(_args: argparse.Namespace) -> int:
        sys.stderr.write(f"dicomsniff: the '{command}' command cannot run here: {why}\n")
        return EXIT_UNUSABLE

    p.set_defaults(handler=handler)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. ``only``: the subcommand about to run (its name as typed):
    only its module is imported and only its parser is built (a run names one command;
    building all ten parsers and importing their modules cost about a sixth of the start of
    ``analyze --json`` on a small capture). Without it (``--help``, a typo), all of them."""
    p = Parser(prog="dicomsniff",
               description="Passive DICOM network protocol analyzer: who associated with "
                           "whom, what was negotiated, every DIMSE request and response, "
                           "and what broke the rules.",
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="Run 'dicomsniff COMMAND --help' for a command's options and examples.")
    from .. import __version__
    from ..analysis import accel

    p.add_argument("--version", action="version",
                   version=f"dicomsniff {__version__} (bulk runs: {accel.describe()})")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        if only is not None and name.replace("_", "-") != only:
            continue  # not the one that runs: argparse never looks at it
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except Exception as exc:  # noqa: BLE001 - any failure: say so when it is asked for
            _unavailable(sub, name, exc)
            continue
        mod.add_parser(sub)
    return p


def _command(argv: list[str]) -> str | None:
    """The subcommand ``argv`` runs, if its first word names one (else None: --help,
    --version, a typo, nothing)."""
    if argv and argv[0] in {n.replace("_", "-") for n in COMMANDS}:
        return argv[0]
    return None


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    pause_collector()  # start-up: see dicomsniff.cli.args.settle
    try:
        return _run(argv)
    finally:
        settle()


def _run(argv: list[str]) -> int:
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_UNUSABLE
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_UNUSABLE
    try:
        return handler(args)
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error worth a traceback.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return EXIT_OK


def entry() -> None:
    """Console entry point: a closed pipe (``| head``) ends the program quietly, status 0."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        code = EXIT_OK
    # The interpreter's shutdown runs full collections over every object left (the modules,
    # tables, what the command made): 8 to 10 ms of each run (docs/performance.md). None of
    # it is garbage the collector must find now; frozen, the collections skip it, and objects
    # are still released as the modules are cleared (files flushed and closed as before).
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
