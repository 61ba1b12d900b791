"""Walkthrough: a feature view feeds training and serving, and a new feature re-materialises
the stores and retrains.

    python examples/feature-store/run.py

1. apply: store the events and labels, materialise the feature view, train on the
   point-in-time join of features and labels, register, serve;
2. score customers by id: their latest features come from the online store, the
   endpoint predicts from them;
3. add a derived feature to the view: the plan names it and the new version the
   stores are re-materialised as; apply retrains and rolls the new model out;
4. score the same customers again, now with the new feature.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
MLFORM = [sys.executable, "-m", "mlform.engine.cli.main"]
WORK = HERE / "work"
"""The walkthrough edits its spec, so it runs on a copy: the example stays as checked in."""
SPEC = WORK / "mlform.yaml"
NEW_FEATURE = ("      - name: spend_per_visit\n"
               "        expr: spend / (visits + 1)\n")
CUSTOMERS = [3, 17, 42]


def mlform(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    print(f"\n$ mlform {' '.join(args)}", flush=True)
    proc = subprocess.run([*MLFORM, *args, "--no-color"], cwd=WORK)
    if check and proc.returncode != 0:
        sys.exit(f"mlform {args[0]} failed with exit code {proc.returncode}")
    return proc


def output(name: str) -> str:
    return subprocess.run([*MLFORM, "output", name, "--raw"], cwd=WORK, capture_output=True,
                          text=True, check=True).stdout.strip()


def write_data(directory: Path, customers: int = 300, seed: int = 3) -> None:
    """Events over the last 30 days; customers who engage less are likelier to churn."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    now = pd.Timestamp.now(tz="UTC").floor("h")
    engagement = rng.uniform(0, 1, customers)
    rows = customers * 12
    who = rng.integers(0, customers, rows)
    events = pd.DataFrame({
        "customer_id": who,
        "event_time": now - pd.to_timedelta(rng.integers(0, 30 * 24, rows), unit="h"),
        "spend": (rng.gamma(2.0, 20.0, rows) * (0.3 + engagement[who])).round(2),
        "visits": rng.poisson(1 + 8 * engagement[who]),
    }).sort_values("event_time")
    labelled = rng.integers(0, customers, customers * 3)
    labels = pd.DataFrame({
        "customer_id": labelled,
        "event_time": now - pd.to_timedelta(rng.integers(0, 20 * 24, len(labelled)),
                                            unit="h"),
        "churned": (rng.uniform(0, 1, len(labelled)) > engagement[labelled]).astype(int),
    })
    directory.mkdir(exist_ok=True)
    events.to_csv(directory / "events.csv", index=False)
    labels.to_csv(directory / "labels.csv", index=False)


def score(customers: list[int]) -> None:
    """Look the customers' features up online, and ask the endpoint for predictions."""
    from mlform.providers.local.features.online import online_features

    rows = online_features(output("online_store"), customers)
    for row in rows:
        print(f"  online features of customer {row['customer_id']}: "
              + ", ".join(f"{k}={v}" for k, v in row.items() if k != "customer_id"))
    url = output("url")
    body = json.dumps({"entities": customers}).encode()  # the endpoint looks them up itself
    request = urllib.request.Request(f"{url}/predict", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    print(f"  POST {url}/predict {{\"entities\": {customers}}} -> churned: "
          f"{answer['predictions']}")


def keep_scoring(url: str, customers: list[int], stop: threading.Event) -> None:
    """Live traffic, a request every 50 ms, until `stop` is set."""
    body = json.dumps({"entities": customers}).encode()
    while not stop.is_set():
        request = urllib.request.Request(f"{url}/predict", data=body,
                                         headers={"Content-Type": "application/json"})
        with contextlib.suppress(OSError):  # what the endpoint refuses, its steps count
            urllib.request.urlopen(request, timeout=30).read()
        stop.wait(0.05)


def main() -> None:
    WORK.mkdir(exist_ok=True)
    shutil.copyfile(HERE / "mlform.yaml", SPEC)  # each run starts from the example as written
    if not (WORK / "data" / "events.csv").exists():
        write_data(WORK / "data")
    print("1. Apply: events -> feature view -> point-in-time training set -> model -> endpoint")
    mlform("apply", "--auto-approve")
    print("\n2. Score customers by id, with features from the online store")
    score(CUSTOMERS)

    spec = SPEC.read_text()
    SPEC.write_text(spec.replace("      - visits\n", "      - visits\n" + NEW_FEATURE, 1))
    print(f"\n3. Added the derived feature 'spend_per_visit' to {SPEC}")
    mlform("plan")
    # The endpoint moves to the retrained model only on evidence: the new model must
    # answer rollback.min_requests requests first, so clients keep calling meanwhile.
    stop = threading.Event()
    clients = threading.Thread(target=keep_scoring, args=(output("url"), CUSTOMERS, stop))
    clients.start()
    try:
        mlform("apply", "--auto-approve")
    finally:
        stop.set()
        clients.join()
    print("\n4. Score the same customers with the new feature")
    score(CUSTOMERS)
    print(f"\nThe endpoint keeps serving at {output('url')}.\n"
          f"Stop it with: mlform destroy {WORK} --auto-approve")


if __name__ == "__main__":
    main()
