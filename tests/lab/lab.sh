#!/usr/bin/env bash
# lab.sh [identical|diverge|all] — a COLO pair on one machine, with real Linux TCP stacks.
#
#   client ns ── veth ── [primary-host ns: colo-proxy --role primary] ── veth ── PVM ns
#                                   │ link (veth)
#                        [secondary-host ns: colo-proxy --role secondary] ── veth ── SVM ns
#
# PVM and SVM are network namespaces with the same address and MAC, running the
# same deterministic server (scripts/fixtures/traffic.py). The proxies run as
# DPDK processes on net_af_packet ports, one lcore each, with the idle back-off.
# Scenarios (docs/lab.md; failover ones in docs/failover.md):
#   identical  LAB_REQUESTS (1000) requests over fresh connections, one LAB_DOWNLOAD_MB
#              (100) download, then the guests open LAB_GUEST_REQUESTS (100) connections
#              to a server in the client namespace. Zero divergences, every PVM frame
#              released, the SVM's TCP stays in step (rewriting works).
#   diverge    the SVM's copy of one file differs by one byte: the divergence is found
#              once, one checkpoint is requested, the client gets the PVM's bytes.
# Needs root and a build (scripts/build release). Cleans up after itself, also on ^C.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
proxy=${COLO_PROXY:-$top/build-release/colo-proxy}
traffic=$top/scripts/fixtures/traffic.py
scenario=${1:-all}
requests=${LAB_REQUESTS:-1000}
guest_requests=${LAB_GUEST_REQUESTS:-100}
download_mb=${LAB_DOWNLOAD_MB:-100}
failover_mb=${LAB_FAILOVER_MB:-200}
p=cl$$
work=$(mktemp -d /tmp/colo-lab.XXXXXX)
pids=()
failures=0
proxy_extra=()
bad_link=0
bad_loss=${LAB_BAD_LOSS:-0.01}
bad_reorder=${LAB_BAD_REORDER:-0.02}
flood_s=${LAB_FLOOD_S:-4} # longer floods desync the lab's SVM for good: no real checkpoint resyncs it (docs/reliability.md)
flood_conns=${LAB_FLOOD_CONNS:-4096}
flood_rate=${LAB_FLOOD_RATE:-20000} # the lab's SVM cannot be resynchronised: a flood that makes it miss mirrored frames stalls it for good
# The heartbeat (docs/lab.md): a virtual machine's vCPU can stall for ~105 ms, longer than the
# default detection time (4 × 20 ms), and a false failover splits the pair. The failover
# scenarios, which test detection, allow LAB_FAILOVER_HEARTBEAT_MISSES (25) × 20 ms
# (10 × 20 ms was once too short under load: the secondary took over from a live primary); the others
# LAB_HEARTBEAT_MISSES (50) × 20 ms, and check that no failover happened.
hb_ms=20
hb_misses=${LAB_HEARTBEAT_MISSES:-50}
failover_hb_misses=${LAB_FAILOVER_HEARTBEAT_MISSES:-25}
heartbeat_opts=()

[ -x "$proxy" ] || { echo "lab: $proxy is missing; run scripts/build release first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "lab: needs root (network namespaces)" >&2; exit 2; }

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for ns in cli pvm svm ph sh wire; do
        ip netns pids "$p-$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$p-$ns" 2>/dev/null || true
    done
    if [ "${LAB_KEEP:-0}" = 1 ]; then echo "lab: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "lab: $*"; }
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then say "PASS $what"; else say "FAIL $what"; failures=$((failures + 1)); fi
}
in_ns() { local ns=$1; shift; ip netns exec "$p-$ns" "$@"; }
# Starts a process in a namespace in the background and remembers it (not a subshell: the process).
bg_in_ns() { local ns=$1; shift; ip netns exec "$p-$ns" "$@" & pids+=($!); }

quiet_ns() {
    ip netns add "$p-$1"
    in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$p-$1" link set lo up
}

# veth NS_A NAME_A NS_B NAME_B: a veth pair without offloads (frames as a virtio NIC sends them).
veth_count=0
veth() {
    veth_count=$((veth_count + 1))
    local a="${p}a$veth_count" b="${p}b$veth_count"
    ip link add "$a" type veth peer name "$b"
    ip link set "$a" netns "$p-$1" name "$2"
    ip link set "$b" netns "$p-$3" name "$4"
    for end in "$1 $2" "$3 $4"; do
        set -- $end
        in_ns "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
        ip -n "$p-$1" link set "$2" up
    done
}

build_lab() {
    for ns in cli pvm svm ph sh; do quiet_ns "$ns"; done
    # The client's network is a switch (a bridge) with both hosts on it: the secondary
    # is there for a takeover, and only serves after one.
    veth cli eth0 ph cli
    veth cli eth1 sh cli
    veth pvm eth0 ph pvm
    veth svm eth0 sh svm
    if [ "$bad_link" = 1 ]; then # the link through a bad cable (badwire.py): drops and reorders
        quiet_ns wire
        veth ph lnk wire left
        veth wire right sh lnk
        bg_in_ns wire python3 "$here/badwire.py" left right "$bad_loss" "$bad_reorder" >"$work/badwire.log" 2>&1
        wire_pid=$!
    else
        veth ph lnk sh lnk
    fi
    ip -n "$p-cli" link add br0 type bridge
    ip -n "$p-cli" link set br0 address 52:54:00:77:00:01
    ip -n "$p-cli" link set eth0 master br0
    ip -n "$p-cli" link set eth1 master br0
    ip -n "$p-cli" link set br0 up
    ip -n "$p-cli" addr add 10.77.0.1/24 dev br0
    for vm in pvm svm; do
        ip -n "$p-$vm" link set eth0 address 52:54:00:77:00:02
        ip -n "$p-$vm" addr add 10.77.0.2/24 dev eth0
    done
}

afp() { echo "--vdev=net_af_packet$1,iface=$2,framecnt=16384,blocksz=2097152,qpairs=1"; }
eal() { echo "--no-huge -m 512 --no-pci --no-shconf --no-telemetry --log-level=error --file-prefix $p$1 -l $2"; }

capture_if_asked() { # LAB_PCAP=1: record what the PVM and the SVM send, for diagnosis
    [ "${LAB_PCAP:-0}" = 1 ] || return 0
    bg_in_ns ph tcpdump -Z root -q -U -B 16384 -s 0 -Q in -i pvm -w "$work/pvm.pcap" 2>/dev/null
    bg_in_ns sh tcpdump -Z root -q -U -B 16384 -s 0 -Q in -i svm -w "$work/svm.pcap" 2>/dev/null
    sleep 0.5
}

start_proxies() {
    mkdir -p "$work/reports"
    # shellcheck disable=SC2046
    bg_in_ns ph "$proxy" run $(eal pri 0) $(afp 0 cli) $(afp 1 pvm) $(afp 2 lnk) -- \
        --role primary --client-port net_af_packet0 --pvm-port net_af_packet1 \
        --link-port net_af_packet2 --control "$work/primary.sock" --idle-sleep-us 20 \
        --divergence-reports "$work/reports" --metrics 9464 \
        --vm-mac 52:54:00:77:00:02 --mbufs 32768 "${heartbeat_opts[@]}" "${proxy_extra[@]}" >"$work/primary.log" 2>&1
    primary_pid=$!
    # shellcheck disable=SC2046
    bg_in_ns sh "$proxy" run $(eal sec 1) $(afp 0 lnk) $(afp 1 svm) $(afp 2 cli) -- \
        --role secondary --link-port net_af_packet0 --svm-port net_af_packet1 --client-port net_af_packet2 \
        --vm-mac 52:54:00:77:00:02 --control "$work/secondary.sock" --idle-sleep-us 20 --mbufs 32768 \
        "${heartbeat_opts[@]}" "${proxy_extra[@]}" >"$work/secondary.log" 2>&1
    secondary_pid=$!
    for side in primary secondary; do
        for _ in $(seq 100); do [ -S "$work/$side.sock" ] && break; sleep 0.1; done
        [ -S "$work/$side.sock" ] || { cat "$work/$side.log" >&2; say "the $side proxy did not start"; exit 1; }
    done
}

listening() { [ -n "$(in_ns "$1" ss -Hltn 'sport = :80')" ]; }

start_servers() { # PVM_DIR SVM_DIR
    bg_in_ns pvm python3 "$traffic" serve "$1" >/dev/null 2>&1
    pvm_server_pid=$!
    bg_in_ns svm python3 "$traffic" serve "$2" >/dev/null 2>&1
    svm_server_pid=$!
    # Both guests must be in the same state before a client talks to them: a
    # client reaching a PVM that does not listen yet while the SVM already does
    # is a real divergence (one resets, the other answers).
    for _ in $(seq 100); do
        listening pvm && listening svm && break
        sleep 0.1
    done
    for _ in $(seq 100); do
        in_ns cli python3 -c "import socket; socket.create_connection(('10.77.0.2', 80), 1).close()" 2>/dev/null && return 0
        sleep 0.1
    done
    say "the servers did not answer through the proxies"
    cat "$work/primary.log" "$work/secondary.log" >&2
    exit 1
}

stat_of() { python3 "$here/labctl.py" "$work/$1.sock" stats | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, d))" "$2"; }
within_ms() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -le "$2" ]; }
tcp_counter() { in_ns "$1" nstat -az "$2" | awk -v k="$2" '$1 == k {print $2}'; }

make_content() { # DIR
    mkdir -p "$1"
    python3 - "$1" <<'PY'
import sys
d = sys.argv[1]
open(d + "/index.html", "wb").write(b"<html><body>colo-proxy lab</body></html>\n" * 8)
open(d + "/diff", "wb").write(b"the same bytes on both guests, except one: X\n" * 100)
PY
}

wait_for() { # SECONDS COMMAND...: polls COMMAND until it succeeds or SECONDS have passed
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

still_a_pair() {
    [ "$(stat_of primary alone)-$(stat_of secondary taken_over)" = False-False ] &&
        [ "$(stat_of primary "heartbeat['went_down']")-$(stat_of secondary "heartbeat['went_down']")" = 0-0 ]
}

primary_sees_secondary_down() { [ "$(stat_of primary "heartbeat['state']")" = down ]; }

accounting_holds() {
    python3 "$here/labctl.py" "$work/primary.sock" wait-idle 30 ||
        { python3 "$here/labctl.py" "$work/primary.sock" stats; return 1; }
    [ "$(stat_of primary "pvm_in")" = "$(stat_of primary "sum(released.values())")" ]
}

scenario_identical() {
    say "scenario identical: $requests requests, a $download_mb MB download, $guest_requests guest-opened connections"
    make_content "$work/www"
    head -c "${download_mb}M" /dev/urandom >"$work/www/big"
    local sha
    sha=$(sha256sum "$work/www/big" | cut -d' ' -f1)
    start_servers "$work/www" "$work/www"
    check "$requests requests over fresh connections, correct bytes" \
        in_ns cli python3 "$here/labclient.py" requests 10.77.0.2 "$requests" 20000 "$work/www/index.html"
    check "$download_mb MB download, correct bytes" \
        in_ns cli python3 "$here/labclient.py" download 10.77.0.2 /big "$sha"
    # The guests open connections to a server on the client side, from the same ports.
    make_content "$work/outside"
    bg_in_ns cli python3 "$traffic" serve "$work/outside" >/dev/null 2>&1
    for _ in $(seq 100); do listening cli && break; sleep 0.1; done
    ip netns exec "$p-svm" python3 "$here/labclient.py" requests 10.77.0.1 "$guest_requests" 30000 \
        "$work/outside/index.html" >"$work/svm-client.log" 2>&1 &
    local svm_client=$!
    check "$guest_requests guest-opened connections from the PVM, correct bytes" \
        in_ns pvm python3 "$here/labclient.py" requests 10.77.0.1 "$guest_requests" 30000 "$work/outside/index.html"
    check "the SVM's own client got the same answers (mirrored, rewritten)" wait "$svm_client"
    check "every PVM frame released (accounting)" accounting_holds
    check "control sockets are owner-only (0600)" \
        [ "$(stat -c %a "$work/primary.sock") $(stat -c %a "$work/secondary.sock")" = "600 600" ]
    check "zero divergences" [ "$(stat_of primary "sum(divergences.values())")" = 0 ]
    check "no checkpoint requested for a divergence" [ "$(stat_of primary "checkpoint_requests['divergence']")" = 0 ]
    # A compare timeout or buffer pressure can still ask for one when the SVM lags (a frame
    # lost on the af_packet path under load, recovered by TCP); say so if it happened.
    say "checkpoint requests by reason: $(stat_of primary checkpoint_requests)"
    check "offsets learned for client-opened connections" \
        [ "$(stat_of secondary learned_passive)" -ge "$requests" ]
    check "offsets learned for guest-opened connections" \
        [ "$(stat_of secondary learned_active)" -ge "$guest_requests" ]
    local pr sr pt st
    pr=$(tcp_counter pvm TcpOutRsts); sr=$(tcp_counter svm TcpOutRsts)
    pt=$(tcp_counter pvm TcpRetransSegs); st=$(tcp_counter svm TcpRetransSegs)
    say "PVM: $pr resets, $pt retransmissions; SVM: $sr resets, $st retransmissions"
    check "the SVM sent no more resets than the PVM" [ "$sr" -le "$pr" ]
    check "no retransmission storm on the SVM" [ "$st" -le $((pt * 2 + 50)) ]
    check "heartbeat: each proxy sees the other" \
        [ "$(stat_of primary "heartbeat['state']")-$(stat_of secondary "heartbeat['state']")" = up-up ]
    check "no failover while both were up: the primary never went alone, the secondary never took over" \
        still_a_pair
    say "heartbeat round trip: $(stat_of primary "heartbeat['rtt_us']") us (primary), $(stat_of secondary "heartbeat['rtt_us']") us (secondary)"
    python3 "$here/labctl.py" "$work/secondary.sock" send shutdown >/dev/null
    check "the primary declares a stopped secondary down" wait_for 10 primary_sees_secondary_down
    check "... after $hb_misses silent heartbeat intervals of $hb_ms ms, not before (it decided after $(stat_of primary "failover['peer_silent_ms']") ms)" \
        [ "$(stat_of primary "failover['peer_silent_ms']")" -ge $((hb_misses * hb_ms)) ]
    check "the primary goes on alone" [ "$(stat_of primary alone)" = True ]
    check "clients are still served, straight from the PVM (50 requests)" \
        in_ns cli python3 "$here/labclient.py" requests 10.77.0.2 50 25000 "$work/www/index.html"
    check "nothing held was lost when the secondary went (accounting)" accounting_holds
}

scenario_diverge() {
    say "scenario diverge: one byte of one file differs on the SVM"
    make_content "$work/www-p"
    make_content "$work/www-s"
    sed -i '$ s/X$/Y/' "$work/www-s/diff"
    start_servers "$work/www-p" "$work/www-s"
    python3 "$here/labctl.py" "$work/primary.sock" agent 20 "$work/checkpoints.log" &
    pids+=($!)
    sleep 0.3
    check "20 requests for identical content, correct bytes" \
        in_ns cli python3 "$here/labclient.py" requests 10.77.0.2 20 21000 "$work/www-p/index.html"
    check "the differing file arrives with the PVM's bytes" \
        in_ns cli python3 "$here/labclient.py" get 10.77.0.2 /diff "$work/www-p/diff"
    check "every PVM frame released (accounting)" accounting_holds
    check "the divergence was found exactly once" [ "$(stat_of primary "divergences['payload']")" = 1 ]
    check "exactly one checkpoint was requested, for the divergence" \
        [ "$(stat_of primary "checkpoint_requests['divergence']")" = 1 ]
    check "the checkpoint listener saw exactly that request" [ "$(cat "$work/checkpoints.log")" = divergence ]
    check "colo-proxy status (DPDK) shows the divergence and the hold latency" \
        sh -c "'$proxy' status --control '$work/primary.sock' | grep -E '^divergences +payload 1,' >/dev/null &&
               '$proxy' status --control '$work/primary.sock' --json | python3 -c 'import json,sys; \
               d=json.load(sys.stdin); sys.exit(not (d[\"hold_latency_seconds\"][\"count\"] > 0 and \
               d[\"role\"] == \"primary\" and d[\"port_link_up\"] == {\"client\": 1, \"pvm\": 1, \"link\": 1}))'"
    check "GET /metrics (DPDK, on the primary's loopback) counts the divergence" \
        sh -c "ip netns exec '$p-ph' python3 -c 'import urllib.request; \
               print(urllib.request.urlopen(\"http://127.0.0.1:9464/metrics\", timeout=5).read().decode())' |
               grep -qx 'colo_proxy_divergences_total{kind=\"payload\"} 1'"
    check "the data plane's divergence became a report that explain reads (the PVM's X against the SVM's Y)" \
        sh -c "'$proxy' explain '$work/reports/divergence-1.txt' | grep -E '^ +\\^\\^' >/dev/null &&
               '$proxy' explain '$work/reports/divergence-1-pvm.pcap' | grep -q '|cept one: X.    |  .*|cept one: Y.    |'"
}

scenario_bad_link() {
    say "scenario bad_link: the link between the proxies drops ${bad_loss} and reorders ${bad_reorder} of its frames"
    python3 "$here/labctl.py" "$work/primary.sock" agent 20 "$work/checkpoints.log" &
    pids+=($!)
    make_content "$work/www"
    start_servers "$work/www" "$work/www"
    check "300 requests over fresh connections, correct bytes" \
        in_ns cli python3 "$here/labclient.py" requests 10.77.0.2 300 28000 "$work/www/index.html"
    check "every PVM frame released (accounting)" accounting_holds
    check "the pair stayed in COLO: the primary never went alone, the secondary never took over" still_a_pair
    say "checkpoint requests by reason: $(stat_of primary checkpoint_requests)"
    kill "$wire_pid" # the cable is cut from here on: its counts
    wait "$wire_pid" 2>/dev/null || true
    say "$(cat "$work/badwire.log")"
    check "the wire did drop and reorder frames" grep -qE "[1-9][0-9]* dropped, [1-9][0-9]* reordered" "$work/badwire.log"
}

# KiB resident that is the proxy's own, and what was counted (under ASan: outside its shadow and quarantine).
resident() { python3 "$here/resident.py" "$1"; }

scenario_flood() {
    say "scenario flood: up to $flood_rate SYNs/s from 100 addresses for ${flood_s}s (a table of $flood_conns connections) while a download and a request loop run"
    make_content "$work/www"
    head -c 20M /dev/urandom >"$work/www/big"
    local sha sources=() before after counted
    sha=$(sha256sum "$work/www/big" | cut -d' ' -f1)
    start_servers "$work/www" "$work/www"
    for i in $(seq 100 199); do
        ip -n "$p-cli" addr add "10.77.0.$i/24" dev br0
        sources+=("10.77.0.$i")
    done
    python3 "$here/labctl.py" "$work/primary.sock" agent 20 "$work/checkpoints.log" & # QEMU: 20 ms checkpoints
    pids+=($!)
    read -r before counted < <(resident "$primary_pid")
    ip netns exec "$p-cli" python3 "$here/labclient.py" download 10.77.0.2 /big "$sha" >"$work/download.log" 2>&1 &
    local download=$!
    ip netns exec "$p-cli" python3 "$here/labclient.py" requests 10.77.0.2 200 27000 "$work/www/index.html" \
        >"$work/loop.log" 2>&1 &
    local loop=$!
    in_ns cli python3 "$here/synflood.py" 10.77.0.2 80 "$flood_s" "$flood_rate" "${sources[@]}" | tee "$work/flood.log"
    read -r after counted < <(resident "$primary_pid")
    check "an established 20 MB download went on through the flood, correct bytes" wait "$download"
    check "200 requests over fresh connections during the flood, correct bytes" wait "$loop"
    check "the flood reached the proxy: over 10000 connections tracked in all" \
        [ "$(stat_of primary "conns['created']")" -gt 10000 ]
    check "the table filled to its bound ($flood_conns) and never held more (most at once: $(stat_of primary "conns['in_use_max']"))" \
        [ "$(stat_of primary "conns['in_use_max']")" -eq "$flood_conns" ]
    say "primary: $before KiB before, $after KiB after, $counted; connections $(stat_of primary conns)"
    check "the primary's memory stayed flat (grew $(((after - before) / 1024)) MiB, bound 16)" \
        [ $((after - before)) -le 16384 ]
    check "every PVM frame released (accounting)" accounting_holds
    check "the pair stayed in COLO through the flood: the primary never went alone, the secondary never took over" still_a_pair
    say "checkpoint requests by reason: $(stat_of primary checkpoint_requests); released by reason: $(stat_of primary released); checkpoints done: $(stat_of primary checkpoints_done)"
}

# What the client side sees from the VM's MAC that announces it: RARP and gratuitous ARP.
watch_announcements() {
    bg_in_ns cli tcpdump -Z root -q -U -n -i eth1 -w "$work/announce.pcap" \
        'ether src 52:54:00:77:00:02 and (ether proto 0x8035 or arp)' 2>/dev/null
    sleep 0.5
}
announcements() { tcpdump -r "$work/announce.pcap" -n 2>/dev/null | wc -l; }

kill_host() { # primary|secondary: the proxy and its guest die at once
    local pid=$primary_pid vm=pvm server=$pvm_server_pid
    [ "$1" = secondary ] && pid=$secondary_pid vm=svm server=$svm_server_pid
    python3 -c 'import time; print("%.6f" % time.time())' >"$work/kill-time.new"
    mv "$work/kill-time.new" "$work/kill-time"
    kill -9 "$pid" 2>/dev/null || true
    ip netns pids "$p-$vm" | xargs -r kill -9
    wait "$pid" "$server" 2>/dev/null || true # quietly: no job-control "Killed" lines
    ip netns del "$p-$vm" # the guest's namespace goes with it, and its NIC
}

scenario_failover() { # primary|secondary
    local victim=$1 sha
    say "scenario failover-$victim: the $victim host dies during a ${failover_mb} MB download and a request loop"
    make_content "$work/www"
    head -c "${failover_mb}M" /dev/urandom >"$work/www/big"
    sha=$(sha256sum "$work/www/big" | cut -d' ' -f1)
    start_servers "$work/www" "$work/www"
    watch_announcements
    echo 0 >"$work/kill-time"
    rm -f "$work/kill-time.started" # left by an earlier failover scenario, it would set the kill off at once
    ip netns exec "$p-cli" python3 "$here/labclient.py" watch 10.77.0.2 /big "$sha" "$work/kill-time" \
        >"$work/watch.log" 2>&1 &
    local download=$!
    ip netns exec "$p-cli" python3 "$here/labclient.py" loop 10.77.0.2 6 26000 "$work/www/index.html" \
        >"$work/loop.log" 2>&1 &
    local requests=$!
    for _ in $(seq 200); do [ -e "$work/kill-time.started" ] && break; sleep 0.05; done
    sleep 0.3 # well into the download
    check "no failover before the kill: the primary never went alone, the secondary never took over" \
        still_a_pair
    kill_host "$victim"
    say "killed the $victim colo-proxy and its guest"
    check "the download completed with correct bytes and no reset" wait "$download"
    check "every request of the loop was answered correctly" wait "$requests"
    say "$(cat "$work/watch.log")"
    say "$(cat "$work/loop.log")"
    if [ "$victim" = primary ]; then
        check "the secondary took over (heartbeat lost on the link and on the client side)" \
            [ "$(stat_of secondary taken_over)-$(stat_of secondary "failover['reason']")" = True-heartbeat ]
        check "... after the kill, not before (no false failover)" decided_after_kill secondary
        say "the secondary decided $(stat_of secondary "failover['peer_silent_ms']") ms after the primary's last heartbeat"
        check "the SVM's VM announced on the client side (RARP, gratuitous ARP): $(announcements) frames" \
            [ "$(announcements)" -ge 2 ]
        check "the SVM sent no resets" [ "$(tcp_counter svm TcpOutRsts)" = 0 ]
    else
        check "the primary went on alone" [ "$(stat_of primary alone)" = True ]
        check "... after the kill, not before (no false failover)" decided_after_kill primary
        check "nothing held was lost when the secondary died (accounting)" accounting_holds
        check "no announcements (the VM never moved)" [ "$(announcements)" = 0 ]
    fi
}

decided_after_kill() { # primary|secondary: its failover decision came after the time in kill-time
    [ "$(stat_of "$1" "failover['at_unix_ms']")" -ge "$(cut -d. -f1 "$work/kill-time")000" ]
}

held_back() { [ "$(stat_of secondary taken_over)" = False ] && [ "$(stat_of secondary takeover_guarded)" -gt 0 ]; }

scenario_link_cut() {
    say "scenario link-cut: the link between the hosts goes down, both hosts stay up"
    make_content "$work/www"
    start_servers "$work/www" "$work/www"
    watch_announcements
    ip netns exec "$p-cli" python3 "$here/labclient.py" loop 10.77.0.2 4 27000 "$work/www/index.html" \
        >"$work/loop.log" 2>&1 &
    local requests=$!
    sleep 1
    python3 -c 'import time; print("%.6f" % time.time())' >"$work/kill-time"
    ip -n "$p-ph" link set lnk down
    say "link down"
    check "every request was answered correctly" wait "$requests"
    say "$(cat "$work/loop.log")"
    check "the primary went on alone" [ "$(stat_of primary alone)" = True ]
    check "... after the cut, not before (no false failover)" decided_after_kill primary
    check "the secondary held back (split-brain guard: the primary still speaks on the client side)" \
        held_back
    check "exactly one side served the clients: the secondary sent nothing on the client side" \
        [ "$(stat_of secondary "ports['client']['tx']")" = 0 ]
    check "no announcements from the secondary" [ "$(announcements)" = 0 ]
    check "nothing held was lost (accounting)" accounting_holds
}

# The VM's vhost-user NIC restarting (as at every COLO checkpoint) on a real net_vhost port, the VM a
# testpmd with virtio_user, on the secondary then on the primary: no namespaces, the checks are vhost_restart.py's.
vhost_restart() {
    say "scenario vhost_restart: the SVM's, then the PVM's vhost-user NIC stops and starts twice, then stays down"
    mkdir -p "$work/vhost"
    python3 "$here/vhost_restart.py" "$proxy" "$work/vhost" || failures=$((failures + $?))
}

# After a scenario with failures: what both proxies and both guests' TCP say, for the CI log.
diagnose() {
    local side ns
    for side in primary secondary; do
        [ -S "$work/$side.sock" ] && say "$side stats: $(python3 "$here/labctl.py" "$work/$side.sock" stats 2>&1)"
        say "$side log (last 20 lines):"
        tail -n 20 "$work/$side.log" | sed "s/^/lab:   /"
    done
    for ns in pvm svm; do
        ip netns pids "$p-$ns" >/dev/null 2>&1 || continue
        say "$ns TCP: $(in_ns "$ns" nstat -az TcpOutRsts TcpRetransSegs TcpExtTCPTimeouts TcpAttemptFails TcpEstabResets 2>/dev/null |
            awk 'NR > 1 {printf "%s %s  ", $1, $2}')"
        say "$ns sockets: $(in_ns "$ns" ss -Htan 2>/dev/null | awk '{print $1}' | sort | uniq -c | tr '\n' ' ')"
    done
    for ns in ph sh; do
        say "$ns interfaces (drops on the proxies' veths):"
        ip -n "$p-$ns" -s link 2>/dev/null | sed "s/^/lab:   /"
    done
    for f in "$work"/*-client.log; do [ -e "$f" ] && say "$(basename "$f"): $(cat "$f")"; done
}

run_scenario() {
    local failed_before=$failures
    case $1 in
    failover | link_cut) heartbeat_opts=(--heartbeat-ms "$hb_ms" --heartbeat-misses "$failover_hb_misses") ;;
    *) heartbeat_opts=(--heartbeat-ms "$hb_ms" --heartbeat-misses "$hb_misses") ;;
    esac
    build_lab
    capture_if_asked
    start_proxies
    "scenario_$1" "${@:2}"
    [ "$failures" = "$failed_before" ] || diagnose
    for side in primary secondary; do
        [ -S "$work/$side.sock" ] && { python3 "$here/labctl.py" "$work/$side.sock" send shutdown >/dev/null 2>&1 || true; }
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
    for ns in cli pvm svm ph sh wire; do ip netns del "$p-$ns" 2>/dev/null || true; done
}

case "$scenario" in
identical | diverge | link_cut) run_scenario "$scenario" ;;
flood) proxy_extra=(--max-conns "$flood_conns"); run_scenario flood ;;
bad_link) bad_link=1; run_scenario bad_link ;;
failover-primary | failover-secondary) run_scenario failover "${scenario#failover-}" ;;
failover) run_scenario failover primary; run_scenario failover secondary; run_scenario link_cut ;;
vhost_restart) vhost_restart ;;
all)
    run_scenario identical
    run_scenario diverge
    run_scenario failover primary
    run_scenario failover secondary
    run_scenario link_cut
    proxy_extra=(--max-conns "$flood_conns")
    run_scenario flood
    proxy_extra=()
    bad_link=1
    run_scenario bad_link
    vhost_restart
    ;;
*) echo "usage: lab.sh [identical|diverge|failover|failover-primary|failover-secondary|link_cut|flood|bad_link|vhost_restart|all]" >&2; exit 2 ;;
esac
say "$failures failed"
exit $((failures > 0))
