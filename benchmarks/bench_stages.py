"""Wall time of every pipeline stage: runs `dvc repro` in the current project and times each stage it runs.

    python -m benchmarks.bench_stages --name real   # after `findap profile real`: results/stages_real.json

Stages DVC skips (unchanged) get no time; run after `dvc repro --force` or on a fresh checkout for a whole table.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

from benchmarks.common import write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="result name: benchmarks/results/stages_<name>.json")
    parser.add_argument("dvc_args", nargs="*", help="extra `dvc repro` arguments, e.g. --force")
    args = parser.parse_args()
    started = time.perf_counter()
    times: dict[str, float] = {}
    stage, since = None, started
    with subprocess.Popen(["dvc", "repro", *args.dvc_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            m = re.match(r"Running stage '([^']+)'", line)
            if m or line.startswith(("Updating lock file", "Use `dvc push`")):
                now = time.perf_counter()
                if stage is not None:
                    times[stage] = round(now - since, 1)
                stage, since = (m[1] if m else None), now
    if proc.returncode:
        sys.exit(f"dvc repro failed (exit {proc.returncode}); times so far: {times}")
    total = round(time.perf_counter() - started, 1)
    print("\n| stage | wall s |\n|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds} |")
    print(f"| total | {total} |")
    write_result(f"stages_{args.name}", {"stages": times, "total_s": total})


if __name__ == "__main__":
    main()
