#!/usr/bin/env bash
# make-image.sh OUTDIR — the tiny Linux guest of the real-guest COLO test.
# Writes OUTDIR/vmlinuz (Debian's cloud kernel, downloaded with apt-get download
# and unpacked, never installed) and OUTDIR/initrd.gz (busybox-static, the
# virtio-net modules, an init that sets a static address and serves HTTP on :80
# and a TCP echo on :7), plus OUTDIR/www, the files the guest serves, so the
# client can check every byte. Reuses OUTDIR when it already holds this kernel.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "guest: no linux-image-cloud-amd64 in apt's lists (run apt-get update)" >&2; exit 2; }
if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.gz" ] && [ "$(cat "$out/kernel" 2>/dev/null)" = "$kpkg" ] &&
   [ "$out/initrd.gz" -nt "$here/guest-init" ]; then
    exit 0
fi
rm -rf "$out"; mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$kpkg" >/dev/null 2>&1) ||
    { echo "guest: apt-get download $kpkg failed" >&2; exit 2; }
dpkg-deb -x "$work"/"$kpkg"_*.deb "$work/k"
cp "$work"/k/boot/vmlinuz-* "$out/vmlinuz"

root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp,lib/modules,www/cgi-bin}
cp /bin/busybox "$root/bin/busybox"
modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net"
for m in $modules; do
    find "$work/k/lib/modules" -name "$m.ko" -exec cp {} "$root/lib/modules/" \;
    [ -f "$root/lib/modules/$m.ko" ] || { echo "guest: module $m not in $kpkg" >&2; exit 2; }
done
echo "$modules" > "$root/modules"   # in load order
cp "$here/guest-init" "$root/init"
chmod +x "$root/init"

# What the guest serves; the client reads the same files from OUTDIR/www.
printf 'colo-proxy real-guest test page\n' > "$root/www/index.html"
python3 -c 'import random, sys
r = random.Random(2026)
sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(262144)))' > "$root/www/big.bin"
cat > "$root/www/cgi-bin/token" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'
echo
CGI
chmod +x "$root/www/cgi-bin/token"
cp -r "$root/www" "$out/www"

(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out/initrd.gz"
echo "$kpkg" > "$out/kernel"
