"""The state's safety nets through the command: private modes enforced on an existing
`.mlform`, damaged or misplaced state files explained, and a state replaced by another
lineage or set back to an older serial refused until accepted with `mlform state accept`."""

from __future__ import annotations

import json
import stat

import pytest
from null_pipeline import pipeline_spec

pytestmark = pytest.mark.e2e

SPEC = pipeline_spec("safety")


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def applied(null_stack, run_mlform):
    stack = null_stack(SPEC)
    got = run_mlform(["apply", "--auto-approve"], stack)
    assert got.returncode == 0, got.stderr
    return stack


def reapply_with_seed(stack, run_mlform, seed: int) -> None:
    (stack / "mlform.yaml").write_text(SPEC.replace("target: y", f"target: y\n    seed: {seed}"))
    got = run_mlform(["apply", "--auto-approve"], stack)
    assert got.returncode == 0, got.stderr


# --- item 9: an existing .mlform is made private ----------------------------------------

@pytest.mark.parametrize("args", [
    ["plan"], ["state", "list"], ["show"], ["validate"], ["audit", "verify"],
    ["apply", "--auto-approve"], ["init", "."],
], ids=["plan", "state-list", "show", "validate", "audit-verify", "apply", "init"])
def test_a_loose_dot_mlform_is_tightened_by_every_command(applied, run_mlform, args):
    dot = applied / ".mlform"
    dot.chmod(0o755)
    for name in ("state.json", "state.json.backup", "state.journal", "state.lock.json"):
        if (dot / name).exists():
            (dot / name).chmod(0o644)
    got = run_mlform(args, applied)
    assert got.returncode == 0, got.stderr
    assert mode(dot) == 0o700
    if args[0] in ("plan", "state", "show", "apply"):
        assert mode(dot / "state.json") == 0o600


# --- item 12: damaged or misplaced state files ------------------------------------------

def test_a_corrupt_state_without_a_backup_does_not_suggest_one(applied, run_mlform):
    (applied / ".mlform" / "state.json").write_text("{not json")
    assert not (applied / ".mlform" / "state.json.backup").exists()
    got = run_mlform(["plan"], applied)
    assert got.returncode == 1
    assert got.stderr.endswith(
        "help: there is no backup of it to restore: fix the problem in '.mlform/state.json' "
        "by hand (it is JSON), or move it aside and adopt each live resource again with "
        "'mlform import NAME ID'\n")
    assert "Traceback" not in got.stderr


def test_a_corrupt_state_with_a_backup_names_it(applied, run_mlform):
    reapply_with_seed(applied, run_mlform, 5)
    assert (applied / ".mlform" / "state.json.backup").exists()
    (applied / ".mlform" / "state.json").write_text("{not json")
    got = run_mlform(["plan"], applied)
    assert got.returncode == 1
    assert got.stderr.endswith(
        "help: restore the state before the last write: copy '.mlform/state.json.backup' "
        "over '.mlform/state.json'\n")


def test_a_damaged_backup_is_not_suggested(applied, run_mlform):
    reapply_with_seed(applied, run_mlform, 5)
    (applied / ".mlform" / "state.json.backup").write_text("[]")
    (applied / ".mlform" / "state.json").write_text("{not json")
    got = run_mlform(["state", "list"], applied)
    assert got.returncode == 1
    assert "help: there is no backup of it to restore" in got.stderr
    assert "copy '.mlform/state.json.backup'" not in got.stderr


@pytest.mark.parametrize("args", [["plan"], ["apply", "--auto-approve"], ["state", "list"]],
                         ids=["plan", "apply", "state-list"])
def test_a_state_path_that_is_a_directory_is_explained(null_stack, run_mlform, args):
    stack = null_stack(SPEC)
    (stack / ".mlform" / "state.json").mkdir(parents=True)
    got = run_mlform(args, stack)
    assert got.returncode == 1
    assert got.stderr == (
        "error: '.mlform/state.json' is a directory, but the state must be a file there\n"
        "help: move the directory aside (mv '.mlform/state.json' '.mlform/state.json.dir'); "
        "if it holds your state file, put that file at '.mlform/state.json' instead; or set "
        "'backend: {path: ...}' in mlform.yaml to another file\n")


# --- item 12: a replaced or set-back state ----------------------------------------------

LINEAGE_HELP = ("help: if it is the wrong state, put the right one back; to adopt this one as "
                "the stack's state from now on, run 'mlform state accept'\n")
SERIAL_HELP = ("help: put the latest state back; to continue from this older one on purpose, "
               "run 'mlform state accept', then 'mlform plan' to see what it no longer knows\n")


def test_a_state_with_another_lineage_is_refused_until_accepted(applied, run_mlform,
                                                               stack_writer, tmp_path):
    ours = json.loads((applied / ".mlform" / "state.json").read_text())
    other = stack_writer(tmp_path / "other", pipeline_spec("safety"))
    assert run_mlform(["apply", "--auto-approve"], other).returncode == 0
    theirs = (other / ".mlform" / "state.json").read_bytes()
    (applied / ".mlform" / "state.json").write_bytes(theirs)
    lineage = json.loads(theirs)["lineage"]

    for args in (["plan"], ["apply", "--auto-approve"], ["state", "list"]):
        got = run_mlform(args, applied)
        assert got.returncode == 1, args
        assert got.stderr == (
            "error: local state '.mlform/state.json' holds another state than the one this "
            "stack last used\n"
            f"  = it holds lineage {lineage} at serial 1 (2 resources); this stack last saw "
            f"lineage {ours['lineage']} at serial 1\n"
            "  = a state is replaced like this when one from another stack or an older setup "
            "is copied over it\n" + LINEAGE_HELP)
    assert (applied / ".mlform" / "state.json").read_bytes() == theirs

    accepted = run_mlform(["state", "accept"], applied)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout == (f"Accepted local state '.mlform/state.json' as this stack's "
                               f"state: lineage {lineage}, serial 1, 2 resources.\n")
    assert run_mlform(["state", "list"], applied).returncode == 0
    audit = json.loads((applied / ".mlform" / "audit.jsonl").read_text().splitlines()[-1])
    assert (audit["command"], audit["detail"]["previous_lineage"]) == \
        ("state accept", ours["lineage"])


def test_an_older_copy_of_the_state_is_refused_until_accepted(applied, run_mlform):
    old = (applied / ".mlform" / "state.json").read_bytes()
    reapply_with_seed(applied, run_mlform, 5)
    (applied / ".mlform" / "state.json").write_bytes(old)

    got = run_mlform(["plan"], applied)
    assert got.returncode == 1
    lineage = json.loads(old)["lineage"]
    assert got.stderr == (
        "error: local state '.mlform/state.json' went back from serial 2 to serial 1\n"
        f"  = same lineage {lineage}: an older copy was restored, and what changed after "
        "serial 1 is missing from it\n" + SERIAL_HELP)

    assert run_mlform(["state", "accept"], applied).returncode == 0
    plan = run_mlform(["plan", "--detailed-exitcode"], applied)
    assert plan.returncode == 0, plan.stderr
    assert "seed: null -> 5" in plan.stdout  # refresh finds what the old copy did not know


def test_a_removed_state_is_refused_until_accepted(applied, run_mlform):
    (applied / ".mlform" / "state.json").unlink()
    got = run_mlform(["apply", "--auto-approve"], applied)
    assert got.returncode == 1
    assert got.stderr.startswith("error: local state '.mlform/state.json' is gone\n")
    assert got.stderr.endswith(
        "help: put the state back (from a copy or the backend's backup); to start from an "
        "empty state on purpose (the live resources stay, unmanaged), run "
        "'mlform state accept'\n")
    assert run_mlform(["state", "accept"], applied).stdout == (
        "Accepted: local state '.mlform/state.json' holds no state; the next apply starts a "
        "new one.\n")
    assert run_mlform(["plan"], applied).returncode == 0


def test_state_that_moves_forward_is_accepted_without_a_word(applied, run_mlform):
    reapply_with_seed(applied, run_mlform, 5)
    reapply_with_seed(applied, run_mlform, 6)
    record = json.loads((applied / ".mlform" / "backend.json").read_text())
    assert record["serial"] == 3 and mode(applied / ".mlform" / "backend.json") == 0o600
