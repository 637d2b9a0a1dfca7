#!/usr/bin/env bash
# Proves the release binaries where admins put them, against the simulators (ess-sim on the
# host, plain HTTP and through a TLS front):
#   - aarch64 under qemu-aarch64-static: --version, `once --dry-run` over HTTP and TLS, `check`,
#     and a short `run` that switches a user and stops on SIGTERM;
#   - x86_64 under an old-kernel seccomp filter (tests/seccomp/old-kernel.c: every system call
#     newer than Linux 2.6.32 fails with ENOSYS, as on CentOS 6 / STARFACE 6.x): --version,
#     `once` over HTTP and TLS, `check`, and a short `run` with SIGHUP and SIGTERM;
#   - the same kernel short of entropy (needs root for a private mount namespace): /dev/random
#     replaced by a FIFO that nobody writes, so that ring's fallback waits on it as it would on
#     an entropy-starved appliance. Plain HTTP must not wait at all; TLS waits, says once why,
#     gives up at its time-out, goes ahead as soon as the FIFO is written, and SIGTERM still
#     stops the daemon at once.
#
#   bash tests/platforms.sh
#
# Needs gcc, python3 and openssl; qemu-aarch64-static and gcc-aarch64-linux-gnu for the
# aarch64 part (skipped with a note when missing, unless CI=true); unshare and mount as root
# for the entropy part. The binaries are those of package/make-release.sh, built if missing.
set -euo pipefail

NAME=exchange-status-sync
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
# check DESCRIPTION COMMAND...: runs the command and counts it.
check() {
    local what=$1
    shift
    if "$@" >"$tmp/check.out" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $what"
    else
        failed=$((failed + 1))
        echo "FAIL $what"
        sed 's/^/     | /' "$tmp/check.out"
    fi
}
contains() { grep -q -- "$2" "$1" || { echo "$1 lacks '$2':"; cat "$1"; return 1; }; }
lacks() { ! grep -q -- "$2" "$1" || { echo "$1 has '$2':"; cat "$1"; return 1; }; }
count_is() {
    local n
    n=$(grep -c -- "$3" "$2" || true)
    [ "$n" = "$1" ] || { echo "$2 has '$3' $n times, want $1:"; cat "$2"; return 1; }
}

# Each step prints how long it took, and the summary repeats the times for the CI note.
timings=""
step_name=""
step_start=0
step() {
    local now
    now=$(date +%s)
    if [ -n "$step_name" ]; then
        echo "   ($step_name: $((now - step_start)) s)"
        timings="$timings  $step_name: $((now - step_start)) s"$'\n'
    fi
    step_name=${1:-}
    step_start=$now
    if [ -n "$step_name" ]; then echo "== $step_name"; fi
}

# --- the binaries
step "binaries (built if missing)"
x86="$target_dir/x86_64-unknown-linux-musl/release/$NAME"
arm="$target_dir/aarch64-unknown-linux-musl/release/$NAME"
sim="$target_dir/debug/ess-sim"
[ -x "$x86" ] || cargo build --release --locked --target x86_64-unknown-linux-musl --bin "$NAME"
arm_cc=${CC_aarch64_unknown_linux_musl:-aarch64-linux-gnu-gcc}
if [ ! -x "$arm" ] && command -v "$arm_cc" >/dev/null 2>&1; then
    # As package/make-release.sh builds it without cross.
    CC_aarch64_unknown_linux_musl="$arm_cc" CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER="$arm_cc" \
        cargo build --release --locked --target aarch64-unknown-linux-musl --bin "$NAME"
fi
[ -x "$sim" ] || cargo build --locked -p ess-sim --bin ess-sim
old_kernel="$tmp/old-kernel"
gcc -O2 -Wall -Wextra -Werror -o "$old_kernel" tests/seccomp/old-kernel.c
for b in "$x86" "$arm"; do
    [ -x "$b" ] && echo "   $b: $(stat -c %s "$b") bytes"
done

# --- simulators, a certificate authority and a TLS front
# start_sims: (re)starts ess-sim starface and graph and the TLS front, and writes
# $tmp/http.toml and $tmp/tls.toml (the same setup, Graph over HTTP or over TLS).
sim_pids=()
stop_sims() {
    for p in "${sim_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${sim_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    sim_pids=()
}
# banner FILE PATTERN: waits up to 5 s for the line of FILE matching PATTERN (sed -n 's...p').
banner() {
    local got=""
    for _ in $(seq 50); do
        got=$(sed -n "$2" "$1" 2>/dev/null | head -n 1)
        [ -n "$got" ] && break
        sleep 0.1
    done
    [ -n "$got" ] || { echo "no banner in $1:" >&2; cat "$1" >&2; return 1; }
    echo "$got"
}
start_sims() {
    stop_sims
    "$sim" starface >"$tmp/starface.out" 2>&1 &
    sim_pids+=($!)
    pids+=($!)
    "$sim" graph >"$tmp/graph.out" 2>&1 &
    sim_pids+=($!)
    pids+=($!)
    local sf gp tp
    sf=$(banner "$tmp/starface.out" 's/^STARFACE fake at \(http[^ ]*\).*/\1/p')
    gp=$(banner "$tmp/graph.out" 's#^Graph fake at http://127\.0\.0\.1:\([0-9]*\)/.*#\1#p')
    python3 tests/seccomp/tls-proxy.py "$tmp/leaf.pem" "$tmp/leaf.key" "$gp" >"$tmp/proxy.out" 2>&1 &
    sim_pids+=($!)
    pids+=($!)
    tp=$(banner "$tmp/proxy.out" '1p')
    rm -rf "$tmp/state"
    mkdir -p "$tmp/state"
    write_config "$tmp/http.toml" "http://127.0.0.1:$gp" "$sf" 30
    write_config "$tmp/tls.toml" "https://127.0.0.1:$tp" "$sf" 30
    write_config "$tmp/tls-short.toml" "https://127.0.0.1:$tp" "$sf" 2
}
# write_config FILE GRAPH_BASE STARFACE_URL TIMEOUT
write_config() {
    cat >"$1" <<EOF
[exchange]
backend = "graph"
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = "demo-client-secret"
token_url = "$2/{tenant_id}/oauth2/v2.0/token"
graph_url = "$2/v1.0"
ca_file = "$tmp/ca.pem"
timeout_secs = $4
[starface]
url = "$3"
login = "0001"
password = "admin-secret"
[sync]
state_dir = "$tmp/state"
poll_interval_secs = 5
EOF
    # Inline secrets are fine in a file only the owner reads; the product warns otherwise.
    chmod 600 "$1"
}

step "simulators and certificates"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=platforms-test-ca \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$tmp/leaf.key" -out "$tmp/leaf.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tmp/leaf.ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 2 \
    -extfile "$tmp/leaf.ext" -out "$tmp/leaf.pem" 2>/dev/null
start_sims

# The users the simulators switch at once: alice is busy now, bob is out of office.
want_alice='alice@example.com dnd off -> on'
want_bob='bob@example.com forward'

# dry_run LABEL CONFIG RUNNER...: `once --dry-run` prints both planned switches, exit 0.
dry_run() {
    local cfg=$2
    shift 2
    timeout 60 "$@" once --dry-run -c "$cfg" >"$tmp/once.out" 2>"$tmp/once.err" || {
        echo "exit $?"
        cat "$tmp/once.out" "$tmp/once.err"
        return 1
    }
    contains "$tmp/once.out" "$want_alice" && contains "$tmp/once.out" "$want_bob"
}

# checks CONFIG RUNNER...: `check` reads every member's mailbox and says so, exit 0.
checks() {
    local cfg=$1
    shift
    timeout 60 "$@" check -c "$cfg" >"$tmp/check.txt" 2>"$tmp/check.err" || {
        echo "exit $?"
        cat "$tmp/check.txt" "$tmp/check.err"
        return 1
    }
    contains "$tmp/check.txt" "alice@example.com" && contains "$tmp/check.txt" "OK: everything is usable"
}

# short_run CONFIG HUP RUNNER...: `run` until alice's DND is switched on at the simulated PBX,
# a SIGHUP (when HUP=yes) that reloads the configuration, then SIGTERM: exit 0 within 5 s
# after saving the state and logging out.
short_run() {
    local cfg=$1 hup=$2
    shift 2
    local log="$tmp/run.log"
    : >"$log"
    "$@" run -c "$cfg" 2>"$log" &
    local pid=$!
    pids+=("$pid")
    local ok=""
    for _ in $(seq 300); do
        if grep -q 'alice@example.com: DND on' "$log"; then ok=1; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$ok" ] || { echo "the daemon did not switch alice's DND within 30 s:"; cat "$log"; kill -KILL "$pid"; return 1; }
    if [ "$hup" = yes ]; then
        kill -HUP "$pid"
        ok=""
        for _ in $(seq 50); do
            if grep -q 'configuration reloaded' "$log"; then ok=1; break; fi
            sleep 0.1
        done
        [ -n "$ok" ] || { echo "no reload after SIGHUP:"; cat "$log"; kill -KILL "$pid"; return 1; }
    fi
    kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "still running 5 s after SIGTERM:"
        cat "$log"
        kill -KILL "$pid"
        return 1
    fi
    local code=0
    wait "$pid" || code=$?
    [ "$code" = 0 ] || { echo "run exited $code:"; cat "$log"; return 1; }
    contains "$log" "stopping: saving the state"
}

# --- aarch64 under qemu
step "aarch64 under qemu-aarch64-static"
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -n "$qemu" ] && [ -x "$arm" ]; then
    check "aarch64: a static ARM aarch64 binary" bash -c "file -b '$arm' | grep -q 'ARM aarch64.*static'"
    check "aarch64: --version" bash -c "'$qemu' '$arm' --version | grep -q '^$NAME '"
    check "aarch64: once --dry-run over HTTP" dry_run http "$tmp/http.toml" "$qemu" "$arm"
    check "aarch64: once --dry-run over TLS" dry_run tls "$tmp/tls.toml" "$qemu" "$arm"
    check "aarch64: check over TLS" checks "$tmp/tls.toml" "$qemu" "$arm"
    start_sims
    check "aarch64: run switches alice, stops on SIGTERM" short_run "$tmp/tls.toml" no "$qemu" "$arm"
elif [ "${CI:-}" = true ]; then
    check "aarch64: qemu-aarch64-static and the aarch64 binary are there" false
else
    echo "skip aarch64: qemu-aarch64-static or the aarch64 binary is missing (apt-get install qemu-user-static gcc-aarch64-linux-gnu)"
fi

# --- x86_64 on an old kernel
step "x86_64 under the Linux 2.6.32 seccomp filter"
start_sims
old=("$old_kernel" --)
check "old kernel: the filter bites (python's os.getrandom gets ENOSYS)" \
    bash -c "'$old_kernel' -- python3 -c 'import os; os.getrandom(1)' 2>&1 | grep -q 'Errno 38'"
check "old kernel: --version" bash -c "'$old_kernel' -- '$x86' --version | grep -q '^$NAME '"
check "old kernel: once --dry-run over HTTP" dry_run http "$tmp/http.toml" "${old[@]}" "$x86"
check "old kernel: once --dry-run over TLS" dry_run tls "$tmp/tls.toml" "${old[@]}" "$x86"
check "old kernel: check over TLS" checks "$tmp/tls.toml" "${old[@]}" "$x86"
once_applies() {
    timeout 60 "${old[@]}" "$x86" once -c "$tmp/tls.toml" >"$tmp/once.out" 2>"$tmp/once.err" ||
        { echo "exit $?"; cat "$tmp/once.err"; return 1; }
    contains "$tmp/once.err" "alice@example.com: DND on" && test -s "$tmp/state/state.json"
}
check "old kernel: once over TLS switches and saves the state" once_applies
start_sims
check "old kernel: run, SIGHUP, SIGTERM" short_run "$tmp/tls.toml" yes "${old[@]}" "$x86"

# --- an old kernel short of entropy
step "x86_64, old kernel, /dev/random starved"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 &&
    unshare -m --propagation private true 2>/dev/null; then
    mkfifo "$tmp/random"
    # $tmp/starved COMMAND...: runs COMMAND under the filter in a mount namespace of its own
    # where /dev/random is the FIFO.
    cat >"$tmp/starved" <<EOF
#!/bin/sh
exec unshare -m --propagation private sh -c 'mount --bind "\$0" /dev/random && exec "\$@"' \
    "$tmp/random" "$old_kernel" -- "\$@"
EOF
    chmod 755 "$tmp/starved"
    starved="$tmp/starved"
    start_sims
    check "starved: once --dry-run over HTTP does not wait" dry_run http "$tmp/http.toml" "$starved" "$x86"
    check "starved: ... nor says anything about random numbers" lacks "$tmp/once.err" "random number"
    gives_up() {
        local code=0
        timeout 20 "$starved" "$x86" once --dry-run -c "$tmp/tls-short.toml" \
            >"$tmp/once.out" 2>"$tmp/once.err" || code=$?
        [ "$code" = 1 ] || { echo "exit $code, want 1"; cat "$tmp/once.err"; return 1; }
        contains "$tmp/once.err" "random number generator has not been ready"
    }
    check "starved: once over TLS gives up at its time-out (2 s), exit 1" gives_up
    check "starved: ... and the log says once why it waits" \
        count_is 1 "$tmp/once.err" "waiting for the kernel's random number generator"
    goes_ahead() {
        # Writing the FIFO makes /dev/random readable, as entropy arriving would.
        (sleep 3 && echo x >"$tmp/random") &
        local feeder=$!
        dry_run tls "$tmp/tls.toml" "$starved" "$x86"
        local code=$?
        kill "$feeder" 2>/dev/null || true
        return "$code"
    }
    check "starved: once over TLS goes ahead once /dev/random is readable" goes_ahead
    check "starved: ... having said once why it waited" \
        count_is 1 "$tmp/once.err" "waiting for the kernel's random number generator"
    check "starved: ... and that it is ready now" contains "$tmp/once.err" "random number generator is ready after"
    stops_while_waiting() {
        local log="$tmp/starved-run.log"
        "$starved" "$x86" run -c "$tmp/tls.toml" 2>"$log" &
        local pid=$!
        pids+=("$pid")
        # Until the daemon's first TLS connection is waiting (it says so after 1 s).
        for _ in $(seq 100); do
            grep -q "waiting for the kernel's random number generator" "$log" && break
            sleep 0.1
        done
        kill -TERM "$pid"
        local waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "still running 5 s after SIGTERM:"
            cat "$log"
            kill -KILL "$pid"
            return 1
        fi
        contains "$log" "waiting for the kernel's random number generator"
    }
    check "starved: run over TLS stops within 5 s of SIGTERM while it waits" stops_while_waiting
else
    echo "skip the starved /dev/random part: needs root and unshare -m"
fi

stop_sims
step ""
echo "step times:"
printf '%s' "$timings"
echo "platforms: $passed passed, $failed failed"
[ "$failed" = 0 ]
