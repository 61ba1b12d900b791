"""`mlform init` and `mlform fmt`."""

from __future__ import annotations

import io
from pathlib import Path

import click

from .common import EXIT_ERROR, Exit, stack_argument

TOP_ORDER = ["version", "stack", "include", "backend", "providers", "variables", "resources",
             "outputs"]
RESOURCE_FIRST = ["type", "provider", "description", "depends_on"]


@click.command("init", help="Create a working stack (spec with schema comment, sample data) "
                            "and check its providers are installed.")
@stack_argument
@click.option("--name", help="Stack name (default: the directory's name).")
def init_cmd(stack_dir, name):
    from ..registry import available
    from ..scaffold import init_stack
    from ..spec.loader import load_stack

    written = init_stack(Path(stack_dir), name)
    for p in written:
        click.echo(f"wrote {p}")
    stack = load_stack(stack_dir)
    installed = available()
    missing = [s.type for s in stack.providers.values() if s.type not in installed]
    for t in missing:
        click.echo(f"warning: provider type '{t}' is not installed: pip install 'mlform[{t}]'",
                   err=True)
    click.echo(f"\nStack '{stack.name}' is ready in {stack_dir}. Next: mlform plan "
               f"{stack_dir if str(stack_dir) != '.' else ''}".rstrip())


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    y.preserve_quotes = True
    return y


def _reorder(mapping, first: list[str]) -> None:
    """Put `first` keys first, keeping the comments attached to each key."""
    keys = list(mapping.keys())
    wanted = [k for k in first if k in mapping] + [k for k in keys if k not in first]
    if wanted == keys:
        return
    comments = {k: mapping.ca.items.get(k) for k in keys}
    values = {k: mapping.pop(k) for k in keys}
    for i, k in enumerate(wanted):
        mapping.insert(i, k, values[k])
        if comments[k] is not None:
            mapping.ca.items[k] = comments[k]


def canonical(text: str) -> str:
    y = _yaml()
    doc = y.load(text)
    if hasattr(doc, "keys"):
        _reorder(doc, TOP_ORDER)
        for res in (doc.get("resources") or {}).values():
            if hasattr(res, "keys"):
                _reorder(res, RESOURCE_FIRST)
    buf = io.StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


@click.command("fmt", help="Rewrite spec files canonically, keeping comments (--check for CI).")
@stack_argument
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file is not canonical.")
@click.option("--diff", "show_diff", is_flag=True, help="Show the changes.")
def fmt_cmd(stack_dir, check, show_diff):
    import difflib

    from ..spec.source import read_yaml

    root = Path(stack_dir)
    files = [root / "mlform.yaml"]
    data, _ = read_yaml(files[0])  # reports syntax errors with file:line:col
    files += [root / inc for inc in (data or {}).get("include", []) or []]
    unformatted = []
    for path in files:
        read_yaml(path)
        text = path.read_text(encoding="utf-8")
        new = canonical(text)
        if new == text:
            continue
        unformatted.append(path)
        if show_diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                    str(path), str(path) + " (formatted)")))
        if not check:
            path.write_text(new, encoding="utf-8")
            click.echo(f"formatted {path}")
    if check and unformatted:
        for p in unformatted:
            click.echo(f"{p} is not formatted; run 'mlform fmt'", err=True)
        raise Exit(EXIT_ERROR)
