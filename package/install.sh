#!/bin/sh
# Installs exchange-status-sync on a Linux host (the STARFACE PBX itself or a VM next to it).
#
#   sh install.sh            as root, from the unpacked release tarball (or package/ of a checkout)
#
# What it does, each step safe to repeat:
#   - the binary to $PREFIX/bin (default /usr/local/bin), replaced atomically;
#   - the systemd unit and the template unit for more configurations side by side (when
#     systemd runs the host) or the SysV init script (else), and the logrotate snippet;
#   - the service user and group exchange-status-sync (a system account without a shell), with
#     groupadd and useradd, or busybox's addgroup and adduser; a host with neither gets the
#     lines to add to /etc/group and /etc/passwd by hand;
#   - /etc/exchange-status-sync/ (root:exchange-status-sync, 0750) with config.toml from
#     config.example.toml (root:exchange-status-sync, 0640: the service reads it, only root
#     changes it). An existing config.toml is never touched; the new example goes to
#     config.toml.new so that new keys can be compared;
#   - the state directory /var/lib/exchange-status-sync (exchange-status-sync, 0750);
#   - a service that is already running is restarted onto the new binary.
# It needs a POSIX sh with cp, mv, chmod, chown, mkdir, sed, grep and id (busybox has them
# all); getent where accounts may come from LDAP (else /etc/passwd and /etc/group are read).
# It does not start a new installation: first edit the configuration (see the steps it prints
# at the end).
#
# Environment:
#   PREFIX=/usr/local   where bin/ goes
#   DESTDIR=/tmp/root   install below this directory instead of /, for packaging and tests:
#                       then no user is created, nothing is chowned and no service is touched;
#                       the script prints what it would have done instead
#   BINARY=path         the binary to install (default: next to this script, else the musl
#                       release build of a checkout)
#   INIT=systemd|sysv   force the kind of init system (default: systemd if it runs the host)
set -eu

NAME=exchange-status-sync
SERVICE_USER=exchange-status-sync
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
CONF_DIR=/etc/$NAME
STATE_DIR=/var/lib/$NAME
here=$(cd "$(dirname "$0")" && pwd)

say() { printf '%s\n' "$*"; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

# Steps that need the real system (users, owners, services) only run without DESTDIR.
as_root() {
    if [ -n "$DESTDIR" ]; then
        say "  (DESTDIR set, not run) $*"
    else
        "$@"
    fi
}

find_binary() {
    for candidate in ${BINARY:+"$BINARY"} \
        "$here/$NAME" \
        "$here/../target/x86_64-unknown-linux-musl/release/$NAME" \
        "$here/../target/release/$NAME"; do
        if [ -f "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# Copies $1 to $2 with mode $3 through a temporary file and a rename, so that a running
# binary is replaced, never overwritten in place ("text file busy"), and a reader never sees
# half a file.
put() {
    tmp="$2.tmp-$$"
    cp "$1" "$tmp"
    chmod "$3" "$tmp"
    mv -f "$tmp" "$2"
}

# Like put, with $4 (a sed expression) applied to the text on the way.
put_edited() {
    tmp="$2.tmp-$$"
    sed "$4" "$1" >"$tmp"
    chmod "$3" "$tmp"
    mv -f "$tmp" "$2"
}

nologin_shell() {
    for shell in /usr/sbin/nologin /sbin/nologin /bin/false; do
        [ -x "$shell" ] && {
            echo "$shell"
            return
        }
    done
    echo /bin/false
}

# has_entry passwd|group NAME: the account exists. getent also sees LDAP or NIS accounts;
# without it (busybox hosts) the local files are all there is.
has_entry() {
    if command -v getent >/dev/null 2>&1; then
        getent "$1" "$2" >/dev/null 2>&1
    else
        grep -q "^$2:" "/etc/$1" 2>/dev/null
    fi
}

# Says what to do on a host that has no tool for adding accounts (once); stops unless DESTDIR
# is set.
no_account_tool() {
    [ -z "${told_accounts:-}" ] || return 0
    told_accounts=yes
    msg="this host has neither groupadd and useradd (shadow-utils) nor addgroup and adduser
  (busybox) to create the service account $SERVICE_USER. Create it yourself, as a system
  account without a login shell, e.g. with these lines (UID, GID: free numbers below 1000):
    /etc/group:   $SERVICE_USER:x:GID:
    /etc/passwd:  $SERVICE_USER:x:UID:GID:exchange-status-sync daemon:$STATE_DIR:$(nologin_shell)
    /etc/shadow:  $SERVICE_USER:!:::::::      (where the host has /etc/shadow)
  then run install.sh again. (Or let the init script keep root: ESS_USER=root in
  /etc/default/$NAME or /etc/sysconfig/$NAME.)"
    if [ -n "$DESTDIR" ]; then
        say "  (DESTDIR set, not needed now) $msg"
    else
        die "$msg"
    fi
}

create_user() {
    if has_entry group "$SERVICE_USER"; then
        say "group $SERVICE_USER exists"
    elif command -v groupadd >/dev/null 2>&1; then
        as_root groupadd -r "$SERVICE_USER"
    elif command -v addgroup >/dev/null 2>&1; then
        as_root addgroup -S "$SERVICE_USER"
    else
        no_account_tool
    fi
    if has_entry passwd "$SERVICE_USER"; then
        say "user $SERVICE_USER exists"
    elif command -v useradd >/dev/null 2>&1; then
        as_root useradd -r -g "$SERVICE_USER" -d "$STATE_DIR" -M -s "$(nologin_shell)" \
            -c "exchange-status-sync daemon" "$SERVICE_USER"
    elif command -v adduser >/dev/null 2>&1; then
        # busybox: -S system account, -D no password, -H no home directory created here.
        as_root adduser -S -D -H -h "$STATE_DIR" -s "$(nologin_shell)" -G "$SERVICE_USER" \
            -g "exchange-status-sync daemon" "$SERVICE_USER"
    else
        no_account_tool
    fi
}

[ "$(id -u)" = 0 ] || [ -n "$DESTDIR" ] || die "run me as root (or set DESTDIR to install into a directory)"
[ -n "$DESTDIR" ] && case "$DESTDIR" in /*) ;; *) die "DESTDIR must be an absolute path" ;; esac

binary=$(find_binary) || die "no $NAME binary found next to this script or in ../target; set BINARY=path"
for f in "$NAME.service" "$NAME@.service" "$NAME.init" logrotate config.example.toml; do
    [ -f "$here/$f" ] || die "$here/$f is missing"
done

init=${INIT:-}
if [ -z "$init" ]; then
    if [ -d /run/systemd/system ]; then init=systemd; else init=sysv; fi
fi
case "$init" in systemd | sysv) ;; *) die "INIT must be systemd or sysv, not '$init'" ;; esac

umask 022
say "Installing $NAME ($("$binary" --version 2>/dev/null || echo "version unknown")) for $init${DESTDIR:+ into $DESTDIR}"

# The service user first: the directories below belong to it.
create_user

bin_dir="$DESTDIR$PREFIX/bin"
mkdir -p "$bin_dir"
put "$binary" "$bin_dir/$NAME" 0755
say "binary: $PREFIX/bin/$NAME"

# The unit and the init script name /usr/local/bin; follow PREFIX.
edit_prefix="s#/usr/local/bin/$NAME#$PREFIX/bin/$NAME#g"
if [ "$init" = systemd ]; then
    mkdir -p "$DESTDIR/etc/systemd/system"
    put_edited "$here/$NAME.service" "$DESTDIR/etc/systemd/system/$NAME.service" 0644 "$edit_prefix"
    say "systemd unit: /etc/systemd/system/$NAME.service"
    # The template for more configurations side by side: $NAME@NAME reads NAME.toml.
    put_edited "$here/$NAME@.service" "$DESTDIR/etc/systemd/system/$NAME@.service" 0644 "$edit_prefix"
    say "systemd template unit: /etc/systemd/system/$NAME@.service (one more configuration: $NAME@NAME, reading $CONF_DIR/NAME.toml)"
else
    mkdir -p "$DESTDIR/etc/init.d"
    put_edited "$here/$NAME.init" "$DESTDIR/etc/init.d/$NAME" 0755 "$edit_prefix"
    say "init script: /etc/init.d/$NAME"
fi

mkdir -p "$DESTDIR/etc/logrotate.d"
put "$here/logrotate" "$DESTDIR/etc/logrotate.d/$NAME" 0644
say "logrotate: /etc/logrotate.d/$NAME"

# The configuration: readable by the service's group, changed only by root. Secrets belong in
# files of their own (the *_file keys), owned by the service user with mode 0600.
mkdir -p "$DESTDIR$CONF_DIR"
chmod 0750 "$DESTDIR$CONF_DIR"
as_root chown "root:$SERVICE_USER" "$DESTDIR$CONF_DIR"
config="$DESTDIR$CONF_DIR/config.toml"
if [ -e "$config" ]; then
    put "$here/config.example.toml" "$config.new" 0640
    as_root chown "root:$SERVICE_USER" "$config.new"
    say "config: kept the existing $CONF_DIR/config.toml; the new example is $CONF_DIR/config.toml.new"
    new_config=no
else
    put "$here/config.example.toml" "$config" 0640
    as_root chown "root:$SERVICE_USER" "$config"
    say "config: $CONF_DIR/config.toml (from config.example.toml)"
    new_config=yes
fi

# The state directory (state.json). systemd's StateDirectory= would create it too; the init
# script needs it made here.
mkdir -p "$DESTDIR$STATE_DIR"
chmod 0750 "$DESTDIR$STATE_DIR"
as_root chown "$SERVICE_USER:$SERVICE_USER" "$DESTDIR$STATE_DIR"
say "state: $STATE_DIR"

# Register the service, and restart it if it runs (an upgrade).
if [ "$init" = systemd ]; then
    as_root systemctl daemon-reload
    if [ -z "$DESTDIR" ] && systemctl is-active --quiet "$NAME"; then
        systemctl restart "$NAME"
        say "restarted the running service onto the new binary"
    fi
    enable="systemctl enable --now $NAME"
    logs="journalctl -u $NAME -f"
else
    if command -v chkconfig >/dev/null 2>&1; then
        # Registers the script and switches it on for runlevels 3, 4 and 5 (its chkconfig
        # line). Until the configuration is edited a start at boot fails at once with a
        # configuration error in the log, which does no harm.
        as_root chkconfig --add "$NAME"
        enable="service $NAME start   (chkconfig --add has enabled it at boot)"
    elif command -v update-rc.d >/dev/null 2>&1; then
        enable="update-rc.d $NAME defaults && /etc/init.d/$NAME start"
    else
        enable="link /etc/init.d/$NAME into your runlevel directories, then /etc/init.d/$NAME start"
    fi
    if [ -z "$DESTDIR" ] && "/etc/init.d/$NAME" status >/dev/null 2>&1; then
        "/etc/init.d/$NAME" restart
        say "restarted the running service onto the new binary"
    fi
    logs="tail -f /var/log/$NAME.log"
fi

say ""
if [ "$new_config" = yes ]; then
    say "Next steps:"
    say "  1. Edit $CONF_DIR/config.toml (every key is explained there)."
    say "  2. Put each password or client secret into a file of its own, readable by the service only:"
    say "       install -m 600 -o $SERVICE_USER -g $SERVICE_USER /dev/null $CONF_DIR/exchange.secret"
    say "       vi $CONF_DIR/exchange.secret      (the same for starface.secret, client.secret)"
    say "  3. Test both connections and every user: $PREFIX/bin/$NAME check"
    say "     and see what would change now:       $PREFIX/bin/$NAME once --dry-run"
    say "  4. Enable and start the service:        $enable"
    say "  5. Watch the log:                       $logs"
else
    say "Upgrade done. Compare the new example with your configuration for new keys:"
    say "  diff $CONF_DIR/config.toml $CONF_DIR/config.toml.new"
    say "Test with: $PREFIX/bin/$NAME check"
fi
