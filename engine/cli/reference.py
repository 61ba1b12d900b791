"""The command-line reference, docs/cli.md, rendered from the click commands themselves.

Every command, subcommand, argument and flag is read from the `mlform` group
(loading each command module as `mlform COMMAND --help` would), so the page says
exactly what `--help` says. A test fails when the committed file differs.
Regenerate it with `python -m mlform.engine.cli.reference > docs/cli.md`.
"""

from __future__ import annotations

import click

from .main import COMMANDS, CONTEXT, cli

INTRO = """\
# Command-line reference

Generated from the commands' own definitions; do not edit by hand (regenerate:
`python -m mlform.engine.cli.reference > docs/cli.md`). `mlform COMMAND --help`
prints the same text. See [concepts](concepts.md) for what plan, apply, state and
drift mean.

Every command that works on a stack takes the stack directory as an optional
argument, default the current directory. Every command takes `-h`/`--help`;
`mlform --version` prints the version.

## Flags shared by the commands that plan

`validate`, `plan`, `apply`, `destroy`, `refresh`, `drift` and `watch` take:

| flag | meaning |
|---|---|
| `--var NAME=VALUE` | set a variable; repeatable; highest precedence |
| `--var-file FILE` | read variables from a YAML or JSON mapping; repeatable, later files win |
| `--target NAME` | limit the command to this resource and what it needs; repeatable |
| `--parallelism N` | how many resources to work on at once (1 to 256, default 10) |
| `--lock-timeout DURATION` | how long to wait for the state lock (`30s`, `5m`; default `0s`: fail at once) |
| `--no-color` | plain output (also when `NO_COLOR` is set or the output is not a terminal) |

Variables take their values from, highest precedence first: `--var`, `--var-file`
files, environment variables `MLFORM_VAR_<NAME>`, the declared default.

## Exit codes

| code | meaning |
|---|---|
| 0 | success, and nothing to change |
| 1 | an error (in the spec, a provider, the state or the lock; a failed apply; a refused confirmation; `fmt --check` found unformatted files; `audit verify` found a break) |
| 2 | `plan --detailed-exitcode`: the plan has changes; `drift`: drift was found |
| 130 | interrupted by Ctrl-C; during `apply` and `destroy` the first Ctrl-C lets what is in flight finish and record itself (exit 1), a second aborts at once (exit 130) |

## Environment

| variable | effect |
|---|---|
| `MLFORM_VAR_<NAME>` | value of variable `<NAME>` |
| `MLFORM_DEBUG=1` | show the Python traceback behind an error |
| `NO_COLOR` | no colours |
| `CI=true` | never ask for confirmation (`apply` without `--auto-approve` refuses) |

## Commands
"""


def render_cli_reference() -> str:
    root = click.Context(cli, info_name="mlform", **CONTEXT)
    out = [INTRO]
    out.append(" · ".join(f"[`{name}`](#mlform-{name})" for name in COMMANDS) + "\n")
    for name in COMMANDS:
        command = cli.get_command(root, name)
        assert command is not None, f"COMMANDS names '{name}', which the group lacks"
        out += _command(command, click.Context(command, info_name=name, parent=root), 3)
    return "\n".join(out).rstrip("\n") + "\n"


def _command(command: click.Command, ctx: click.Context, level: int) -> list[str]:
    path = ctx.command_path
    out = [f"{'#' * level} {path}\n", f"{_text(command.help)}\n", "```text",
           f"{path} {' '.join(command.collect_usage_pieces(ctx))}", "```", ""]
    arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
    help_option = command.get_help_option(ctx)
    options = [p for p in command.get_params(ctx)
               if isinstance(p, click.Option) and p is not help_option]
    if arguments:
        out.append("Arguments: " + ", ".join(
            f"`{a.make_metavar(ctx)}`" + ("" if a.required else " (optional)")
            for a in arguments) + "\n")
    if options:
        out += ["| flag | meaning |", "|---|---|"]
        for option in options:
            flags, meaning = option.get_help_record(ctx) or ("", "")
            out.append(f"| `{_cell(flags)}` | {_cell(_text(meaning))} |")
        out.append("")
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            assert sub is not None, f"'{sub_name}' is listed but not found"
            out += _command(sub, click.Context(sub, info_name=sub_name, parent=ctx), level + 1)
    return out


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell, code spans included."""
    return text.replace("|", "\\|")


def _text(help_text: str | None) -> str:
    return " ".join((help_text or "").split())


if __name__ == "__main__":
    print(render_cli_reference(), end="")
