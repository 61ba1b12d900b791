"""Walkthrough: shifted traffic is detected as drift, and a retrain rolls out as a canary.

    python examples/drift-retrain/run.py

Each step prints the command it runs and what that command shows.
"""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
MLFORM = [sys.executable, "-m", "mlform.engine.cli.main"]


def mlform(*args: str) -> int:
    print(f"\n$ mlform {' '.join(args)}", flush=True)
    return subprocess.run([*MLFORM, *args], cwd=HERE).returncode


def rows(path: Path) -> list[list[float]]:
    with path.open() as f:
        reader = csv.reader(f)
        next(reader)
        return [[float(x) for x in r[:-1]] for r in reader]


def send(url: str, instances: list[list[float]], batch: int = 20) -> None:
    for i in range(0, len(instances), batch):
        body = json.dumps({"instances": instances[i:i + batch]}).encode()
        req = urllib.request.Request(f"{url}/predict", data=body,
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()
    time.sleep(1.5)  # the endpoint writes its request log in the background


def keep_sending(url: str, instances: list[list[float]], stop: threading.Event) -> None:
    """Live traffic, a batch every 50 ms, until `stop` is set."""
    i = 0
    while not stop.is_set():
        body = json.dumps({"instances": instances[i % len(instances):][:20]}).encode()
        req = urllib.request.Request(f"{url}/predict", data=body,
                                     headers={"Content-Type": "application/json"})
        # a request refused mid-rollout shows in the step's errors, not here
        with contextlib.suppress(OSError):
            urllib.request.urlopen(req, timeout=30).read()
        i += 20
        stop.wait(0.05)


def main() -> None:
    from mlform.engine.scaffold import write_sample_data

    data = HERE / "data" / "transactions.csv"
    write_sample_data(data, rows=3000, seed=7)
    print("1. Apply the stack: train, gate, serve, monitor.")
    if mlform("apply", "--auto-approve", "--no-color"):
        sys.exit("apply failed")
    url = subprocess.run([*MLFORM, "output", "url", "--raw"], cwd=HERE, capture_output=True,
                         text=True, check=True).stdout.strip()

    print("\n2. Traffic like the training data: the monitor sees no drift.")
    same = HERE / "data" / "traffic-normal.csv"
    write_sample_data(same, rows=300, seed=99)
    send(url, rows(same))
    mlform("watch", "--once")

    print("\n3. The world shifts: larger amounts at other hours. New labelled data arrives "
          "with it.")
    shifted = HERE / "data" / "traffic-shifted.csv"
    write_sample_data(shifted, rows=300, seed=100, shift=1.5)
    send(url, rows(shifted))
    fresh = HERE / "data" / "fresh.csv"
    write_sample_data(fresh, rows=1500, seed=101, shift=1.5)
    with data.open("a") as f, fresh.open() as g:
        next(g)
        f.write(g.read())

    print("\n4. The monitor reports drift; the policy retrains on the newest data; the gates "
          "pass; the endpoint rolls the new version out as a canary, judged on the live "
          "traffic it answers (each step waits for rollback.min_requests requests).")
    live = threading.Event()
    sender = threading.Thread(target=keep_sending, args=(url, rows(shifted), live))
    sender.start()
    try:
        mlform("watch", "--once")
    finally:
        live.set()
        sender.join()
    mlform("show", "fraud_model")
    mlform("audit", "log", "--last", "4")
    print(f"\nThe drift report is at {HERE / '.mlform/local/monitors/traffic_monitor/report.html'}")
    print("Clean up with: mlform destroy examples/drift-retrain --auto-approve")


if __name__ == "__main__":
    main()
