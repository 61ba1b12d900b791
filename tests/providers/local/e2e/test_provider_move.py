"""An endpoint moved from the local provider to another one in one apply: the old
server stops and its files go, because the delete goes to the provider recorded in
state (issue 9: the delete used to go to the new provider and the server kept running).
"""

from __future__ import annotations

import pytest

from .conftest import (
    FRAUD_STACK,
    assert_no_processes,
    destroy_and_check,
    mlform_ok,
    output,
    port_open,
    server_record,
    servers_of,
    write_fraud_data,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APPLY = ["apply", "--auto-approve", "--no-color"]
ON_LOCAL = FRAUD_STACK.replace("      local: {}\n", "      local: {}\n      null: {}\n").replace(
    "        type: endpoint\n", "        type: endpoint\n        provider: local\n")
ON_NULL = ON_LOCAL.replace("        provider: local\n", "        provider: \"null\"\n")


def test_an_endpoint_moved_from_local_to_null_leaves_no_server_and_no_files(
        tmp_path, stack_writer, run_mlform):
    stack = stack_writer(tmp_path / "fraud", ON_LOCAL)
    write_fraud_data(stack, seed=1)
    try:
        mlform_ok(run_mlform, APPLY, stack, timeout=300)
        served = server_record(stack)
        endpoint_dir = stack / ".mlform" / "local" / "endpoints" / "fraud_endpoint"
        assert servers_of(stack, "fraud_endpoint") and port_open(served["port"])

        stack_writer(stack, ON_NULL)
        plan = mlform_ok(run_mlform, ["plan", "--no-color"], stack).stdout
        # create-then-delete, saying why, and nothing else changes
        assert ("+/- endpoint.fraud_endpoint must be replaced (new one first)\n"
                "    # moves from provider 'local' to 'null'\n") in plan
        assert "Plan: 1 to add, 0 to change, 1 to destroy." in plan

        mlform_ok(run_mlform, APPLY, stack, timeout=300)
        assert output(run_mlform, stack, "url").startswith("http://null.invalid/")
        assert not servers_of(stack, "fraud_endpoint")
        assert not port_open(served["port"])
        assert not endpoint_dir.exists()
    finally:
        destroy_and_check(run_mlform, stack)
    assert_no_processes(stack)
