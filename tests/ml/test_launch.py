"""mlform.ml.launch: a custom script in a job container, where only mlform.ml is shipped,
still imports the artifact module by the name earlier releases documented."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import mlform.ml

SCRIPT = """\
import sys
import mlform.providers.local.artifact
from mlform.providers.local.artifact import save_model
from mlform.ml import artifact
assert mlform.providers.local.artifact is artifact and save_model is artifact.save_model
print("ran", __name__, sys.argv[1:])
"""


def container(tmp_path: Path) -> Path:
    """A directory holding mlform.ml alone, as a job bundle does."""
    root = tmp_path / "bundle"
    shutil.copytree(Path(mlform.ml.__file__).parent, root / "mlform" / "ml",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "mlform" / "__init__.py").write_text("")
    (root / "train.py").write_text(SCRIPT)
    return root


def launch(root: Path, *args: str) -> subprocess.CompletedProcess:
    # -I -S: no site-packages, so the installed (editable) mlform is not importable and
    # only the bundle's copy is, as in a container; -I drops cwd from sys.path too.
    return subprocess.run([sys.executable, "-I", "-S", "-c",
                           f"import sys; sys.path.insert(0, {str(root)!r}); "
                           "import runpy; sys.argv[1:1] = []; "
                           "runpy.run_module('mlform.ml.launch', run_name='__main__')",
                           *args], capture_output=True, text=True, timeout=120, cwd=root)


def test_a_script_importing_the_old_artifact_name_runs_as_main_with_its_arguments(tmp_path):
    root = container(tmp_path)
    out = launch(root, str(root / "train.py"), "--epochs", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ran __main__ ['--epochs', '3']\n"


def test_without_the_alias_the_old_name_is_missing_there(tmp_path):
    """What the launcher is for: the bundle alone has no mlform.providers."""
    root = container(tmp_path)
    out = subprocess.run([sys.executable, "-S", str(root / "train.py")], capture_output=True,
                         text=True, timeout=120, cwd=root,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 1
    assert "No module named 'mlform.providers'" in out.stderr


def test_a_full_install_keeps_the_real_module(tmp_path):
    from mlform.ml.launch import alias_legacy_artifact

    assert alias_legacy_artifact() is False
    assert "mlform.providers.local.artifact" not in sys.modules or \
        sys.modules["mlform.providers.local.artifact"].__file__.endswith(
            "providers/local/artifact.py")


def test_no_script_is_a_usage_error(tmp_path):
    out = launch(container(tmp_path))
    assert out.returncode == 1
    assert out.stderr.strip() == "usage: python -m mlform.ml.launch <script> [args...]"
