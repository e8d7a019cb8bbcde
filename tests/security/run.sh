#!/usr/bin/env bash
# tests/security/run.sh BUILD_DIR — colo-proxy without root, and its control plane closed.
#   1. The DPDK data plane (net_af_packet ports on veths in a namespace of its own) runs as
#      nobody with exactly CAP_NET_RAW and CAP_NET_ADMIN; without them it refuses with a
#      message naming both. Its control socket is 0600 and owned by it: its owner may read
#      the stats, another unprivileged user may not connect. It listens on no TCP or UDP port.
#   2. Socket mode runs as nobody with no capability at all and releases every PVM record.
# What runs as another user (the proxy, labctl.py) runs from a copy in a 0755 directory of
# its own, so the clone may sit where only root can read (a 0700 home).
# Prints "security: PASS|FAIL what" per check; exits non-zero on any failure.
set -euo pipefail
build=$(realpath "${1:?usage: tests/security/run.sh BUILD_DIR}")
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/../../build-release/bench # the load generator is not under test: the optimised build's
ns=colo-sec-$$
work=$(mktemp -d)
chmod 755 "$work"
failures=0
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
caps=(--inh-caps=-all,+net_raw,+net_admin --ambient-caps=-all,+net_raw,+net_admin)
nocaps=(--inh-caps=-all --ambient-caps=-all --bounding-set=-all)
cleanup() {
    local rc=$?
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true # deleting a namespace kills nothing
    if [ -n "${cpid:-}" ]; then kill -9 "$cpid" 2>/dev/null || true; fi
    jobs -p | xargs -r kill 2>/dev/null || true
    wait 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
    exit "$rc" # the checks' verdict, not the last clean-up command's
}
trap cleanup EXIT
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then echo "security: PASS $what"; else echo "security: FAIL $what"; failures=$((failures + 1)); fi
}

install -m 755 -D "$build/colo-proxy" "$work/bin/colo-proxy"
install -m 755 "$here/../lab/labctl.py" "$work/bin/labctl.py"
proxy=$work/bin/colo-proxy
labctl=$work/bin/labctl.py
cd "$work" # the unprivileged processes start here, not in the clone

ip netns add "$ns"
for n in 1 2 3; do
    ip -n "$ns" link add "sx$n" type veth peer name "sy$n"
    ip -n "$ns" link set "sx$n" up
    ip -n "$ns" link set "sy$n" up
done
mkdir -m 777 "$work/run"
dataplane() { # CAPABILITY-ARGS... -> runs a primary as nobody in the namespace
    ip netns exec "$ns" "${as_nobody[@]}" "$@" "$proxy" run --no-huge -m 256 --no-pci --no-shconf \
        --no-telemetry --log-level=error --file-prefix "sec$$" -l 0 \
        --vdev=net_af_packet0,iface=sx1 --vdev=net_af_packet1,iface=sx2 --vdev=net_af_packet2,iface=sx3 -- \
        --role primary --client-port net_af_packet0 --pvm-port net_af_packet1 --link-port net_af_packet2 \
        --control "$work/run/ctl.sock" --vm-mac 52:54:00:77:00:02 --mbufs 8192 --idle-sleep-us 100
}

refused_without_caps() {
    ! dataplane "${nocaps[@]}" >"$work/nocaps.log" 2>&1 &&
        grep -q "CAP_NET_RAW and CAP_NET_ADMIN" "$work/nocaps.log"
}
check "without capabilities the DPDK data plane refuses, naming CAP_NET_RAW and CAP_NET_ADMIN" refused_without_caps

dataplane "${caps[@]}" >"$work/dataplane.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$work/run/ctl.sock" ] && break; sleep 0.1; done
check "as nobody with CAP_NET_RAW and CAP_NET_ADMIN the data plane runs" kill -0 "$pid"
proxy_pid=$(pgrep -u 65534 -f "sec$$" | head -1 || true)
check "it runs as nobody with exactly those capabilities" \
    [ "$(awk '/^(Uid|CapEff)/ {print $2}' "/proc/$proxy_pid/status" 2>/dev/null | xargs)" = "65534 0000000000003000" ]
check "its control socket is 0600 and its own" [ "$(stat -c '%a %U' "$work/run/ctl.sock")" = "600 nobody" ]
owner_reads_stats() {
    "${as_nobody[@]}" /usr/bin/python3 "$labctl" "$work/run/ctl.sock" stats >"$work/stats.json" &&
        grep -q '"role": "primary"' "$work/stats.json"
}
check "its owner reads the stats" owner_reads_stats
refused_to_others() {
    ! setpriv --reuid=1 --regid=1 --clear-groups /usr/bin/python3 "$labctl" "$work/run/ctl.sock" stats \
        >/dev/null 2>"$work/other.log" && grep -q PermissionError "$work/other.log"
}
check "another unprivileged user cannot connect to it (permission denied)" refused_to_others
check "it listens on no TCP or UDP port" \
    sh -c "! ip netns exec '$ns' ss -Htulnp | grep -q 'pid=$proxy_pid,'"
kill "$proxy_pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
check "the data plane stopped on SIGTERM" sh -c "! kill -0 '$proxy_pid' 2>/dev/null"

# Socket mode: nobody, no capability at all, unix sockets in a directory it may write.
"$tools/make_trace" 512 20000 8 "$work/pvm.pcap" "$work/svm.pcap"
"${as_nobody[@]}" "${nocaps[@]}" "$proxy" compare --primary_in "unix:$work/run/pin,server" \
    --secondary_in "unix:$work/run/sin,server" --outdev "unix:$work/run/out,server" 2>"$work/compare.log" &
cpid=$!
for _ in $(seq 100); do [ -S "$work/run/out" ] && break; sleep 0.1; done
read -r _ _ released reordered lost < <("$tools/chardev_load" "$work/run/pin" "$work/run/sin" "$work/run/out" \
    "$cpid" --pcap-pvm "$work/pvm.pcap" --pcap-svm "$work/svm.pcap")
check "socket mode as nobody with no capability releases every PVM record ($released of 20000, $lost lost, $reordered reordered)" \
    [ "$released $lost $reordered" = "20000 0 0" ]
kill "$cpid"
wait "$cpid" 2>/dev/null || true
echo "security: $failures failed"
[ "$failures" = 0 ]
