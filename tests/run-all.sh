#!/usr/bin/env bash
# run-all.sh - every check of the project, as CI runs it:
#   1. install the Debian packages that are missing (deploy/install-deps.sh)
#   2. check the formatting of every .c/.h file (clang-format, the project's .clang-format)
#   3. build with AddressSanitizer + UndefinedBehaviorSanitizer (Debug) into build-asan/
#   4. run the unit self-tests (ctest)
#   5. fuzz: build the libFuzzer targets with clang into build-fuzz/ and run each for
#      FUZZ_SECONDS (default 15) from its seed corpus (tests/fuzz/corpus/)
#   6. run the black-box suite (tests/blackbox, pytest) against build-asan/bin
# A failing step does not hide the later ones (except a failed build). Exits non-zero when
# anything failed, after a summary of the steps.
#
# Environment: JOBS (parallel build jobs, default: number of CPUs), PYTEST_ARGS (extra pytest
# arguments, e.g. "-k entity -x"), XWS_KEEP_LOGS=1 (keep the test systems' logs in /tmp),
# FUZZ_SECONDS (per fuzz target; 0 skips the fuzzing step).
set -uo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$PROJECT" || exit 1
BUILD=$PROJECT/build-asan
JOBS=${JOBS:-$(nproc)}
START=$(date +%s)

declare -a STEPS=()
FAILED=0
step_result() { # name status
    if [ "$2" -eq 0 ]; then
        STEPS+=("ok      $1")
    else
        STEPS+=("FAILED  $1 (status $2)")
        FAILED=1
    fi
}
# the total of unit and black-box tests, as one "N passed, N failed" line
count_tests() {
    local cp=0 cf=0 pp=0 pf=0 pe=0 line
    if [ -n "${LOGDIR:-}" ] && [ -f "$LOGDIR/ctest.log" ]; then
        line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$LOGDIR/ctest.log" | tail -n 1)
        if [ -n "$line" ]; then
            cf=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
            cp=$(($(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line") - cf))
        fi
    fi
    if [ -n "${LOGDIR:-}" ] && [ -f "$LOGDIR/pytest.log" ]; then
        line=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$LOGDIR/pytest.log" | tail -n 1)
        pp=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
        pf=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
        pe=$(grep -oE '[0-9]+ error' <<<"$line" | grep -oE '[0-9]+' || echo 0)
    fi
    echo "tests: $((cp + ${pp:-0})) passed, $((cf + ${pf:-0} + ${pe:-0})) failed"
}
summary() {
    echo
    echo "==== run-all summary ($(($(date +%s) - START)) s) ===="
    printf '  %s\n' "${STEPS[@]}"
    if [ "$FAILED" -ne 0 ]; then
        echo "==== FAILED ===="
        count_tests
        exit 1
    fi
    echo "==== all passed ===="
    count_tests
    exit 0
}
banner() { printf '\n==== %s ====\n' "$*"; }

# 1. packages
banner "dependencies"
"$PROJECT/deploy/install-deps.sh"
rc=$?
step_result "dependencies" $rc
[ $rc -eq 0 ] || summary

# 2. formatting
banner "formatting (clang-format --dry-run --Werror)"
mapfile -t SOURCES < <(find . \( -path ./.git -o -path './build*' -o -path ./run -o -name third_party \) -prune -o \
    -type f \( -name '*.c' -o -name '*.h' \) -print | sort)
if [ ${#SOURCES[@]} -eq 0 ]; then
    echo "no C sources found"
    step_result "formatting" 1
else
    clang-format --dry-run --Werror "${SOURCES[@]}"
    rc=$?
    [ $rc -eq 0 ] && echo "${#SOURCES[@]} files formatted correctly"
    step_result "formatting (${#SOURCES[@]} files)" $rc
fi

# 3. build
banner "build (ASan + UBSan, Debug) into build-asan/"
cmake -S "$PROJECT" -B "$BUILD" -DXWS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug &&
    cmake --build "$BUILD" -j "$JOBS"
rc=$?
step_result "build" $rc
[ $rc -eq 0 ] || summary

# A second configure must not change any compile line (it would rebuild everything).
flags_sums() { find "$BUILD" -name flags.make -print0 | sort -z | xargs -0 md5sum; }
before=$(flags_sums)
cmake -S "$PROJECT" -B "$BUILD" >/dev/null && [ "$before" = "$(flags_sums)" ]
rc=$?
[ $rc -eq 0 ] || echo "a second configure changed compile flags"
step_result "second configure keeps the compile lines" $rc

# Sanitizers: every report is fatal, leaks included. LeakSanitizer stops the process's threads
# with ptrace at exit; where ptrace is forbidden (some containers) it cannot work, so check it
# once with a deliberately leaking probe and say so loudly when leak detection must be off.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -z "${ASAN_OPTIONS:-}" ]; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    probe_dir=$(mktemp -d)
    printf '#include <stdlib.h>\nvoid *volatile keep;\nint main(void) { keep = malloc(33); keep = 0; return 0; }\n' >"$probe_dir/leak.c"
    if cc -fsanitize=address -g -o "$probe_dir/leak" "$probe_dir/leak.c" 2>/dev/null; then
        ASAN_OPTIONS=detect_leaks=1 "$probe_dir/leak" >"$probe_dir/out" 2>&1
        if grep -q 'ERROR: LeakSanitizer: detected memory leaks' "$probe_dir/out"; then
            echo "LeakSanitizer works here: leak detection on"
        else
            echo "WARNING: LeakSanitizer does not work in this environment (ptrace not allowed?):"
            sed 's/^/    /' "$probe_dir/out" | head -n 5
            echo "WARNING: running with detect_leaks=0"
            ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
        fi
    fi
    rm -rf "$probe_dir"
fi
export ASAN_OPTIONS
echo "ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"

# 4. unit self-tests
banner "ctest"
LOGDIR=$(mktemp -d)
(cd "$BUILD" && timeout -k 10 600 ctest --output-on-failure --timeout 120) 2>&1 | tee "$LOGDIR/ctest.log"
rc=${PIPESTATUS[0]}
step_result "ctest" $rc

# 5. fuzzing: a crash, a sanitizer report or a broken invariant fails the step (the input is kept
# in the log directory as fuzz-<target>-crash-*)
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
if [ "$FUZZ_SECONDS" -gt 0 ]; then
    banner "fuzzing (${FUZZ_SECONDS} s per target)"
    FUZZ_BUILD=$PROJECT/build-fuzz
    rc=0
    if CC=clang cmake -S "$PROJECT" -B "$FUZZ_BUILD" -DXWS_FUZZ=ON -DXWS_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        >"$LOGDIR/fuzz-build.log" 2>&1 && cmake --build "$FUZZ_BUILD" -j "$JOBS" --target fuzz >>"$LOGDIR/fuzz-build.log" 2>&1; then
        for target in query record proto; do
            exe=$FUZZ_BUILD/bin/xws-fuzz-$target
            [ "$target" = proto ] && exe=$FUZZ_BUILD/bin/xws-proto-fuzz
            work=$(mktemp -d)
            if timeout -k 10 $((FUZZ_SECONDS + 120)) "$exe" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
                -artifact_prefix="$LOGDIR/fuzz-$target-" "$work" "$PROJECT/tests/fuzz/corpus/$target" >"$LOGDIR/fuzz-$target.log" 2>&1; then
                echo "fuzz $target: $(grep -E '^stat::number_of_executed_units' "$LOGDIR/fuzz-$target.log" | awk '{print $2}') runs, no failure"
            else
                echo "fuzz $target: FAILED"
                tail -n 40 "$LOGDIR/fuzz-$target.log"
                rc=1
            fi
            rm -rf "$work"
        done
    else
        tail -n 40 "$LOGDIR/fuzz-build.log"
        rc=1
    fi
    step_result "fuzzing" $rc
fi

# 6. black-box suite
banner "black-box suite (pytest)"
# shellcheck disable=SC2086
XWS_BIN_DIR=$BUILD/bin timeout -k 20 1800 /usr/bin/python3 -m pytest -ra -p no:cacheprovider \
    "$PROJECT/tests/blackbox" ${PYTEST_ARGS:-} 2>&1 | tee "$LOGDIR/pytest.log"
rc=${PIPESTATUS[0]}
step_result "black-box suite" $rc

summary
