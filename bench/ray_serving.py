"""Throughput and latency of an endpoint served by the ray provider against a minimal
hand-written Ray Serve app for the same model, on one single-node Ray cluster.

Both are Serve applications behind the same Serve HTTP proxy, deployed through Serve's
REST API on the dashboard. The hand-written app (`Minimal`) is the least a person
would write: one deployment that parses the JSON, runs the exported torch network and
answers. The mlform endpoint is what `mlform apply` deploys: its router application
(weighted split, request log, Prometheus metrics, rollout statistics) calling the
variant's application (the artifact's `Predictor`). A load generator in its own
process keeps `--concurrency` keep-alive connections busy for `--seconds` per
scenario, single rows and batches, in interleaved rounds, and reports requests/s and
p50/p99 latency as the client sees them; the ratios are measured in the same run.

    .venv/bin/python bench/ray_serving.py [--seconds 5] [--concurrency 8] [--batch 32]

The cluster is the tests' (`tests/providers/ray/ray_testcluster.py`: 2 CPUs, 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_FEATURES = 16
STACK = "bench"


# --- the hand-written app (imported by Serve on the cluster) --------------------------

def _minimal_deployment():
    from ray import serve

    @serve.deployment(name="minimal", ray_actor_options={"num_cpus": 0})
    class Minimal:
        def __init__(self, model_dir: str):
            import torch

            torch.set_num_threads(1)
            self.torch = torch
            self.network = torch.export.load(Path(model_dir) / "model.pt2").module()
            self.classes = json.loads((Path(model_dir) / "model.json").read_text())["classes"]

        async def __call__(self, request):
            from starlette.responses import JSONResponse

            body = await request.json()
            with self.torch.no_grad():
                logits = self.network(self.torch.tensor(body["instances"],
                                                        dtype=self.torch.float32))
            return JSONResponse({"predictions": [self.classes[i]
                                                 for i in logits.argmax(1).tolist()]})

    return Minimal


def minimal_app(args: dict):
    """Serve's application builder for the hand-written app."""
    return _minimal_deployment().bind(args["model_dir"])


# --- the model ---------------------------------------------------------------------

def make_model(registry: Path) -> Path:
    """Version 1 of model 'bench' (a 16-64-64-2 MLP) in the ray provider's registry."""
    import torch
    from mlform.ml.artifact import save_model

    torch.manual_seed(1)
    module = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
        torch.nn.ReLU(), torch.nn.Linear(64, 2))
    artifact = registry / "bench" / "1" / "artifact"
    save_model(artifact, module, {"task": "classification",
                                  "features": [f"x{i}" for i in range(N_FEATURES)],
                                  "classes": [0, 1]})
    return artifact


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            if b"transfer-encoding: chunked" in head.lower():
                raise RuntimeError("the server answered chunked: this client reads "
                                   "content-length bodies only")
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                latencies.append(time.perf_counter() - start)
            else:
                failures.append(1)
    finally:
        writer.close()


async def _load(port: int, path: str, body: bytes, concurrency: int,
                seconds: float) -> tuple[list, int]:
    request = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n".encode()
               + b"content-type: application/json\r\ncontent-length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    latencies: list[float] = []
    failures: list[int] = []
    await asyncio.gather(*(_connection(port, request, time.perf_counter() + 1.0, [], [])
                           for _ in range(concurrency)))  # warm-up, not measured
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_connection(port, request, until, latencies, failures)
                           for _ in range(concurrency)))
    return latencies, len(failures)


def generate_load(port: int, path: str, body: bytes, concurrency: int, seconds: float) -> dict:
    latencies, failures = asyncio.run(_load(port, path, body, concurrency, seconds))
    ordered = sorted(latencies)
    return {"rps": len(latencies) / seconds, "requests": len(latencies), "failures": failures,
            "p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[max(0, int(0.99 * len(ordered)) - 1)]}


def instances_body(rows: int) -> bytes:
    return json.dumps({"instances": [[0.1 * (i + j) for j in range(N_FEATURES)]
                                     for i in range(rows)]}).encode()


# --- the run -----------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="client connections")
    parser.add_argument("--batch", type=int, default=32, help="rows per batched request")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of every scenario, interleaved; medians are reported")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import httpx

    sys.path.insert(0, str(HERE.parent / "tests" / "providers" / "ray"))
    # Serve imports the hand-written app from here
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE),
                                                             os.environ.get("PYTHONPATH")]))
    import ray_testcluster
    from mlform.engine.provider import (
        CreateRequest,
        DeleteRequest,
        Progress,
        ProviderContext,
        ResourceRef,
    )
    from mlform.providers.ray.provider import RayProvider

    cluster = ray_testcluster.start()
    serve_port = free_port()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            artifact = make_model(cluster.storage / STACK / "registry")
            provider = RayProvider(ProviderContext(
                STACK, Path(tmp), "gpu", {"type": "ray", "address": cluster.address,
                                          "storage": str(cluster.storage),
                                          "serve_port": serve_port}, Path(tmp) / ".mlform"))
            resource = ResourceRef("one", "endpoint")
            inputs = {"variants": {"champion": {"model": "ray://models/bench/1"}}}
            created = provider.create(CreateRequest(resource, inputs, "bench.one"), Progress())
            if created.error:
                raise SystemExit(created.error)
            mlform_path = created.outputs["url"].split(str(serve_port), 1)[1] + "/predict"
            # the hand-written app, deployed beside it (Serve takes one config for all)
            apps = httpx.get(f"{cluster.address}/api/serve/applications/").json()
            configs = [a["deployed_app_config"] for a in apps["applications"].values()]
            configs.append({"name": "minimal", "route_prefix": "/minimal",
                            "import_path": "ray_serving:minimal_app",
                            "args": {"model_dir": str(artifact)}})
            httpx.put(f"{cluster.address}/api/serve/applications/", json={
                "http_options": {"host": "127.0.0.1", "port": serve_port},
                "applications": configs}).raise_for_status()
            single, batched = instances_body(1), instances_body(args.batch)
            for path in ("/minimal", mlform_path):
                _wait_answering(serve_port, path, single)
            b = args.batch
            scenarios = [("minimal", "/minimal", single), ("mlform", mlform_path, single),
                         (f"minimal x{b}", "/minimal", batched),
                         (f"mlform x{b}", mlform_path, batched)]
            runs: dict[str, list[dict]] = {label: [] for label, _, _ in scenarios}
            spawn = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
                for _ in range(args.rounds):  # interleaved: a noisy neighbour hurts all alike
                    for label, path, body in scenarios:
                        runs[label].append(pool.submit(generate_load, serve_port, path, body,
                                                       args.concurrency, args.seconds).result())
            results = {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                       for label, rs in runs.items()}
            provider.delete(DeleteRequest(resource, inputs, created.outputs), Progress())
            provider.close()
    finally:
        cluster.stop()
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _wait_answering(port: int, path: str, body: bytes, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.post(f"http://127.0.0.1:{port}{path}", content=body, timeout=10,
                          headers={"content-type": "application/json"}).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answers at {path} on port {port}")
        time.sleep(0.5)


def report(results: dict, args) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.machine()}  {os.cpu_count()} cores  "
          f"python {platform.python_version()}  load {os.getloadavg()[0]:.1f}  concurrency "
          f"{args.concurrency}  {args.seconds:g}s per scenario, median of {args.rounds} rounds")
    print(f"{'scenario':<16}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    for label, r in results.items():
        print(f"{label:<16}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
              f"{r['failures']:>8.0f}")
    for suffix, rows in (("", "single rows"), (f" x{args.batch}", f"{args.batch} rows")):
        mine, theirs = results[f"mlform{suffix}"], results[f"minimal{suffix}"]
        print(f"mlform / minimal, {rows}: {mine['rps'] / theirs['rps']:.2f}x req/s, "
              f"p50 {mine['p50_ms'] / theirs['p50_ms']:.2f}x, "
              f"p99 {mine['p99_ms'] / theirs['p99_ms']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
