#!/bin/sh
# Builds the release: static musl binaries and one tarball per architecture, with SHA256SUMS.
#
#   sh package/make-release.sh            from anywhere inside the checkout
#
# x86_64 (the STARFACE appliance and most VMs) is built with cargo and musl-tools
# (apt-get install musl-tools; rustup target add x86_64-unknown-linux-musl). aarch64 (ARM hosts
# next to the PBX) is built with `cross` when it is installed (it needs docker or podman), else
# with plain cargo and Debian's cross compiler, which needs neither docker nor a musl toolchain
# for ARM (Rust's musl targets bring their own C library):
#   apt-get install gcc-aarch64-linux-gnu; rustup target add aarch64-unknown-linux-musl
# Without either it is skipped with a note. CROSS=no uses plain cargo even where cross is.
# Both binaries carry the git revision in --version (with cross through ESS_GIT_REVISION,
# which cross.toml passes into the container).
#
# Output in target/dist/ (or $DIST):
#   exchange-status-sync-<version>-<arch>-linux-musl.tar.gz, each unpacking to a directory of
#   the same name with the binary, install.sh, uninstall.sh, the unit and the template unit,
#   the init script, the
#   logrotate snippet, config.example.toml, README.md, README.de.md, docs/, LICENSE-MIT, LICENSE-APACHE and a
#   SHA256SUMS of its own files;
#   SHA256SUMS over the tarballs.
set -eu

NAME=exchange-status-sync
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || {
    echo "make-release.sh: no version in Cargo.toml" >&2
    exit 1
}
target_dir=${CARGO_TARGET_DIR:-$root/target}
# Under target/, which git ignores; DIST=dir puts it elsewhere.
dist=${DIST:-$root/target/dist}
rm -rf "$dist"
mkdir -p "$dist"

# The tarballs carry the commit's time and no owner, so the same commit gives the same bytes.
mtime=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)

# Packs the binary $1 for the architecture name $2.
pack() {
    dir="$NAME-$version-$2-linux-musl"
    stage="$dist/$dir"
    mkdir -p "$stage"
    cp "$1" "$stage/$NAME"
    chmod 0755 "$stage/$NAME"
    for f in install.sh uninstall.sh "$NAME.service" "$NAME@.service" "$NAME.init" logrotate config.example.toml; do
        cp "package/$f" "$stage/$f"
    done
    chmod 0755 "$stage/install.sh" "$stage/uninstall.sh" "$stage/$NAME.init"
    # The licence texts that Cargo.toml's "MIT OR Apache-2.0" refers to travel with the binary.
    for f in README.md README.de.md LICENSE-MIT LICENSE-APACHE; do
        [ -f "$f" ] || {
            echo "make-release.sh: $f is missing" >&2
            exit 1
        }
        cp "$f" "$stage/$f"
    done
    if [ -d docs ]; then
        mkdir -p "$stage/docs"
        cp docs/*.md "$stage/docs/"
    fi
    (cd "$stage" && find . -type f | sed 's#^\./##' | LC_ALL=C sort | xargs sha256sum >../SHA256SUMS.tmp)
    mv "$dist/SHA256SUMS.tmp" "$stage/SHA256SUMS"
    tar -C "$dist" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" \
        -cf - "$dir" | gzip -n -9 >"$dist/$dir.tar.gz"
    rm -rf "$stage"
    echo "$dist/$dir.tar.gz"
}

# Prints "<bytes> <file>", and whether the file is static.
describe() {
    bytes=$(wc -c <"$1" | tr -d ' ')
    kind=$(file -b "$1" 2>/dev/null | cut -d, -f1-2 || echo "?")
    echo "  $(basename "$1"): $bytes bytes ($((bytes / 1024)) KiB), $kind"
}

# Fails unless $1 is a static binary for the machine named $2 (as file(1) says it).
must_be_static() {
    if ! command -v file >/dev/null 2>&1; then
        echo "  (file is not installed: not checking that the binary is static)"
        return 0
    fi
    kind=$(file -b "$1")
    case "$kind" in
        *"$2"*static*) ;;
        *)
            echo "make-release.sh: $1 is not a static $2 binary: $kind" >&2
            exit 1
            ;;
    esac
}

echo "== $NAME $version: x86_64-unknown-linux-musl"
cargo build --release --locked --target x86_64-unknown-linux-musl --bin "$NAME"
x86="$target_dir/x86_64-unknown-linux-musl/release/$NAME"
must_be_static "$x86" x86-64
describe "$x86"
pack "$x86" x86_64 >/dev/null

echo "== $NAME $version: aarch64-unknown-linux-musl"
arm="$target_dir/aarch64-unknown-linux-musl/release/$NAME"
arm_cc=${CC_aarch64_unknown_linux_musl:-aarch64-linux-gnu-gcc}
if [ "${CROSS:-}" != no ] && command -v cross >/dev/null 2>&1; then
    # cross reads Cross.toml unless told otherwise; the project's file is cross.toml. build.rs
    # cannot ask git inside cross's container: name the revision here (cross.toml passes it).
    ESS_GIT_REVISION=${ESS_GIT_REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || true)}
    export ESS_GIT_REVISION
    CROSS_CONFIG="$root/cross.toml" cross build --release --locked \
        --target aarch64-unknown-linux-musl --bin "$NAME"
elif command -v "$arm_cc" >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-musl; then
    # The cross compiler builds ring's C and assembly parts and drives the link; the C library
    # and start files come from Rust's self-contained musl target, so the result is static.
    CC_aarch64_unknown_linux_musl="$arm_cc" \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER:-$arm_cc} \
        cargo build --release --locked --target aarch64-unknown-linux-musl --bin "$NAME"
else
    arm=""
    echo "  skipped: neither cross nor $arm_cc with the aarch64-unknown-linux-musl target is installed"
    echo "  (apt-get install gcc-aarch64-linux-gnu; rustup target add aarch64-unknown-linux-musl)"
fi
if [ -n "$arm" ]; then
    must_be_static "$arm" aarch64
    describe "$arm"
    pack "$arm" aarch64 >/dev/null
fi

(cd "$dist" && sha256sum ./*.tar.gz | sed 's#  \./#  #' >SHA256SUMS)
echo "== $dist"
for f in "$dist"/*.tar.gz; do
    describe "$f"
done
cat "$dist/SHA256SUMS"
