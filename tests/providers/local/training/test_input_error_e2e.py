"""A job whose target is not a column, where plan cannot tell (a CSV header pandas renames),
fails at apply with one line naming the problem, not a runner traceback."""

from __future__ import annotations

STACK = """\
version: 1
stack: fallback
backend: {type: local}
providers:
  local: {}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${transactions.uri}
    algorithm: logistic_regression
    target: is_frad
"""
# An unnamed first column (a saved index): plan leaves the columns unknown, pandas reads
# it as "Unnamed: 0".
CSV = ",amount,is_fraud\n" + "".join(f"{i},{i * 1.5},{i % 2}\n" for i in range(40))


def test_a_target_missing_from_the_data_fails_apply_in_one_line(tmp_path, run_mlform,
                                                                 stack_writer):
    directory = stack_writer(tmp_path / "stack", STACK)
    (directory / "data").mkdir()
    (directory / "data" / "transactions.csv").write_text(CSV)
    got = run_mlform(["apply", "--auto-approve", "--no-color"], directory, timeout=300)
    output = got.stdout + got.stderr
    assert got.returncode == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == ["error: train failed: training_job 'train': target column 'is_frad' is "
                      "not in the data (columns: Unnamed: 0, amount, is_fraud)"], output
    # nothing but the error follows it: no log tail, no source lines
    after = output[output.index(errors[0]) + len(errors[0]):].strip()
    assert after == "", output
