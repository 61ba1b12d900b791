"""Runs a generated Pulumi program under Pulumi's own mocks and writes what it declared.

Usage: python pulumi_mocks_run.py PROGRAM_DIR OUT_JSON

Runs in build/pulumi-venv (Pulumi and its provider SDKs), never in the main venv: the
mocks are set before the program imports pulumi_aws or pulumi_gcp, as Pulumi's testing
guide requires, and each resource registration is recorded with its type, name,
provider, import id and inputs (assets by path, references resolved).
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pulumi


def plain(value):
    """Inputs as JSON: assets by their path, everything else as it is."""
    if isinstance(value, pulumi.FileAsset):
        return {"file_asset": value.path}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[dict] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append({"type": args.typ, "name": args.name,
                               "import_id": args.resource_id or None,
                               "provider": args.provider or None,
                               "inputs": plain(args.inputs)})
        # An imported resource keeps its live id; its outputs are its inputs.
        return args.resource_id or f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def main(program: Path, out: Path) -> None:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="exported", stack="test", preview=False)
    assert not any(m.startswith(("pulumi_aws", "pulumi_gcp")) for m in sys.modules), \
        "the provider SDKs must be imported after set_mocks"

    @pulumi.runtime.test
    def run():
        runpy.run_path(str(program / "__main__.py"), run_name="__main__")
        return pulumi.Output.from_input(True)

    run()
    out.write_text(json.dumps(recorder.resources, indent=2, sort_keys=True, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
