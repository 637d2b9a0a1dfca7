#!/usr/bin/env bash
# Tests the packaging: the release tarball, install.sh into a temporary DESTDIR (file modes, an
# existing configuration kept on a second run, PREFIX), the systemd unit (systemd-analyze
# verify, when available), the SysV init script against the real binary (start, status,
# reload, log rotation with copytruncate, stop, a start that fails on a bad configuration),
# uninstall.sh, and the shell scripts' syntax (sh -n; shellcheck when installed).
#
#   bash package/test-install.sh
#
# The binary: the static musl release build when the musl target is there (built if missing,
# which .ci/run's later release step then reuses), else the debug build.
set -euo pipefail

NAME=exchange-status-sync
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
tmp=$(mktemp -d)
daemon_pid=""
second_pid=""
cleanup() {
    for p in $daemon_pid $second_pid; do kill -KILL "$p" 2>/dev/null || true; done
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
mode_is() { [ "$(stat -c %a "$2")" = "$1" ] || { echo "$2 has mode $(stat -c %a "$2"), want $1"; return 1; }; }
same() { cmp "$1" "$2"; }
contains() { grep -q -- "$2" "$1" || { echo "$1 lacks '$2':"; cat "$1"; return 1; }; }
absent() { [ ! -e "$1" ] || { echo "$1 still exists"; return 1; }; }
count_is() {
    local n
    n=$(grep -c -- "$3" "$2" || true)
    [ "$n" = "$1" ] || { echo "$2 has '$3' $n times, want $1:"; cat "$2"; return 1; }
}

# --- the binary and the tarball
musl_bin="$target_dir/x86_64-unknown-linux-musl/release/$NAME"
if [ ! -x "$musl_bin" ] && command -v musl-gcc >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    echo "== building the musl release binary"
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin "$NAME"
fi
if [ -x "$musl_bin" ]; then
    echo "== release tarball"
    DIST="$tmp/dist" sh package/make-release.sh >"$tmp/make-release.log" 2>&1 ||
        { cat "$tmp/make-release.log"; exit 1; }
    tarball=$(ls "$tmp"/dist/$NAME-*-x86_64-linux-musl.tar.gz)
    check "make-release.sh wrote SHA256SUMS for the tarball" \
        bash -c "cd '$tmp/dist' && sha256sum -c SHA256SUMS"
    tar -C "$tmp" -xzf "$tarball"
    pkg=$(ls -d "$tmp"/$NAME-*-x86_64-linux-musl)
    check "the tarball's own SHA256SUMS match its files" bash -c "cd '$pkg' && sha256sum -c SHA256SUMS"
    check "the tarball holds the binary and every package file" bash -c "
        for f in $NAME install.sh uninstall.sh $NAME.service $NAME@.service $NAME.init logrotate config.example.toml \
            LICENSE-MIT LICENSE-APACHE README.md README.de.md; do
            [ -f '$pkg'/\$f ] || { echo \"missing \$f\"; exit 1; }
        done"
    if command -v file >/dev/null 2>&1; then
        check "the packed binary is static" bash -c "file -b '$pkg/$NAME' | grep -q static"
    else
        echo "skip the static check: file is not installed"
    fi
    arm_tarball=$(ls "$tmp"/dist/$NAME-*-aarch64-linux-musl.tar.gz 2>/dev/null || true)
    if [ -n "$arm_tarball" ]; then
        check "the aarch64 tarball holds a static aarch64 binary" bash -c "
            tar -C '$tmp' -xzf '$arm_tarball' &&
            file -b '$tmp'/$NAME-*-aarch64-linux-musl/$NAME | grep -q 'ARM aarch64.*static'"
    elif [ "${CI:-}" = true ]; then
        check "make-release.sh built the aarch64 tarball" false
    else
        echo "skip the aarch64 tarball: no aarch64 toolchain (see package/make-release.sh)"
    fi
    binary="$pkg/$NAME"
    installer="$pkg/install.sh"
    uninstaller="$pkg/uninstall.sh"
else
    echo "== no musl target: testing with the debug binary"
    [ -x "$target_dir/debug/$NAME" ] || cargo build --bin "$NAME"
    binary="$target_dir/debug/$NAME"
    installer="$root/package/install.sh"
    uninstaller="$root/package/uninstall.sh"
fi
export BINARY="$binary"

# --- first installation (systemd)
echo "== install.sh into a DESTDIR"
dest="$tmp/root"
DESTDIR="$dest" INIT=systemd sh "$installer" >"$tmp/install1.log"
check "install prints the next steps" contains "$tmp/install1.log" "exchange-status-sync check"
check "binary 0755" mode_is 755 "$dest/usr/local/bin/$NAME"
check "the installed binary runs" "$dest/usr/local/bin/$NAME" --version
check "unit 0644" mode_is 644 "$dest/etc/systemd/system/$NAME.service"
check "template unit 0644" mode_is 644 "$dest/etc/systemd/system/$NAME@.service"
check "the template reads NAME.toml" \
    contains "$dest/etc/systemd/system/$NAME@.service" "ExecStart=/usr/local/bin/$NAME run -c /etc/$NAME/%i.toml"
check "... and has a state directory of its own" \
    contains "$dest/etc/systemd/system/$NAME@.service" "StateDirectory=$NAME/%i"
check "logrotate snippet 0644" mode_is 644 "$dest/etc/logrotate.d/$NAME"
check "config directory 0750" mode_is 750 "$dest/etc/$NAME"
check "config.toml 0640" mode_is 640 "$dest/etc/$NAME/config.toml"
check "config.toml is the example" same "$dest/etc/$NAME/config.toml" "$root/package/config.example.toml"
check "no config.toml.new on a first install" absent "$dest/etc/$NAME/config.toml.new"
check "state directory 0750" mode_is 750 "$dest/var/lib/$NAME"
check "DESTDIR: no user created, says what it would do" contains "$tmp/install1.log" "not run) useradd"

# --- second installation over a changed configuration (SysV this time)
echo "# changed by the admin" >>"$dest/etc/$NAME/config.toml"
cp "$dest/etc/$NAME/config.toml" "$tmp/changed.toml"
DESTDIR="$dest" INIT=sysv sh "$installer" >"$tmp/install2.log"
check "a second install keeps the changed config" same "$dest/etc/$NAME/config.toml" "$tmp/changed.toml"
check "... and writes the new example as config.toml.new" \
    same "$dest/etc/$NAME/config.toml.new" "$root/package/config.example.toml"
check "config.toml.new 0640" mode_is 640 "$dest/etc/$NAME/config.toml.new"
check "init script 0755" mode_is 755 "$dest/etc/init.d/$NAME"
check "binary still 0755" mode_is 755 "$dest/usr/local/bin/$NAME"

# --- a busybox-only host: no useradd, groupadd or getent
if command -v busybox >/dev/null 2>&1; then
    bbhost="$tmp/busybox-host"
    mkdir -p "$bbhost"
    for applet in $(busybox --list); do ln -s "$(command -v busybox)" "$bbhost/$applet"; done
    if [ ! -e "$bbhost/useradd" ] && [ ! -e "$bbhost/adduser" ]; then
        PATH="$bbhost" DESTDIR="$tmp/bbroot" INIT=sysv "$bbhost/sh" "$installer" >"$tmp/install-bb.log" 2>&1 ||
            { echo "install.sh failed on the busybox host:"; cat "$tmp/install-bb.log"; }
        check "busybox host: install.sh says which account to create by hand" \
            contains "$tmp/install-bb.log" "/etc/passwd:  $NAME:x:UID:GID:"
        check "busybox host: ... once" count_is 1 "$tmp/install-bb.log" "this host has neither groupadd"
        check "busybox host: the rest is installed" mode_is 755 "$tmp/bbroot/etc/init.d/$NAME"
    else
        echo "skip the busybox host: this busybox has useradd or adduser"
    fi
else
    echo "skip the busybox host: busybox is not installed"
fi

# --- PREFIX
DESTDIR="$tmp/prefixed" PREFIX=/opt/ess INIT=systemd sh "$installer" >/dev/null
check "PREFIX: binary in PREFIX/bin" mode_is 755 "$tmp/prefixed/opt/ess/bin/$NAME"
check "PREFIX: the unit starts PREFIX/bin/$NAME" \
    contains "$tmp/prefixed/etc/systemd/system/$NAME.service" "ExecStart=/opt/ess/bin/$NAME run"
check "PREFIX: the template starts PREFIX/bin/$NAME" \
    contains "$tmp/prefixed/etc/systemd/system/$NAME@.service" "ExecStart=/opt/ess/bin/$NAME run"

# --- the unit
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify wants ExecStart= to exist: point it at the installed copy.
    sed "s#/usr/local/bin/$NAME#$dest/usr/local/bin/$NAME#" \
        "$dest/etc/systemd/system/$NAME.service" >"$tmp/$NAME.service"
    check "systemd-analyze verify" systemd-analyze verify "$tmp/$NAME.service"
    # An instance of the template, as `systemctl start $NAME@second` would load it.
    mkdir -p "$tmp/units"
    sed "s#/usr/local/bin/$NAME#$dest/usr/local/bin/$NAME#" \
        "$dest/etc/systemd/system/$NAME@.service" >"$tmp/units/$NAME@second.service"
    check "systemd-analyze verify $NAME@second.service" systemd-analyze verify "$tmp/units/$NAME@second.service"
else
    echo "skip systemd-analyze verify: systemd-analyze is not installed"
fi

# --- the init script against the real binary
echo "== init script"
run="$tmp/run"
mkdir -p "$run/state"
echo "not-a-password" >"$run/secret"
chmod 600 "$run/secret"
# Nothing listens on the discard port: the daemon logs connection errors and keeps running.
cat >"$run/config.toml" <<EOF
[exchange]
url = "http://127.0.0.1:9/EWS/Exchange.asmx"
username = "svc@example.com"
password_file = "secret"
[starface]
url = "http://127.0.0.1:9"
login = "0001"
password_file = "secret"
[sync]
state_dir = "$run/state"
EOF
chmod 600 "$run/config.toml"
init=(env ESS_BIN="$dest/usr/local/bin/$NAME" ESS_CONFIG="$run/config.toml" ESS_LOG="$run/log"
    ESS_USER=root ESS_PIDFILE="$run/pid" sh "$dest/etc/init.d/$NAME")
status_is() {
    local want=$1 got=0
    "${init[@]}" status || got=$?
    [ "$got" = "$want" ] || { echo "status exited $got, want $want"; return 1; }
}
# wait_for FILE TEXT: up to 5 s for the daemon to log TEXT.
wait_for() {
    for _ in $(seq 50); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no '$2' in $1:"
    cat "$1"
    return 1
}
check "status before start: 3 (stopped)" status_is 3
check "start" "${init[@]}" start
daemon_pid=$(cat "$run/pid" 2>/dev/null || true)
check "status after start: 0 (running)" status_is 0
check "the pid file names the daemon itself" \
    bash -c "tr '\\000' ' ' </proc/$daemon_pid/cmdline | grep -q '$NAME run -c'"
check "the daemon logs to the log file" wait_for "$run/log" "started"
check "a second start leaves it running" "${init[@]}" start
if command -v logrotate >/dev/null 2>&1; then
    sed "s#/var/log/$NAME.log#$run/log#" "$dest/etc/logrotate.d/$NAME" >"$run/logrotate.conf"
    check "logrotate with the snippet" logrotate -f -s "$run/logrotate.state" "$run/logrotate.conf"
    check "the rotated file holds the old lines" contains "$run/log.1" "started"
else
    echo "skip logrotate: not installed"
fi
check "reload (SIGHUP)" "${init[@]}" reload
check "the daemon reloaded its configuration" wait_for "$run/log" "configuration reloaded"
if [ -f "$run/log.1" ]; then
    check "after copytruncate the daemon writes at the start of the emptied file" \
        bash -c "head -c 4 '$run/log' | grep -q '^20'"
fi
check "stop" "${init[@]}" stop
check "the daemon is gone" bash -c "! kill -0 $daemon_pid 2>/dev/null"
daemon_pid=""
check "it logged its orderly stop" contains "$run/log" "stopping: saving the state"
check "status after stop: 3 (stopped)" status_is 3

# --- a second configuration side by side, from a copy of the init script
sed "s#^state_dir = .*#state_dir = \"$run/state2\"#" "$run/config.toml" >"$run/second.toml"
chmod 600 "$run/second.toml"
mkdir -p "$run/state2"
sed "s/^# Provides: .*/# Provides:          $NAME-second/" "$dest/etc/init.d/$NAME" >"$dest/etc/init.d/$NAME-second"
chmod 755 "$dest/etc/init.d/$NAME-second"
second=(env ESS_BIN="$dest/usr/local/bin/$NAME" ESS_CONF_DIR="$run" ESS_LOG="$run/second.log"
    ESS_USER=root ESS_PIDFILE="$run/second.pid" sh "$dest/etc/init.d/$NAME-second")
check "start the main configuration" "${init[@]}" start
daemon_pid=$(cat "$run/pid" 2>/dev/null || true)
second_started() {
    "${second[@]}" start >"$run/second.out" 2>&1 || { cat "$run/second.out"; return 1; }
    contains "$run/second.out" "Starting $NAME-second as root: OK"
}
check "start $NAME-second beside it" second_started
second_pid=$(cat "$run/second.pid" 2>/dev/null || echo 0)
pids_differ() { [ "$daemon_pid" != "$second_pid" ] && kill -0 "$daemon_pid" && kill -0 "$second_pid"; }
check "two daemons run" pids_differ
check "$NAME-second reads second.toml (named after the script)" \
    bash -c "tr '\\000' ' ' </proc/$second_pid/cmdline | grep -q -- '-c $run/second.toml'"
check "$NAME-second logs to its own log" wait_for "$run/second.log" "started"
check "stop $NAME-second" "${second[@]}" stop
check "... and the main one keeps running" status_is 0
check "stop the main one" "${init[@]}" stop
daemon_pid=""
bad_name() {
    if env ESS_INSTANCE="../x" sh "$dest/etc/init.d/$NAME" status; then return 1; fi
}
check "a configuration name with a slash is refused" bad_name

echo "nonsense = 1" >>"$run/config.toml"
fails_to_start() {
    if "${init[@]}" start; then echo "start succeeded with a bad configuration"; return 1; fi
    [ ! -e "$run/pid" ] || { echo "pid file left behind"; return 1; }
}
check "start with a bad configuration fails and says why" fails_to_start

# --- the init script as an unprivileged user, by each way of dropping root the host has
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    echo "== init script as nobody"
    user=nobody
    group=$(id -gn nobody)
    urun="$tmp/urun"
    mkdir -p "$urun/state"
    # nobody must reach the binary, the configuration and its state below $tmp.
    chmod 711 "$tmp"
    install -m 600 -o "$user" -g "$group" "$run/secret" "$urun/secret"
    sed "s#^state_dir = .*#state_dir = \"$urun/state\"#" "$run/config.toml" | grep -v '^nonsense' >"$urun/config.toml"
    # As install.sh leaves it: root owns the configuration, the service's group reads it.
    chown "root:$group" "$urun/config.toml"
    chmod 640 "$urun/config.toml"
    chown "$user:$group" "$urun/state"
    chmod 700 "$urun/state"
    # A busybox host: its chroot has no --userspec and its setpriv no --reuid, so the script
    # must find busybox's start-stop-daemon by itself.
    bb="$tmp/busybox-bin"
    mkdir -p "$bb"
    if command -v busybox >/dev/null 2>&1; then
        for applet in chroot setpriv start-stop-daemon; do ln -s "$(command -v busybox)" "$bb/$applet"; done
    fi
    # runs_as UID: the daemon (the pid file's process, or for su its child) runs as UID.
    runs_as() {
        local pid c
        pid=$(cat "$urun/pid")
        for c in $pid $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
            if [ "$(cat /proc/"$c"/comm 2>/dev/null)" = "${NAME:0:15}" ]; then
                awk -v want="$1" '/^Uid:/ { exit !($2 == want) }' /proc/"$c"/status && return 0
                echo "pid $c: $(grep '^Uid:' /proc/"$c"/status), want $1"
                return 1
            fi
        done
        echo "no $NAME process among $pid and its children"
        return 1
    }
    # has_method METHOD: the host can drop root that way (grep without -q: no SIGPIPE).
    has_method() {
        case $1 in
            busybox) [ -e "$bb/chroot" ] ;;
            chroot) chroot --help 2>&1 | grep -- --userspec >/dev/null ;;
            setpriv) setpriv --help 2>&1 | grep -- --reuid >/dev/null ;;
            *) command -v "$1" >/dev/null 2>&1 ;;
        esac
    }
    uid=$(id -u nobody)
    for method in busybox chroot setpriv start-stop-daemon su; do
        if ! has_method "$method"; then
            echo "skip dropping root through $method: not on this host"
            continue
        fi
        if [ "$method" = busybox ]; then
            uinit=(env PATH="$bb:$PATH")
            want_method=start-stop-daemon
        else
            uinit=(env ESS_DROP="$method")
            want_method=$method
        fi
        uinit+=(ESS_BIN="$dest/usr/local/bin/$NAME" ESS_CONFIG="$urun/config.toml" ESS_LOG="$urun/log"
            ESS_USER="$user" ESS_PIDFILE="$urun/pid" sh "$dest/etc/init.d/$NAME")
        : >"$urun/log"
        "${uinit[@]}" start >"$urun/start.out" 2>&1 || true
        daemon_pid=$(cat "$urun/pid" 2>/dev/null || true)
        check "$method: start as $user through $want_method" contains "$urun/start.out" "as $user (through $want_method): OK"
        check "$method: the daemon runs as $user" runs_as "$uid"
        check "$method: it reads its configuration and logs" wait_for "$urun/log" "started"
        check "$method: reload" "${uinit[@]}" reload
        check "$method: the daemon reloaded its configuration" wait_for "$urun/log" "configuration reloaded"
        check "$method: stop" "${uinit[@]}" stop
        check "$method: the daemon is gone" bash -c "! kill -0 ${daemon_pid:-0} 2>/dev/null"
        daemon_pid=""
        check "$method: it saved its state as $user" contains "$urun/log" "stopping: saving the state"
    done
else
    echo "skip the init script as nobody: needs root and the user nobody"
fi

# --- uninstall
echo "== uninstall.sh"
DESTDIR="$dest" sh "$uninstaller" >"$tmp/uninstall.log"
check "uninstall removes the binary" absent "$dest/usr/local/bin/$NAME"
check "uninstall removes the unit" absent "$dest/etc/systemd/system/$NAME.service"
check "uninstall removes the init script" absent "$dest/etc/init.d/$NAME"
check "uninstall removes the init script's copies" absent "$dest/etc/init.d/$NAME-second"
check "uninstall removes the template unit" absent "$dest/etc/systemd/system/$NAME@.service"
check "uninstall removes the logrotate snippet" absent "$dest/etc/logrotate.d/$NAME"
check "uninstall keeps the config" same "$dest/etc/$NAME/config.toml" "$tmp/changed.toml"
check "uninstall keeps the state directory" test -d "$dest/var/lib/$NAME"
DESTDIR="$dest" sh "$uninstaller" --purge >"$tmp/purge.log"
check "uninstall --purge removes the config" absent "$dest/etc/$NAME"
check "uninstall --purge removes the state" absent "$dest/var/lib/$NAME"

# --- the scripts themselves
scripts=(package/install.sh package/uninstall.sh package/make-release.sh "package/$NAME.init")
for s in "${scripts[@]}"; do
    check "sh -n $s" sh -n "$s"
done
check "bash -n package/test-install.sh" bash -n package/test-install.sh
if command -v shellcheck >/dev/null 2>&1; then
    check "shellcheck -s sh (POSIX sh, no bashisms)" shellcheck -s sh "${scripts[@]}"
    check "shellcheck package/test-install.sh" shellcheck package/test-install.sh
else
    echo "skip shellcheck: not installed"
fi

echo "test-install: $passed passed, $failed failed"
[ "$failed" = 0 ]
