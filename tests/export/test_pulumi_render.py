"""The Pulumi program's rendering (engine/export/pulumi.py) and the command's refusals,
without a cloud: order of declarations, valid Python and YAML, the header's notes, a
foreign program left alone, and a stack with nothing Pulumi can declare."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from mlform.engine.diagnostics import MlformError
from mlform.engine.export.declarations import Declaration, FileAsset, PulumiExport, Ref
from mlform.engine.export.pulumi import MARKER, Source, render, write

EXPORT = PulumiExport(
    module="pulumi_aws", alias="aws", requirement="pulumi-aws>=7.51.1,<8",
    provider_args={"region": "eu-west-1"},
    declarations=[
        # the endpoint first: it refers to the config, which must be defined before it
        Declaration("api", "sagemaker.Endpoint", {"name": "s-api",
                                                  "endpoint_config_name": Ref("api-config",
                                                                              "name")},
                    import_id="s-api", source="api"),
        Declaration("api-config", "sagemaker.EndpointConfiguration",
                    {"name": "s-api-1", "production_variants": [
                        {"variant_name": "champion", "initial_instance_count": 2}]},
                    import_id="s-api-1", source="api"),
        Declaration("data", "s3.BucketObjectv2", {"bucket": "b", "key": "k/data.csv",
                                                  "source": FileAsset("data/t.csv")},
                    import_id="b/k/data.csv", source="data", ignore_changes=("source",)),
    ],
    notes=["training_job 'train': a finished run " + "word " * 30])


def rendered(tmp_path: Path, exports=None, skipped=()) -> dict[str, str]:
    return render(Source("fraud", 7, "lin-1", tmp_path / "stack"), tmp_path / "out",
                  exports if exports is not None else {"sagemaker": EXPORT}, skipped)


def test_the_program_is_python_with_each_reference_after_what_it_refers_to(tmp_path):
    program = rendered(tmp_path)["__main__.py"]
    tree = ast.parse(program)
    assigned = [node.targets[0].id for node in tree.body if isinstance(node, ast.Assign)]
    assert assigned == ["STACK_DIR", "sagemaker_provider", "api_config", "api", "data"]
    assert "endpoint_config_name=api_config.name," in program
    assert "source=pulumi.FileAsset(str(STACK_DIR / 'data/t.csv'))," in program
    assert "STACK_DIR = (pathlib.Path(__file__).resolve().parent / '../stack').resolve()" \
        in program
    assert "import_='b/k/data.csv',\n        retain_on_delete=True,\n" \
           "        ignore_changes=['source']," in program


def test_the_header_names_the_source_and_what_is_not_expressible(tmp_path):
    program = rendered(tmp_path, skipped=["provider 'local' (local) has no Pulumi export"])
    lines = program["__main__.py"].splitlines()
    assert lines[0] == MARKER
    assert "stack 'fraud' (serial 7, lineage lin-1)" in lines[1]
    header = lines[:lines.index(next(line for line in lines if line.startswith("import")))]
    assert all(line.startswith("#") or not line for line in header)
    assert all(len(line) <= 100 for line in header)
    text = "\n".join(header)
    assert "training_job 'train': a finished run" in text
    assert "provider 'local' (local) has no Pulumi export" in text


def test_a_program_without_files_does_not_look_for_the_stack_directory(tmp_path):
    endpoint_only = PulumiExport(**{**EXPORT.__dict__,
                                    "declarations": EXPORT.declarations[:2]})
    program = rendered(tmp_path, {"sagemaker": endpoint_only})["__main__.py"]
    ast.parse(program)
    assert "STACK_DIR" not in program and "import pathlib" not in program


def test_project_and_requirements(tmp_path):
    files = rendered(tmp_path)
    project = yaml.safe_load(files["Pulumi.yaml"])
    assert project["name"] == "fraud-mlform"
    assert project["runtime"] == {"name": "python"}
    assert files["requirements.txt"].splitlines() == ["pulumi>=3.272.0,<4",
                                                       "pulumi-aws>=7.51.1,<8"]


def test_a_program_someone_else_wrote_is_not_overwritten(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "__main__.py").write_text("import pulumi  # ours\n")
    with pytest.raises(MlformError) as caught:
        write(out, rendered(tmp_path))
    assert "was not written by 'mlform export pulumi'" in caught.value.render()
    assert (out / "__main__.py").read_text() == "import pulumi  # ours\n"
    write(tmp_path / "fresh", rendered(tmp_path))
    write(tmp_path / "fresh", rendered(tmp_path))  # its own program is rewritten
    assert (tmp_path / "fresh" / "__main__.py").read_text().startswith(MARKER)


@pytest.mark.e2e
def test_a_stack_with_no_cloud_resources_has_nothing_to_export(null_stack, run_mlform):
    stack = null_stack("""
        version: 1
        stack: nulls
        providers:
          null: {}
        resources:
          data:
            type: dataset
            provider: null
            source: data.csv
        """, **{"data.csv": "a,b\n1,2\n"})
    assert run_mlform(["apply", "--auto-approve"], stack).returncode == 0
    done = run_mlform(["export", "pulumi"], stack)
    assert done.returncode == 1
    assert done.stderr.startswith("error: nothing to export: the state holds no cloud "
                                  "resource Pulumi can declare"), done.stderr
    assert "provider 'null' (null) has no Pulumi export; left out: dataset 'data'" \
        in done.stderr
    assert "Traceback" not in done.stderr
    assert not (stack / "pulumi").exists()


def test_mlform_itself_never_imports_pulumi():
    """Only the generated program imports Pulumi: mlform's own modules (the command,
    validate, plan, the export) must run where Pulumi is not installed."""
    root = Path(__file__).resolve().parents[2]
    found = []
    for folder in ("engine", "ml", "providers"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and \
                    node.level == 0 else []  # `from .pulumi import` is the provider's module
                found += [f"{path.relative_to(root)}: {n}" for n in names
                          if n.split(".")[0].startswith("pulumi")]
    assert found == []
