"""Cold start to first answer and peak memory, one fresh process per measurement.

    python benchmarks/cold_start.py --source /tmp/bbc-bench2 [--sizes 10000 100000]
        [--runs 3] [--work-dir DIR]

For each index size (built once by `_common.prepare_index`, cached under --work-dir) and each
run, three child processes, interleaved so they share the machine's load:

- `coverbot ask --json QUESTION` (`python -m bot.cli`): time from spawning the process to
  its answer on stdout, to its exit, and its peak RSS (`ru_maxrss` from `os.wait4`);
- the baseline: a process that imports sentence-transformers, loads the bundled model and
  encodes the question, nothing else (the least any answer costs);
- a breakdown: the same `ask` through `CoverageIndex` with each step timed in the child
  (imports; loading the index's encoder, ONNX Runtime by default, and one encode; BM25
  load; the first ask: Chroma open, HNSW load, the pipeline; a second ask).

Prints medians over the runs and the ratio to the baseline. The OS page cache is warm (the
index files were read by earlier runs): this is a restart, not a first boot.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from _common import ROOT, add_index_options, prepare_index, size_label, table

QUESTION = "How long do people phoning customer service lines listen to hold music?"

BASELINE = """
import sys, time
from sentence_transformers import SentenceTransformer
from index.embeddings import bundled_model_path
model = SentenceTransformer(str(bundled_model_path()), device="cpu", local_files_only=True)
model.encode([sys.argv[1]], normalize_embeddings=True)
print("encoded", flush=True)
"""

STEPS = ("imports", "encoder load + 1 encode", "BM25 load", "first ask", "second ask")
BREAKDOWN = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from index.coverage import CoverageIndex
steps = {"imports": time.perf_counter() - t0}
t = time.perf_counter()
index = CoverageIndex(Path(sys.argv[2]))
index.embedder.encode([sys.argv[1]])
steps["encoder load + 1 encode"] = time.perf_counter() - t
t = time.perf_counter()
index.lexical
steps["BM25 load"] = time.perf_counter() - t
t = time.perf_counter()
answer = index.ask(sys.argv[1])
steps["first ask"] = time.perf_counter() - t
t = time.perf_counter()
index.ask(sys.argv[1] + "?")
steps["second ask"] = time.perf_counter() - t
steps["encoder"] = index.embedder.encoder
print(json.dumps(steps), flush=True)
"""


@dataclass(frozen=True, slots=True)
class ChildRun:
    """One child process: seconds to its first output line and to its exit, peak RSS."""

    first_line: str
    to_output: float
    to_exit: float
    peak_mib: float


def run_child(args: list[str]) -> ChildRun:
    """Spawn, time the first line of stdout and the exit, read the peak RSS."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline().decode()
    to_output = time.perf_counter() - t0
    proc.stdout.read()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    to_exit = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"{args[:3]} failed ({proc.returncode}):\n{err[-2000:]}")
    return ChildRun(line, to_output, to_exit, usage.ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_index_options(parser)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes of each kind")
    args = parser.parse_args()
    print(f"{args.runs} runs of each; load average at start {os.getloadavg()[0]:.2f}")
    rows: list[list[object]] = []
    steps_rows: list[list[object]] = []
    for size in args.sizes:
        bench = prepare_index(size, args.work_dir, args.source, args.corpus)
        data_dir = str(bench.data_dir)
        runs: dict[str, list[ChildRun]] = {"baseline": [], "ask": []}
        steps: list[dict[str, float]] = []
        for _ in range(args.runs):
            runs["baseline"].append(run_child(["-c", BASELINE, QUESTION]))
            cli = ["-m", "bot.cli", "--data-dir", data_dir, "ask", "--json", QUESTION]
            runs["ask"].append(run_child(cli))
            steps.append(json.loads(run_child(["-c", BREAKDOWN, QUESTION, data_dir]).first_line))
        base = statistics.median(r.to_output for r in runs["baseline"])
        labels = (("baseline", "sentence-transformers load + 1 encode"), ("ask", "coverbot ask"))
        for name, label in labels:
            out = statistics.median(r.to_output for r in runs[name])
            rows.append(
                [
                    size_label(size),
                    label,
                    f"{out:.2f}",
                    f"{statistics.median(r.to_exit for r in runs[name]):.2f}",
                    f"{out / base:.2f}x",
                    f"{max(r.peak_mib for r in runs[name]):.0f}",
                ]
            )
        steps_rows.append(
            [size_label(size), *(f"{statistics.median(s[k] for s in steps):.2f}" for k in STEPS)]
        )
        print(f"{size_label(size)}: {bench.describe()}", flush=True)
        print(f"coverbot's encoder: {steps[0]['encoder']}")
    print()
    print(
        table(
            [
                "passages",
                "process",
                "to answer s",
                "to exit s",
                "answer / baseline",
                "peak RSS MiB",
            ],
            rows,
        )
    )
    print("\nInside the process, seconds (median):")
    print(table(["passages", *STEPS], steps_rows))


if __name__ == "__main__":
    main()
