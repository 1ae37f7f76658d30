#!/usr/bin/env bash
# `make fuzz`: builds courier-fuzz with libFuzzer (its own scratch path, .build-fuzz, so the
# instrumented build never mixes with the normal one), runs every target for FUZZ_RUNS inputs from
# the seed corpus in Fuzz/corpus/<target>, within FUZZ_RSS_LIMIT_MB, and prints what it measured.
# Fails if a target crashed, broke an invariant, ran out of memory or stopped short.
set -uo pipefail
cd "$(dirname "$0")/.."

swift=${SWIFT:-swift}
runs=${FUZZ_RUNS:-1000000}
rss_limit=${FUZZ_RSS_LIMIT_MB:-512}
targets=${FUZZ_TARGETS:-resp envelope traceparent baggage propagation nats-headers kafka-record amqp-frames nats-puback date}
scratch=.build-fuzz

pkg-config --exists libnats || { echo "fuzz: libnats-dev is missing; run make setup" >&2; exit 1; }

# libFuzzer without its main: SwiftPM links an executable with `--defsym main=<module>_main`, which
# collides with the main that `-sanitize=fuzzer` links in (and, with no Swift main at all, points
# at nothing). So the code gets the same instrumentation from the frontend, the link gets the
# runtime LLVM ships for programs with a main of their own, and courier-fuzz's main hands over to
# LLVMFuzzerRunDriver.
toolchain=$(dirname "$(command -v "$swift")")/..
runtime=$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-"$(uname -m)".a 2>/dev/null | head -1)
[ -n "$runtime" ] || { echo "fuzz: this toolchain has no libclang_rt.fuzzer_no_main" >&2; exit 1; }

# Release, as fuzzing wants throughput; preconditions and overflow checks stay on. SWIFT_BUILD_FLAGS
# passes extra flags (e.g. -j 1 on a shared machine).
# shellcheck disable=SC2086
"$swift" build -c release --scratch-path "$scratch" --product courier-fuzz \
    -Xswiftc -Xfrontend -Xswiftc -sanitize=fuzzer -Xswiftc -DCOURIER_LIBFUZZER \
    -Xlinker --whole-archive -Xlinker "$runtime" -Xlinker --no-whole-archive -Xlinker -lstdc++ -Xlinker -lm \
    ${SWIFT_BUILD_FLAGS:-} || exit 1
binary="$scratch/release/courier-fuzz"
# A trap must reach libFuzzer's handler (which saves the input), not Swift's backtracer.
export SWIFT_BACKTRACE=enable=no

results=()
failed=0
for target in $targets; do
    workdir="$scratch/fuzz-run/$target"
    rm -rf "$workdir"
    mkdir -p "$workdir/corpus" "$workdir/artifacts"
    # libFuzzer adds what it finds to the first corpus folder: a scratch one, the committed seeds
    # stay as they are.
    echo "fuzz: $target, $runs inputs (log: $workdir/libfuzzer.log)"
    start=$(date +%s)
    COURIER_FUZZ_TARGET="$target" "$binary" \
        -runs="$runs" -rss_limit_mb="$rss_limit" -malloc_limit_mb="$rss_limit" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$workdir/artifacts/" \
        "$workdir/corpus" "Fuzz/corpus/$target" >"$workdir/libfuzzer.log" 2>&1
    status=$?
    seconds=$(($(date +%s) - start))
    executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$workdir/libfuzzer.log" | tail -1)
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$workdir/libfuzzer.log" | tail -1)
    # Crashes, broken invariants (a trap), out-of-memory and timeouts each leave their input here.
    crashes=$(find "$workdir/artifacts" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
    results+=("$target|${executed:-?}|$crashes|${peak:-?}|$seconds")
    if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ] || [ "${executed:-0}" -lt "$runs" ]; then
        failed=1
        echo "fuzz: $target failed (exit $status); the end of its log:" >&2
        tail -n 30 "$workdir/libfuzzer.log" >&2
    fi
done

echo
printf '%-14s %10s %8s %14s %8s\n' target inputs crashes "peak RSS (MB)" seconds
for row in "${results[@]}"; do
    IFS='|' read -r target executed crashes peak seconds <<<"$row"
    printf '%-14s %10s %8s %14s %8s\n' "$target" "$executed" "$crashes" "$peak" "$seconds"
done
echo "(RSS limit ${rss_limit} MB per target; inputs that crashed are in $scratch/fuzz-run/<target>/artifacts)"
exit "$failed"
