#!/usr/bin/env bash
# Runs the whole suite N times and says how many runs passed: `scripts/soak-test.sh N`.
#
# The first run is what CI does on every submission: a fresh clone of this checkout's HEAD (commit
# first: uncommitted changes are not in it) and `make test` there, cold build included, so the
# suite's first run competes with nothing warmed up. The other N-1 runs reuse that clone's build
# (`make test-run`: the suite from that build, servers started and stopped each time).
# Each run's log is kept in the soak folder (printed at the start); a failed run's failing tests
# are printed. The last line is `N passed, M failed`; the exit status is 0 only when every run
# passed.
#
#   SOAK_DIR=/path   where the clone and the logs go (default: a new folder under /tmp)
set -uo pipefail

runs=${1:-}
case "$runs" in
    '' | *[!0-9]* | 0) echo "usage: $0 N   (N ≥ 1 runs of the whole suite)" >&2; exit 2 ;;
esac
source_repo=$(cd "$(dirname "$0")/.." && pwd)
soak_dir=${SOAK_DIR:-$(mktemp -d /tmp/courier-soak.XXXXXX)}
mkdir -p "$soak_dir"
clone="$soak_dir/courier"
export PATH="/opt/swift/usr/bin:$PATH"

echo "soak: $runs runs of $(git -C "$source_repo" rev-parse --short HEAD) in $soak_dir"
if [ -n "$(git -C "$source_repo" status --porcelain --untracked-files=no)" ]; then
    echo "soak: note: $source_repo has uncommitted changes; the soak runs HEAD without them"
fi
rm -rf "$clone"
git clone --quiet "$source_repo" "$clone" || { echo "soak: git clone failed" >&2; exit 1; }

# The pids of the servers and peers a run starts, to find any that outlived it (living ones: a
# zombie is dead, and stays listed only where PID 1 does not reap orphans, as in some sandboxes).
servers() {
    ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 ~ /^(redis-server|nats-server|beam\.smp|epmd|tansu|python|python3|python3\.11)$/ { print $1 }' | sort
}

passed=0
failed=0
for run in $(seq 1 "$runs"); do
    log="$soak_dir/run-$run.log"
    before=$(servers)
    started=$(date +%s)
    if [ "$run" -eq 1 ]; then
        (cd "$clone" && make test) >"$log" 2>&1
    else
        (cd "$clone" && make test-run) >"$log" 2>&1
    fi
    status=$?
    seconds=$(($(date +%s) - started))
    # Swift Testing's closing line, e.g. "✔ Test run with 282 tests in 53 suites passed after 45 seconds."
    summary=$(grep -a -E '^(✔|✘|􁁛|􀢄).*Test run with' "$log" | tail -n 1)
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        echo "run $run: passed in ${seconds}s${summary:+ — $summary}"
    else
        failed=$((failed + 1))
        echo "run $run: FAILED (exit $status) in ${seconds}s${summary:+ — $summary}; log: $log"
        # The failing tests and the first lines of their issues; a crash's signal and backtrace head.
        grep -a -E '(✘|􀢄) Test .*(failed|recorded an issue)|error: Exited with (signal|unexpected)|Program crashed|Fatal error|Crash|Segmentation' "$log" \
            | head -n 20 | sed 's/^/    /'
    fi
    # Nothing a run started may outlive it (scripts/with-servers.sh ends what the suite started).
    leftovers=$(comm -13 <(echo "$before") <(servers))
    if [ -n "$leftovers" ]; then
        echo "    left running after run $run:"
        ps -o pid=,args= -p "$(echo "$leftovers" | paste -sd,)" | cut -c1-160 | sed 's/^/      /'
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
