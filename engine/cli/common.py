"""What every command shares: the common flags, output streams, and exit codes."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from ..diagnostics import MlformError  # noqa: F401  (re-exported for main)

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


class Exit(Exception):
    def __init__(self, code: int):
        self.code = code


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def use_color(no_color: bool, stream=None) -> bool:
    stream = stream or sys.stdout
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def console(color: bool, stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, no_color=not color, highlight=False, soft_wrap=True,
                   force_terminal=color if color else None, emoji=False)


def echo(text: str, color: bool = False) -> None:
    if color:
        console(True).print(text)
    else:
        click.echo(text)


def stack_argument(f):
    return click.argument("stack_dir", required=False, default=".",
                          type=click.Path(file_okay=False, path_type=Path),
                          metavar="[STACK_DIR]")(f)


def common_options(f):
    """--var, --var-file, --target, --parallelism, --lock-timeout, --no-color."""
    @click.option("--var", "vars_", multiple=True, metavar="NAME=VALUE",
                  help="Set a variable (highest precedence).")
    @click.option("--var-file", "var_files", multiple=True, metavar="FILE",
                  help="Read variables from a YAML or JSON file.")
    @click.option("--target", "targets", multiple=True, metavar="NAME",
                  help="Limit the operation to this resource (and what it needs). Repeatable.")
    @click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 256),
                  help="How many resources to work on at once.")
    @click.option("--lock-timeout", default="0s", show_default=True, metavar="DURATION",
                  help="How long to wait for the state lock.")
    @click.option("--no-color", is_flag=True, help="Plain output without colours.")
    @functools.wraps(f)
    def wrapper(*args, vars_, var_files, targets, parallelism, lock_timeout, no_color, **kw):
        from ..session import Options, parse_duration

        stack_dir = kw.pop("stack_dir", Path("."))
        opts = Options(stack_dir=stack_dir, vars=list(vars_), var_files=list(var_files),
                       targets=list(targets), parallelism=parallelism,
                       lock_timeout=parse_duration(lock_timeout),
                       color=use_color(no_color))
        return f(*args, opts=opts, **kw)
    return wrapper
