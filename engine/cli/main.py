"""The `mlform` command: the group, shared flags, and the one place errors are rendered.

Only click is imported at start-up; each command imports what it needs, so
`mlform --help` stays fast and never imports torch or a cloud SDK.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from . import common

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

COMMANDS = {
    # name: (module, function)
    "init": ("scaffold", "init_cmd"),
    "validate": ("inspect", "validate_cmd"),
    "fmt": ("scaffold", "fmt_cmd"),
    "plan": ("plan_apply", "plan_cmd"),
    "apply": ("plan_apply", "apply_cmd"),
    "destroy": ("plan_apply", "destroy_cmd"),
    "refresh": ("drift_cmd", "refresh_cmd"),
    "drift": ("drift_cmd", "drift_cmd"),
    "show": ("inspect", "show_cmd"),
    "output": ("inspect", "output_cmd"),
    "state": ("state_cmd", "state_group"),
    "import": ("state_cmd", "import_cmd"),
    "graph": ("inspect", "graph_cmd"),
    "providers": ("inspect", "providers_cmd"),
    "schema": ("inspect", "schema_cmd"),
    "watch": ("watch_cmd", "watch_cmd"),
    "experiment": ("experiment_cmd", "experiment_cmd"),
    "audit": ("audit_cmd", "audit_group"),
    "incidents": ("incidents_cmd", "incidents_group"),
    "ci": ("ci_cmd", "ci_group"),
    "export": ("export_cmd", "export_group"),
}

SUMMARIES = {
    "init": "Create a working stack (spec, sample data) in a directory.",
    "validate": "Check the stack spec, provider configuration and resource inputs.",
    "fmt": "Rewrite spec files in canonical form, keeping comments.",
    "plan": "Show what apply would change, attribute by attribute, and why.",
    "apply": "Make the live stack match the spec (or apply a saved plan).",
    "destroy": "Destroy everything the stack manages.",
    "refresh": "Read live state through the providers and record it.",
    "drift": "Report where live infrastructure differs from state and spec.",
    "show": "Show the state, or one resource in detail.",
    "output": "Print the stack's output values.",
    "state": "Inspect and edit the state: list, show, rm, mv, unlock.",
    "import": "Adopt an existing resource into the state.",
    "graph": "Print the dependency graph (DOT or Mermaid).",
    "providers": "List provider types installed and those the stack uses.",
    "schema": "Print the JSON Schema of the stack format.",
    "watch": "Run monitors and retraining policies (the controller loop).",
    "experiment": "Show the verdict of each endpoint's A/B experiment.",
    "audit": "Read and verify the audit log.",
    "incidents": "List, show, acknowledge and resolve incidents.",
    "ci": "Write a saved plan as a pull-request comment and a CI job summary.",
    "export": "Write the stack's live cloud resources as a Pulumi program.",
}


class LazyGroup(click.Group):
    """Loads a command's module only when that command runs."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        import importlib


        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, SUMMARIES[name]) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(package_name="mlform", prog_name="mlform")
def cli():
    """mlform: plan and apply for the whole machine-learning lifecycle.

    Declare datasets, training jobs, models with evaluation gates, endpoints with
    canary rollouts, monitors and retraining policies in mlform.yaml; review the
    plan; apply it on the local machine or a cloud.
    """


def main(argv: list[str] | None = None) -> None:
    debug = os.environ.get("MLFORM_DEBUG") == "1"
    try:
        cli.main(args=argv, prog_name="mlform", standalone_mode=False)
    except common.Exit as exc:
        sys.exit(exc.code)
    except click.exceptions.Abort:
        common.err("error: aborted")
        sys.exit(1)
    except click.exceptions.UsageError as exc:
        hint = ""
        if exc.ctx is not None:
            hint = f"\nhelp: run '{exc.ctx.command_path} --help' for the flags it takes"
        common.err(f"error: {exc.format_message()}{hint}")
        sys.exit(1)
    except click.exceptions.ClickException as exc:
        common.err(f"error: {exc.format_message()}")
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except common.MlformError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        common.err(exc.render())
        sys.exit(1)
    except KeyboardInterrupt:
        common.err("error: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # no traceback reaches the user unless asked for
        if debug:
            raise
        common.err(f"error: internal error: {type(exc).__name__}: {exc}\n"
                   "help: run again with MLFORM_DEBUG=1 to see the traceback, and report it")
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
