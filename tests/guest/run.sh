#!/usr/bin/env bash
# run.sh [PROXY_BINARY [SECONDS [--secondary-proxy] [--failover primary|secondary [--resume]]]] — the
# real-guest COLO test (tests/guest/colo_guest.py): two QEMU 7.2 TCG guests in COLO, colo-proxy
# in place of colo-compare (and, with --secondary-proxy, of the secondary's filter-rewriter too),
# a client checking every byte for SECONDS (default 60). With --failover, the other host is
# killed half way, with a request in flight, and the named survivor takes over; --resume then
# starts a new secondary and resumes replication with the survivor. Builds the guest image on first use
# (tests/guest/make-image.sh, cached in build-guest/) and uses the TCG workaround
# preload from the release build. Needs root (network namespace, taps).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
proxy=${1:-$top/build-release/colo-proxy}
seconds=${2:-60}
preload=$top/build-release/tests/tcg_condwait_fix.so
[ -f "$preload" ] || { echo "guest: $preload is missing: run scripts/build release first" >&2; exit 2; }
"$here/make-image.sh" "$top/build-guest"
echo "guest: $(qemu-system-x86_64 --version | head -1), kernel $(cat "$top/build-guest/kernel"), ${seconds} s of traffic"
exec python3 "$here/colo_guest.py" "$proxy" "$preload" "$top/build-guest" --seconds "$seconds" "${@:3}"
