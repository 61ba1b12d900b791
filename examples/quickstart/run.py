"""The quick start: create the data, apply the stack, query the endpoint, plan again.

Run from anywhere: `python examples/quickstart/run.py` (the Makefile's `quickstart`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
MLFORM = [sys.executable, "-m", "mlform.engine.cli.main"]


def mlform(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    print(f"\n$ mlform {' '.join(args)}", flush=True)
    proc = subprocess.run([*MLFORM, *args, "--no-color"], cwd=HERE)
    if check and proc.returncode not in (0,):
        sys.exit(f"mlform {args[0]} failed with exit code {proc.returncode}")
    return proc


def main() -> None:
    from mlform.engine.scaffold import write_sample_data

    data = HERE / "data" / "transactions.csv"
    if not data.exists():
        write_sample_data(data, rows=3000)
        print(f"wrote sample data to {data.relative_to(Path.cwd()) if data.is_relative_to(Path.cwd()) else data}")
    mlform("apply", "--auto-approve")
    url = subprocess.run([*MLFORM, "output", "url", "--raw"], cwd=HERE, capture_output=True,
                         text=True, check=True).stdout.strip()
    body = {"instances": [[250.0, 2, 0.95, 30, 12], [12.5, 14, 0.05, 2400, 0]]}
    print(f"\n$ curl -X POST {url}/predict -d '{json.dumps(body)}'")
    req = urllib.request.Request(f"{url}/predict", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        print(json.dumps(json.loads(resp.read()), indent=2))
    second = mlform("plan", "--detailed-exitcode", check=False)
    if second.returncode != 0:
        sys.exit("the second plan should be empty")
    print(f"\nThe endpoint keeps serving at {url} (GET /health, GET /metrics).")
    print(f"Stop it with: .venv/bin/mlform destroy {HERE.relative_to(Path.cwd()) if HERE.is_relative_to(Path.cwd()) else HERE} --auto-approve")


if __name__ == "__main__":
    main()
