#!/usr/bin/env bash
# run-dpdk.sh [PROXY_BINARY [SECONDS [--failover primary|secondary]]] — the real-guest COLO test of the DPDK data plane
# (tests/guest/colo_guest_dpdk.py): two QEMU 7.2 TCG guests in COLO whose NICs are vhost-user
# ports of `colo-proxy run` (one per host, in network namespaces), no QEMU network filter, a
# client checking every byte for SECONDS (default 60); with --failover SURVIVOR, the other host is
# killed half way and the survivor serves on (the secondary takes over, or the primary goes on
# alone). Builds the guest image on first use (tests/guest/make-image.sh, cached in build-guest/)
# and uses the TCG workaround preload from the release build. Needs root (network namespaces, veths, af_packet).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
proxy=${1:-$top/build-release/colo-proxy}
seconds=${2:-60}
preload=$top/build-release/tests/tcg_condwait_fix.so
[ -f "$preload" ] || { echo "guest: $preload is missing: run scripts/build release first" >&2; exit 2; }
"$here/make-image.sh" "$top/build-guest"
echo "guest: DPDK data plane, vhost-user NICs: $(qemu-system-x86_64 --version | head -1), kernel $(cat "$top/build-guest/kernel"), ${seconds} s of traffic"
exec python3 "$here/colo_guest_dpdk.py" "$proxy" "$preload" "$top/build-guest" --seconds "$seconds" "${@:3}"
