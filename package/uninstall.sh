#!/bin/sh
# Removes exchange-status-sync: stops and unregisters the service, removes the binary, the
# systemd unit and template unit (with every configuration running from it) or the init
# script (with its copies for further configurations) and the logrotate snippet.
#
#   sh uninstall.sh            keeps /etc/exchange-status-sync (configuration and secrets),
#                              /var/lib/exchange-status-sync (state) and the service user
#   sh uninstall.sh --purge    removes those too, and the log files
#
# Stopping the daemon does not switch back what it switched on at that moment (the DND or the
# forwarding of someone in a meeting). To hand those back first, set every key of [actions] to
# "none" and run `exchange-status-sync once`: what the state file records as switched on by us
# is then switched off.
#
# Environment: PREFIX and DESTDIR as for install.sh (with DESTDIR no service is touched and no
# user is removed; the script prints what it would have done).
set -eu

NAME=exchange-status-sync
SERVICE_USER=exchange-status-sync
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}

say() { printf '%s\n' "$*"; }
die() {
    printf 'uninstall.sh: %s\n' "$*" >&2
    exit 1
}

as_root() {
    if [ -n "$DESTDIR" ]; then
        say "  (DESTDIR set, not run) $*"
    else
        "$@"
    fi
}

purge=no
case "${1:-}" in
    --purge) purge=yes ;;
    "") ;;
    *) die "usage: uninstall.sh [--purge]" ;;
esac
[ "$(id -u)" = 0 ] || [ -n "$DESTDIR" ] || die "run me as root (or set DESTDIR)"

unit="$DESTDIR/etc/systemd/system/$NAME.service"
template="$DESTDIR/etc/systemd/system/$NAME@.service"
initscript="$DESTDIR/etc/init.d/$NAME"

if [ -f "$unit" ]; then
    if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now "$NAME" 2>/dev/null || true
    else
        as_root systemctl disable --now "$NAME"
    fi
    rm -f "$unit"
    as_root systemctl daemon-reload
    say "removed the systemd unit"
fi
if [ -f "$template" ]; then
    # Every configuration running side by side (exchange-status-sync@NAME) stops with it: those
    # enabled (a link in a .wants directory) and those started by hand.
    instances=$(
        for link in "$DESTDIR"/etc/systemd/system/*.wants/"$NAME"@*.service; do
            [ -L "$link" ] && basename "$link"
        done
        if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1; then
            systemctl list-units --all --plain --no-legend "$NAME@*.service" 2>/dev/null | awk '{print $1}'
        fi
    )
    for instance in $(printf '%s\n' "$instances" | sort -u); do
        if [ -z "$DESTDIR" ]; then
            systemctl disable --now "$instance" 2>/dev/null || true
        else
            as_root systemctl disable --now "$instance"
        fi
    done
    rm -f "$template"
    as_root systemctl daemon-reload
    say "removed the systemd template unit"
fi
# Copies of the init script for further configurations (exchange-status-sync-NAME).
for copy in "$DESTDIR"/etc/init.d/"$NAME"-*; do
    [ -f "$copy" ] || continue
    if [ -z "$DESTDIR" ]; then
        "$copy" stop || true
    else
        as_root "/etc/init.d/$(basename "$copy")" stop
    fi
    if command -v chkconfig >/dev/null 2>&1; then
        as_root chkconfig --del "$(basename "$copy")" || true
    fi
    rm -f "$copy"
    say "removed the init script $(basename "$copy")"
done
if [ -f "$initscript" ]; then
    if [ -z "$DESTDIR" ]; then
        "$initscript" stop || true
    else
        as_root "/etc/init.d/$NAME" stop
    fi
    if command -v chkconfig >/dev/null 2>&1; then
        as_root chkconfig --del "$NAME" || true
    fi
    rm -f "$initscript"
    if command -v update-rc.d >/dev/null 2>&1; then
        as_root update-rc.d "$NAME" remove || true
    fi
    say "removed the init script"
fi

rm -f "$DESTDIR$PREFIX/bin/$NAME" "$DESTDIR/etc/logrotate.d/$NAME"
say "removed $PREFIX/bin/$NAME and /etc/logrotate.d/$NAME"

if [ "$purge" = yes ]; then
    rm -rf "${DESTDIR}/etc/${NAME:?}" "${DESTDIR}/var/lib/${NAME:?}"
    rm -f "$DESTDIR/var/log/$NAME.log" "$DESTDIR/var/log/$NAME.log."* "$DESTDIR/var/log/$NAME-"*.log*
    say "purged /etc/$NAME, /var/lib/$NAME and /var/log/$NAME.log*"
    if getent passwd "$SERVICE_USER" >/dev/null 2>&1; then
        as_root userdel "$SERVICE_USER"
        say "removed the user $SERVICE_USER"
    fi
    # userdel usually takes the group along; a group left alone goes now.
    if getent group "$SERVICE_USER" >/dev/null 2>&1; then
        as_root groupdel "$SERVICE_USER" || true
    fi
else
    say "kept /etc/$NAME (configuration, secrets) and /var/lib/$NAME (state); --purge removes them"
fi
