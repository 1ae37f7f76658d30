#!/usr/bin/env python3
"""Gathers what the failover tests measured into Benchmarks/results/failover.json and prints the
README's "Production topologies" table.

The tests (`make test-topologies`: each starts the cluster it needs)
each write one JSON file to .build/failover-results/ (or COURIER_FAILOVER_RESULTS): the broker, the
clustered form and the kill, the time from the kill to the first publish acknowledged after it and
to the first message handled after it, the acknowledged messages lost, the duplicates, and how many
messages the run sent.

    scripts/failover-report.py            writes Benchmarks/results/failover.json, prints the table
    scripts/failover-report.py --check    prints the table only
"""
import json
import os
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
folder = Path(os.environ.get("COURIER_FAILOVER_RESULTS", root / ".build" / "failover-results"))
results = []
for path in sorted(folder.glob("*.json")):
    with open(path) as file:
        results.append(json.load(file))
if not results:
    sys.exit(f"failover-report: no results in {folder}: run make test and make test-topologies first")
results.sort(key=lambda result: (result["broker"], result["form"]))
scale_out = []
for path in sorted((folder / "scale-out").glob("*.json")):
    with open(path) as file:
        scale_out.append(json.load(file))

if "--check" not in sys.argv:
    out = root / "Benchmarks" / "results" / "failover.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as file:
        json.dump({"results": results, "scaleOut": scale_out}, file, indent=2, sort_keys=True)
        file.write("\n")
    print(f"wrote {out.relative_to(root)}", file=sys.stderr)

def seconds(value):
    return f"{value:.2f} s" if value is not None else "none"


print("| Broker | Topology and failure | Messages | Publishes acknowledged again after | Handling resumed after | Lost (acknowledged) | Duplicates |")
print("|---|---|---|---|---|---|---|")
for result in results:
    print(
        f"| {result['broker']} | {result['form']} | {result['messages']} "
        f"| {seconds(result.get('publishingResumedAfterSeconds'))} | {seconds(result.get('handlingResumedAfterSeconds'))} "
        f"| {result['lost']} | {result['duplicates']} |"
    )

if scale_out:
    print()
    print("| Broker | Messages | Handled per process (killed one first) | Killed one had handled | Duplicates | Never handled |")
    print("|---|---|---|---|---|---|")
    for result in scale_out:
        print(
            f"| {result['broker']} | {result['messages']} | {' / '.join(str(n) for n in result['handledPerProcess'])} "
            f"| {result['killedProcessHandledBeforeKill']} | {result['duplicates']} | {result['missing']} |"
        )
