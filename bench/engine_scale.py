"""Engine scale: how plan and apply grow with the number of resources, on the null provider.

For each size (default 100, 1,000 and 10,000 resources) and shape (independent
resources, or chains of `--chain-length` resources in parallel groups) it
measures, each in a fresh process:

- in process, through the engine API: loading the spec, planning from empty
  state, applying the plan, and planning again once applied (refresh + no-op plan);
- end to end, as the user runs them: `mlform plan` and `mlform apply
  --auto-approve` as subprocesses;
- bytes written: state.json and apply-journal bytes, per resource;
- peak memory (max RSS) of the in-process run and of the `mlform apply` subprocess.

Baselines measured in the same run:

- the ideal for a latency-bound apply (1,000 independent resources whose
  provider call takes 50 ms, parallelism 10: ideal 5 s), and the ratio to it;
- `mlform --help` against `python -c pass`.

Targets: engine overhead at most 1 ms per resource at 10,000 resources, time per
resource flat from 1,000 to 10,000, the latency-bound apply within 10% of its
ideal, `mlform --help` under 0.3 s.

`--profile N` adds a cProfile (CPU clock, every thread) of an in-process run on N
independent resources: the functions with the most own time, and the engine
functions with the most cumulative time.

    .venv/bin/python bench/engine_scale.py [--sizes 100,1000,10000] [--chain-length 100]
        [--repeat 3] [--profile N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
MLFORM = [sys.executable, "-m", "mlform.engine.cli.main"]

TARGET_MS_PER_RESOURCE = 1.0
TARGET_HELP_S = 0.3
TARGET_LATENCY_RATIO = 1.10
LATENCY = dict(resources=1000, latency_s=0.05, parallelism=10)


# --- stacks -----------------------------------------------------------------------

def write_stack(directory: Path, size: int, shape: str, chain_length: int,
                latency: float = 0.0) -> Path:
    """A null-provider stack of `size` datasets; chained ones read the previous one's uri."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "stack: bench", "providers:",
             f"  null: {{store: false, latency: {latency}}}", "resources:"]
    for i in range(size):
        name = f"r{i}"
        lines.append(f"  {name}:")
        lines.append("    type: dataset")
        position = i % chain_length
        if shape == "chained" and position > 0:
            lines.append(f'    source: "${{r{i - 1}.uri}}"')
        else:
            lines.append(f"    source: data/{name}.csv")
    (directory / "mlform.yaml").write_text("\n".join(lines) + "\n")
    return directory


# --- the in-process worker (runs in a child so that each size has its own RSS) ---

def worker(directory: Path, parallelism: int) -> dict:
    from mlform.engine.apply.applier import Applier
    from mlform.engine.hooks import Hooks
    from mlform.engine.plan.planfile import to_document, variables_digest
    from mlform.engine.plan.planner import make_plan
    from mlform.engine.refresh import refresh
    from mlform.engine.session import Options, Session
    from mlform.engine.state.backend import JournalEntry
    from mlform.engine.state.local_backend import LocalBackend, journal_line

    class CountingBackend(LocalBackend):
        """The local backend, counting the journal appends, their bytes and their time."""

        journal_bytes = journal_appends = 0
        journal_s = 0.0

        def journal_append(self, entry: JournalEntry) -> None:
            t0 = time.perf_counter()
            super().journal_append(entry)
            self.journal_s += time.perf_counter() - t0
            self.journal_appends += 1
            self.journal_bytes += len(journal_line(entry))

    out: dict = {}
    session = Session(Options(stack_dir=directory, parallelism=parallelism), "apply")
    t0 = time.perf_counter()
    stack, variables = session.stack, session.variables
    out["load_s"] = time.perf_counter() - t0

    backend = CountingBackend(directory)
    session.__dict__["backend"] = backend
    with session.locked():
        t0 = time.perf_counter()
        state = session.read_state()
        plan = make_plan(stack, state, variables, session.providers)
        to_document(plan, state.salt, variables_digest(variables, state.salt))
        out["plan_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        result = Applier(stack, state, variables, session.providers, backend, Hooks(),
                         parallelism).apply(plan)
        out["apply_s"] = time.perf_counter() - t0
        if not result.ok:
            raise SystemExit(f"apply failed: {result.failed or result.skipped}")

        # The steady state: everything applied, a plan refreshes and finds nothing to do.
        t0 = time.perf_counter()
        state = session.read_state()
        refreshed = refresh(state, session.providers, parallelism).state
        again = make_plan(stack, refreshed, variables, session.providers)
        out["replan_s"] = time.perf_counter() - t0
        if again.has_changes():
            raise SystemExit("the plan after apply is not empty")
    session.close()
    out["state_bytes"] = backend.state_path.stat().st_size
    out["journal_bytes"] = backend.journal_bytes
    out["journal_appends"] = backend.journal_appends
    out["journal_s"] = backend.journal_s
    out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def latency_worker(directory: Path, parallelism: int) -> dict:
    """Only the apply walk of a latency-bound stack (its plan is timed elsewhere)."""
    from mlform.engine.apply.applier import Applier
    from mlform.engine.hooks import Hooks
    from mlform.engine.plan.planner import make_plan
    from mlform.engine.session import Options, Session

    session = Session(Options(stack_dir=directory, parallelism=parallelism), "apply")
    with session.locked():
        state = session.read_state()
        plan = make_plan(session.stack, state, session.variables, session.providers)
        t0 = time.perf_counter()
        result = Applier(session.stack, state, session.variables, session.providers,
                         session.backend, Hooks(), parallelism).apply(plan)
        seconds = time.perf_counter() - t0
    session.close()
    if not result.ok:
        raise SystemExit(f"apply failed: {result.failed}")
    return {"apply_s": seconds}


def run_worker(kind: str, directory: Path, parallelism: int) -> dict:
    proc = subprocess.run([sys.executable, str(HERE), "--worker", kind, str(directory),
                           str(parallelism)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {kind} on {directory} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


# --- subprocesses -----------------------------------------------------------------

def timed_command(argv: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """(wall seconds, max RSS in KiB) of one command, its output discarded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFORM_") and k != "CI"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{stderr}")
    return seconds, usage.ru_maxrss


def startup(repeats: int = 15) -> dict:
    """Median wall time of `mlform --help` and of `python -c pass`."""
    mlform_bin = Path(sys.executable).with_name("mlform")
    help_cmd = [str(mlform_bin), "--help"] if mlform_bin.exists() else MLFORM + ["--help"]
    bare = [sys.executable, "-c", "pass"]
    help_times, bare_times = [], []
    for _ in range(repeats):  # interleaved, so both see the same load
        help_times.append(timed_command(help_cmd)[0])
        bare_times.append(timed_command(bare)[0])
    return {"help_s": statistics.median(help_times), "python_s": statistics.median(bare_times)}


# --- the run ----------------------------------------------------------------------

def measure(size: int, shape: str, chain_length: int, parallelism: int, root: Path,
            repeat: int) -> dict:
    """One size and shape; the in-process run is repeated and the median apply kept, since
    the disk's fsync time varies with what others on the machine do."""
    base = root / f"{shape}-{size}"
    runs = [run_worker("scale", write_stack(base / f"inproc{i}", size, shape, chain_length),
                       parallelism) for i in range(repeat)]
    inproc = sorted(runs, key=lambda r: r["apply_s"])[len(runs) // 2]
    e2e_dir = write_stack(base / "e2e", size, shape, chain_length)
    flags = ["--no-color", "--parallelism", str(parallelism)]
    plan_s, _ = timed_command(MLFORM + ["plan", *flags], cwd=e2e_dir)
    apply_s, apply_rss = timed_command(MLFORM + ["apply", "--auto-approve", *flags], cwd=e2e_dir)
    return {"size": size, "shape": shape, **inproc, "e2e_plan_s": plan_s,
            "e2e_apply_s": apply_s, "e2e_apply_maxrss_kb": apply_rss}


def latency_bound(root: Path) -> dict:
    n, latency, par = LATENCY["resources"], LATENCY["latency_s"], LATENCY["parallelism"]
    directory = write_stack(root / "latency", n, "independent", n, latency=latency)
    got = run_worker("latency", directory, par)["apply_s"]
    ideal = n * latency / par
    return {"apply_s": got, "ideal_s": ideal, "ratio": got / ideal}


def profiled_worker(directory: Path, parallelism: int) -> dict:
    """`worker` under cProfile, every thread included (the apply runs in a thread pool).

    The clock is each thread's CPU time: wall time would charge the threads' waits for
    the applier's lock to whoever waits, hiding where the work is done.
    """
    import cProfile
    import threading

    profiles = [cProfile.Profile(time.thread_time)]

    def profile_this_thread(*_):
        # The first event in a new thread: hand over to a profiler of its own.
        sys.setprofile(None)
        thread_profile = cProfile.Profile(time.thread_time)
        profiles.append(thread_profile)
        thread_profile.enable()

    threading.setprofile(profile_this_thread)
    profiles[0].enable()
    try:
        worker(directory, parallelism)
    finally:
        profiles[0].disable()
        threading.setprofile(None)
    stats_path = directory.parent / "profile.pstats"
    import pstats

    stats = pstats.Stats(profiles[0])
    for p in profiles[1:]:
        stats.add(p)
    stats.dump_stats(stats_path)
    return {"stats": str(stats_path)}


def profile(size: int, parallelism: int, root: Path,
            top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """CPU hot spots of an in-process run on `size` independent resources: the functions
    with the most own time, and the engine functions with the most cumulative time, each
    as (file:function, share of all CPU time)."""
    import pstats

    directory = write_stack(root / f"profile-{size}" / "stack", size, "independent", size)
    stats = pstats.Stats(run_worker("profile", directory, parallelism)["stats"])
    total = sum(v[2] for v in stats.stats.values())
    own = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    engine = sorted(((f, v) for f, v in stats.stats.items()
                     if f"{os.sep}engine{os.sep}" in f[0] or f"{os.sep}providers{os.sep}" in f[0]),
                    key=lambda kv: kv[1][3], reverse=True)[:top]
    return {"own": [(_where(f), v[2] / total) for f, v in own],
            "cumulative": [(_where(f), v[3] / total) for f, v in engine]}


def _where(func: tuple) -> str:
    file, line, name = func
    if file == "~":
        return name
    path = Path(file)
    parts = path.parts
    for anchor in ("engine", "providers", "site-packages", "python3.11"):
        if anchor in parts:
            path = Path(*parts[parts.index(anchor):])
            break
    return f"{path}:{name}"


# --- report -----------------------------------------------------------------------

def report(rows: list[dict], latency: dict, start: dict, chain_length: int,
           hot: dict[str, list[tuple[str, float]]] | None, load: tuple[float, float]) -> str:
    out = []
    shape = ("one chain per stack" if all(r["size"] <= chain_length for r in rows)
             else f"chains of {chain_length} resources side by side")
    out.append(f"Load average before/after: {load[0]:.2f} / {load[1]:.2f} "
               f"on {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; chained: {shape}.\n")
    out.append("| resources | shape | load spec | plan | apply | ms/resource (apply) | "
               "journal time summed over workers / apply | re-plan | `mlform plan` | `mlform apply` | state B/res | "
               "journal B/res | max RSS in-proc | max RSS `apply` |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        n = r["size"]
        out.append(
            f"| {n:,} | {r['shape']} | {r['load_s']:.2f} s | {r['plan_s']:.2f} s | "
            f"{r['apply_s']:.2f} s | {1000 * r['apply_s'] / n:.2f} | "
            f"{r['journal_s'] / r['apply_s']:.0%} | {r['replan_s']:.2f} s | "
            f"{r['e2e_plan_s']:.2f} s | {r['e2e_apply_s']:.2f} s | "
            f"{r['state_bytes'] / n:.0f} | {r['journal_bytes'] / n:.0f} | "
            f"{r['maxrss_kb'] / 1024:.0f} MiB | {r['e2e_apply_maxrss_kb'] / 1024:.0f} MiB |")
    out.append("")
    out.append("| baseline | measured | ideal / reference | ratio | target |")
    out.append("|---|---:|---:|---:|---|")
    out.append(f"| latency-bound apply: {LATENCY['resources']:,} independent, "
               f"{LATENCY['latency_s'] * 1000:.0f} ms each, parallelism "
               f"{LATENCY['parallelism']} | {latency['apply_s']:.2f} s | "
               f"{latency['ideal_s']:.2f} s | {latency['ratio']:.2f} | "
               f"≤ {TARGET_LATENCY_RATIO:.2f} {_mark(latency['ratio'] <= TARGET_LATENCY_RATIO)} |")
    for r in rows:
        if r["size"] == max(x["size"] for x in rows):
            ms = 1000 * r["apply_s"] / r["size"]
            out.append(f"| engine overhead, apply of {r['size']:,} {r['shape']} | "
                       f"{ms:.2f} ms/res | {TARGET_MS_PER_RESOURCE:.2f} ms/res | "
                       f"{ms / TARGET_MS_PER_RESOURCE:.2f} | "
                       f"≤ 1.00 {_mark(ms <= TARGET_MS_PER_RESOURCE)} |")
    for shape in ("independent", "chained"):
        by = {r["size"]: r for r in rows if r["shape"] == shape}
        if 1000 in by and 10000 in by:
            growth = (by[10000]["apply_s"] / 10000) / (by[1000]["apply_s"] / 1000)
            out.append(f"| ms/resource at 10,000 vs 1,000, {shape} | "
                       f"{1000 * by[10000]['apply_s'] / 10000:.2f} | "
                       f"{1000 * by[1000]['apply_s'] / 1000:.2f} | {growth:.2f} | "
                       f"≈ 1 (flat) {_mark(growth <= 1.25)} |")
    out.append(f"| `mlform --help` vs `python -c pass` (median of 15) | "
               f"{start['help_s']:.3f} s | {start['python_s']:.3f} s | "
               f"{start['help_s'] / start['python_s']:.2f} | "
               f"< {TARGET_HELP_S} s {_mark(start['help_s'] < TARGET_HELP_S)} |")
    if hot:
        out.append("")
        out.append("Where the CPU time goes (cProfile of every thread, CPU clock, in-process "
                   "load + plan + apply + re-plan):\n")
        out.append("| own time: file:function | share | cumulative: engine file:function "
                   "| share |")
        out.append("|---|---:|---|---:|")
        for (own, own_share), (cum, cum_share) in zip(hot["own"], hot["cumulative"],
                                                      strict=False):
            out.append(f"| `{own}` | {own_share:.1%} | `{cum}` | {cum_share:.1%} |")
    return "\n".join(out) + "\n"


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000",
                        help="comma-separated resource counts (default 100,1000,10000)")
    parser.add_argument("--shapes", default="independent,chained")
    parser.add_argument("--chain-length", type=int, default=100,
                        help="resources per chain in the chained shape (default 100)")
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3,
                        help="in-process runs per size and shape; the median is reported")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile an in-process plan + apply of N resources")
    parser.add_argument("--json", dest="json_out", type=Path,
                        help="also write the raw figures to this file")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, directory, par = args.worker
        fn = {"scale": worker, "latency": latency_worker, "profile": profiled_worker}[kind]
        print(json.dumps(fn(Path(directory), int(par))))
        return

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    shapes = [s for s in args.shapes.split(",") if s]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mlform-bench-") as tmp:
        root = Path(tmp)
        start = startup()
        rows = []
        for size in sizes:
            for shape in shapes:
                rows.append(measure(size, shape, args.chain_length, args.parallelism, root,
                                    args.repeat))
                print(f"measured {size} {shape}", file=sys.stderr, flush=True)
        latency = latency_bound(root)
        hot = profile(args.profile, args.parallelism, root) if args.profile else None
    load_after = os.getloadavg()[0]
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": rows, "latency": latency,
                                             "startup": start, "hot": hot}, indent=2))
    print(report(rows, latency, start, args.chain_length, hot, (load_before, load_after)))


if __name__ == "__main__":
    main()
