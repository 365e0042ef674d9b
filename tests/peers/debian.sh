#!/usr/bin/env bash
# A real Debian 12 machine for the machine-state tests: a `mmdebstrap` userland with its own
# sshd, and a local apt repository (no network) whose packages make every case the probe
# must read — a plain update, a security update (a `bookworm-security` suite labelled
# Debian-Security), one kept back by `upgrade` (it needs a new package), a held one, a
# package whose postinst asks for a reboot, one whose preinst fails, and a source that
# cannot be read.
#
#   debian.sh image DIR   builds DIR/machine.tar once (kept: keyed by this script's hash),
#                         and prints its path
#
# The tests (tests/src/debian.rs) unpack the image per machine and run its sshd chrooted in
# a private mount and PID namespace. Nothing here touches this machine's own packages.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: debian.sh image DIR}
dir=${2:?usage: debian.sh image DIR}
[ "$cmd" = image ] || { echo "unknown command $cmd" >&2; exit 2; }

key=$(sha256sum "$here/debian.sh" | cut -c1-16)
out="$dir/machine-$key.tar"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
for tool in mmdebstrap dpkg-deb dpkg-scanpackages apt-ftparchive unshare; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y mmdebstrap dpkg-dev apt-utils util-linux" >&2; exit 1; }
done
mkdir -p "$dir"
# Images of earlier versions of this script are of no use any more.
find "$dir" -maxdepth 1 -name 'machine-*.tar' ! -name "machine-$key.tar" -delete
work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One package: NAME VERSION [DEPENDS] [POSTINST] [PREINST], into the current directory.
deb() {
  local name=$1 ver=$2 deps=${3:-} postinst=${4:-} preinst=${5:-} d
  d=$(mktemp -d)
  mkdir -p "$d/DEBIAN" "$d/usr/share/doc/$name"
  echo "$name $ver" > "$d/usr/share/doc/$name/VERSION"
  {
    echo "Package: $name"; echo "Version: $ver"; echo "Architecture: all"
    echo "Maintainer: WakeHub tests <tests@wakehub.invalid>"
    [ -n "$deps" ] && echo "Depends: $deps"
    echo "Description: WakeHub test package $name"
  } > "$d/DEBIAN/control"
  if [ -n "$postinst" ]; then printf '#!/bin/sh\nset -e\n%s\n' "$postinst" > "$d/DEBIAN/postinst"; chmod 755 "$d/DEBIAN/postinst"; fi
  if [ -n "$preinst" ]; then printf '#!/bin/sh\n%s\n' "$preinst" > "$d/DEBIAN/preinst"; chmod 755 "$d/DEBIAN/preinst"; fi
  SOURCE_DATE_EPOCH=1700000000 dpkg-deb --root-owner-group -Zgzip -b "$d" "${name}_${ver}_all.deb" >/dev/null
  rm -rf "$d"
}
# A flat repository's index and Release (ORIGIN LABEL SUITE).
index() {
  dpkg-scanpackages -m . /dev/null > Packages 2>/dev/null
  apt-ftparchive -o APT::FTPArchive::Release::Origin="$1" -o APT::FTPArchive::Release::Label="$2" \
    -o APT::FTPArchive::Release::Suite="$3" -o APT::FTPArchive::Release::Codename="$3" release . > ../Release.tmp
  mv ../Release.tmp Release
}

repo="$work/root/srv/repo"
mkdir -p "$work/root"
mmdebstrap --quiet --variant=minbase --include=openssh-server,apt,needrestart,procps \
  bookworm "$work/rootfs.tar" http://deb.debian.org/debian
tar -C "$work/root" -xf "$work/rootfs.tar"
rm "$work/rootfs.tar"

mkdir -p "$repo/installed" "$repo/main" "$repo/security"
(cd "$repo/installed"
  for p in demo-tool demo-libssl demo-app demo-held demo-kernel demo-broken; do deb "$p" 1.0; done)
(cd "$repo/main"
  deb demo-tool 1.1
  deb demo-app 2.0 demo-newdep
  deb demo-newdep 1.0
  deb demo-held 1.1
  deb demo-kernel 1.1 "" 'touch /var/run/reboot-required; echo demo-kernel >> /var/run/reboot-required.pkgs'
  deb demo-broken 1.1 "" "" 'echo "demo-broken: preinst refuses to upgrade" >&2; exit 1'
  index "WakeHub tests" "WakeHub tests" bookworm)
(cd "$repo/security"
  deb demo-libssl 1.0+deb12u1
  index Debian Debian-Security bookworm-security)

# Inside the userland: the old versions installed, one held, the local sources only (and a
# broken one), root's password set by the tests, sshd ready to run on the port they give.
rm -f "$work/root/etc/apt/sources.list" "$work/root/etc/apt/sources.list.d/"*
cat > "$work/root/etc/apt/sources.list.d/local.list" <<'EOF'
deb [trusted=yes] file:/srv/repo/main ./
deb [trusted=yes] file:/srv/repo/security ./
deb [trusted=yes] file:/srv/missing ./
EOF
unshare -m -p -f sh -c '
  root=$0
  mount --bind "$root" "$root" && mount -t proc proc "$root/proc"
  chroot "$root" sh -c "
    dpkg -i /srv/repo/installed/*.deb >/dev/null
    apt-mark hold demo-held >/dev/null
    apt-get update -qq >/dev/null 2>&1 || true
    rm -f /etc/ssh/ssh_host_*
    mkdir -p /run/sshd
  "' "$work/root"
cat > "$work/root/etc/ssh/sshd_config.d/wakehub-test.conf" <<'EOF'
ListenAddress 127.0.0.1
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
HostKey /etc/ssh/ssh_host_ed25519_key
EOF
tar -C "$work/root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
