"""Throughput and latency of an mlform endpoint against a minimal hand-written server.

All serve the same exported torch model under the same uvicorn settings
(`UVICORN_SETTINGS`), one process each on 127.0.0.1. The baselines are the least a
person would write: parse the JSON, predict, answer (see `baseline_app` for its
three variants). A load generator in its own process keeps `--concurrency`
keep-alive connections busy for `--seconds` per scenario and reports requests/s
and p50/p99 latency as seen by the client, and the server process's CPU time per
request (which a busy machine disturbs less than wall-clock rates). Scenarios:
single-row and batched requests on each server, an mlform endpoint with its
request log off, and one routing 90/10 between two variants.

    .venv/bin/python bench/serving.py [--seconds 5] [--concurrency 8] [--batch 32]

Targets: mlform at least 0.9x the `torch` baseline's requests/s; the 90/10 split
costing under 5% against one variant.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_FEATURES = 16


# --- the model ---------------------------------------------------------------------

def make_registry(root: Path) -> None:
    """Versions 1 and 2 of model 'bench' (a 16-64-64-2 MLP) in a local registry."""
    import torch
    from mlform.ml.artifact import save_model
    from mlform.providers.local.paths import LocalPaths

    features = [f"x{i}" for i in range(N_FEATURES)]
    for version in (1, 2):
        torch.manual_seed(version)
        module = torch.nn.Sequential(
            torch.nn.Linear(N_FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
            torch.nn.ReLU(), torch.nn.Linear(64, 2))
        save_model(LocalPaths(root).model_version("bench", version) / "artifact", module,
                   {"task": "classification", "features": features, "classes": [0, 1]})


# --- the baseline server -------------------------------------------------------------

def baseline_app(model_dir: Path, kind: str):
    """The hand-written server, three ways:

    - `torch` loads the network as anyone would (`torch.export.load(...).module()`)
      and runs it on the parsed rows as they are;
    - `torch-unchecked` is the same with the exported module's per-call input
      check switched off, as mlform's `Predictor` loads it;
    - `predictor` goes through the artifact's `Predictor` (its preprocessing and
      label mapping), which is what mlform serves with.

    So `torch` is the baseline a user would write, and the other two separate the
    cost of mlform's serving layer from the cost of the model function it serves.
    """
    import torch
    from mlform.ml.artifact import MODEL_FILE, load_predictor
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    torch.set_num_threads(1)
    predictor = load_predictor(model_dir)
    classes = predictor.classes
    network = torch.export.load(model_dir / MODEL_FILE).module()
    if kind == "torch-unchecked":
        network.validate_inputs = False

    async def predict_torch(request: Request) -> JSONResponse:
        body = await request.json()
        with torch.no_grad():
            logits = network(torch.tensor(body["instances"], dtype=torch.float32))
        return JSONResponse({"predictions": [classes[i] for i in logits.argmax(1).tolist()]})

    async def predict_predictor(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"predictions": predictor.predict(body["instances"])})

    endpoint = predict_predictor if kind == "predictor" else predict_torch
    return Starlette(routes=[Route("/predict", endpoint, methods=["POST"])])


def serve_baseline(model_dir: str, port: int, kind: str) -> None:
    import uvicorn
    from mlform.providers.local.serving.server import UVICORN_SETTINGS

    uvicorn.Server(uvicorn.Config(baseline_app(Path(model_dir), kind), port=port,
                                  host="127.0.0.1", **UVICORN_SETTINGS)).run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_answering(port: int, body: bytes, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.post(f"http://127.0.0.1:{port}/predict", content=body,
                          headers={"content-type": "application/json"}).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answers on port {port}")
        time.sleep(0.2)


# --- the load generator (runs in its own process) ------------------------------------

async def _connection(port: int, request: bytes, until: float, latencies: list[float],
                      failures: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                failures.append(1)
    finally:
        writer.close()


async def _load(port: int, body: bytes, concurrency: int, seconds: float) -> tuple[list, int]:
    request = (b"POST /predict HTTP/1.1\r\nhost: 127.0.0.1\r\n"
               b"content-type: application/json\r\ncontent-length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    latencies: list[float] = []
    failures: list[int] = []
    # a short warm-up, not measured
    await asyncio.gather(*(_connection(port, request, time.perf_counter() + 0.5, [], [])
                           for _ in range(concurrency)))
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_connection(port, request, until, latencies, failures)
                           for _ in range(concurrency)))
    return latencies, len(failures)


def generate_load(port: int, body: bytes, concurrency: int, seconds: float) -> dict:
    latencies, failures = asyncio.run(_load(port, body, concurrency, seconds))
    ordered = sorted(latencies)
    return {"rps": len(latencies) / seconds, "requests": len(latencies), "failures": failures,
            "p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[max(0, int(0.99 * len(ordered)) - 1)]}


# --- the run -----------------------------------------------------------------------

def _cpu(proc) -> float:
    """CPU seconds the server process used so far: its cost, whatever else runs."""
    times = proc.cpu_times()
    return times.user + times.system


def _median(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def instances_body(rows: int) -> bytes:
    return json.dumps({"instances": [[0.1 * (i + j) for j in range(N_FEATURES)]
                                     for i in range(rows)]}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="client connections")
    parser.add_argument("--batch", type=int, default=32, help="rows per batched request")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of every scenario, interleaved; medians are reported")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import psutil
    from mlform.engine.provider import (
        CreateRequest,
        DeleteRequest,
        Progress,
        ProviderContext,
        ResourceRef,
    )
    from mlform.providers.local.paths import LocalPaths, model_uri
    from mlform.providers.local.serving import process
    from mlform.providers.local.serving.handler import EndpointHandler

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "local"
        make_registry(root)
        handler = EndpointHandler(ProviderContext("bench", Path(tmp), "local", {}, root))
        endpoints = {
            "one": {"variants": {"champion": {"model": model_uri("bench", 1)}}},
            "nolog": {"variants": {"champion": {"model": model_uri("bench", 1)}},
                      "logging": {"sample_rate": 0.0}},
            "split": {"variants": {
                "champion": {"model": model_uri("bench", 1), "weight": 90},
                "challenger": {"model": model_uri("bench", 2), "weight": 10}}},
        }
        ports = {}
        for name, inputs in endpoints.items():
            created = handler.create(CreateRequest(ResourceRef(name, "endpoint"),
                                                   inputs, name), Progress())
            if created.error:
                raise SystemExit(created.error)
            ports[name] = created.outputs["port"]
        model_dir = LocalPaths(root).model_version("bench", 1) / "artifact"
        baselines = {}
        for kind in ("torch", "torch-unchecked", "predictor"):
            ports[kind] = free_port()
            baselines[kind] = subprocess.Popen([sys.executable, __file__, "--serve-baseline",
                                                str(model_dir), str(ports[kind]), kind])
        single, batched = instances_body(1), instances_body(args.batch)
        b = args.batch
        scenarios = [
            ("torch", "torch", single), ("torch-unchecked", "torch-unchecked", single),
            ("predictor", "predictor", single), ("mlform", "one", single),
            (f"torch x{b}", "torch", batched),
            (f"torch-unchecked x{b}", "torch-unchecked", batched),
            (f"predictor x{b}", "predictor", batched), (f"mlform x{b}", "one", batched),
            ("mlform 90/10", "split", single),
            ("mlform, no log", "nolog", single),
            (f"mlform x{b}, no log", "nolog", batched),
        ]
        try:
            for port in ports.values():
                wait_answering(port, single)
            servers = {kind: psutil.Process(p.pid) for kind, p in baselines.items()} | {
                name: psutil.Process(process.read_record(handler.paths.endpoint(name)).pid)
                for name in endpoints}
            spawn = multiprocessing.get_context("spawn")
            runs: dict[str, list[dict]] = {label: [] for label, _, _ in scenarios}
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
                # rounds interleave the scenarios, so a noisy neighbour hurts them alike
                for _ in range(args.rounds):
                    for label, server, body in scenarios:
                        cpu = _cpu(servers[server])
                        result = pool.submit(generate_load, ports[server], body,
                                             args.concurrency, args.seconds).result()
                        result["cpu_us"] = 1e6 * (_cpu(servers[server]) - cpu) / \
                            max(1, result["requests"])
                        runs[label].append(result)
            results = {label: _median(rs) for label, rs in runs.items()}
        finally:
            for server in baselines.values():
                server.terminate()
                server.wait()
            for name in endpoints:
                handler.delete(DeleteRequest(ResourceRef(name, "endpoint"), {}, {}), Progress())

    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def report(results: dict, args) -> None:
    import os

    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.machine()}  {os.cpu_count()} cores  "
          f"python {platform.python_version()}  concurrency {args.concurrency}  "
          f"{args.seconds:g}s per scenario, median of {args.rounds} rounds")
    print(f"{'scenario':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'server CPU us/req':>19}"
          f"{'failed':>8}")
    for label, r in results.items():
        print(f"{label:<22}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
              f"{r['cpu_us']:>19.0f}{r['failures']:>8.0f}")
    b = args.batch
    for rows, suffix in (("single rows", ""), (f"{b} rows", f" x{b}")):
        mlform = results[f"mlform{suffix}"]["rps"]
        ratios = "; ".join(f"/ {kind}: {mlform / results[kind + suffix]['rps']:.2f}x"
                           for kind in ("torch", "torch-unchecked", "predictor"))
        print(f"mlform, {rows}: {ratios} (target >= 0.90x)")
    cost = 1 - results["mlform 90/10"]["rps"] / results["mlform"]["rps"]
    print(f"90/10 routing costs {100 * cost:.1f}% of one variant's req/s (target < 5%)")

if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-baseline"]:
        serve_baseline(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
