"""`mlform export pulumi`: the stack's live cloud resources as a Pulumi program."""

from __future__ import annotations

from pathlib import Path

import click

from .common import stack_argument


@click.group("export", help="Write the stack's live resources as another tool's program.")
def export_group():
    pass


@export_group.command("pulumi", help="Write a Pulumi Python program (__main__.py, Pulumi.yaml, "
                                     "requirements.txt) declaring the cloud resources in the "
                                     "stack's state, each adopted with `import_`.")
@stack_argument
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Where to write the program  [default: STACK_DIR/pulumi]")
def pulumi_cmd(stack_dir: Path, out: Path | None):
    from collections import defaultdict

    from ..diagnostics import MlformError
    from ..export.declarations import PulumiExport, PulumiExporter
    from ..export.pulumi import Source, render, write
    from ..session import Options, Session

    session = Session(Options(stack_dir=stack_dir), "export")
    out = out if out is not None else stack_dir / "pulumi"
    try:
        state = session.read_state()
        by_provider = defaultdict(list)
        for res in state.resources.values():
            by_provider[res.provider].append(res)
        exports: dict[str, PulumiExport] = {}
        skipped: list[str] = []
        for name, entries in sorted(by_provider.items()):
            provider = session.providers.get(name)
            if not isinstance(provider, PulumiExporter):
                listed = ", ".join(sorted(f"{e.type} '{e.name}'" for e in entries))
                skipped.append(f"provider '{name}' ({entries[0].provider_type or name}) has "
                               f"no Pulumi export; left out: {listed}")
                continue
            try:
                exports[name] = provider.pulumi_resources(entries)
            except MlformError:
                raise
            except Exception as exc:  # the platform's SDK: credentials, network, a refusal
                raise MlformError.simple(
                    f"provider '{name}' could not read its live resources: "
                    f"{type(exc).__name__}: {exc}",
                    help="the export reads each resource back, as 'mlform refresh' does: "
                         "check the provider's credentials and that its service is "
                         "reachable, then run it again") from exc
    finally:
        session.close()
    if not any(e.declarations for e in exports.values()):
        raise MlformError.simple(
            "nothing to export: the state holds no cloud resource Pulumi can declare",
            detail="\n".join(skipped) if skipped else "",
            help="apply the stack on the aws or gcp provider first ('mlform apply')")
    files = render(Source(state.stack, state.serial, state.lineage, stack_dir), out, exports,
                   skipped)
    write(out, files)
    count = sum(len(e.declarations) for e in exports.values())
    click.echo(f"Wrote a Pulumi program declaring {count} resource(s) to {out}/ "
               f"({', '.join(files)}).")
    notes = [n for e in exports.values() for n in e.notes] + skipped
    if notes:
        click.echo(f"{len(notes)} thing(s) are not expressible in Pulumi; the header of "
                   f"{out / '__main__.py'} lists them.")
