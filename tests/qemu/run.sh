#!/usr/bin/env bash
# run.sh [TEST_BINARY [PROXY_BINARY]] — checkpoints against a real QEMU 7.2 COLO pair.
# Starts the pair (colo_pair.py: two -M none QEMUs in the colo state, a
# periodic checkpoint every 2 s), runs test_qemu_colo against the primary's
# spare QMP socket, then socket mode (colo-proxy compare) on a pair of traces
# whose one divergence needs a real checkpoint, then a secondary colo-proxy's
# takeover on the secondary's spare QMP (query-colo-status must report the
# failover), and stops the pair.
# Needs qemu-system-x86 (bookworm's 7.2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${1:-$top/build-release/tests/test_qemu_colo}
proxy=${2:-$top/build-release/colo-proxy}
command -v qemu-system-x86_64 >/dev/null || { echo "qemu: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 2; }
dir=$(mktemp -d /tmp/colo-qemu.XXXXXX)
coproc PAIR { exec python3 "$here/colo_pair.py" "$dir" 2000; }
pair_pid=$PAIR_PID
cleanup() { kill "$pair_pid" 2>/dev/null || true; wait "$pair_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
if ! read -r -t 30 line <&"${PAIR[0]}" || [ "$line" != ready ]; then
    echo "qemu: the COLO pair did not come up" >&2
    exit 1
fi
echo "qemu: $(qemu-system-x86_64 --version | head -1); COLO pair ready"
"$bin" "unix:$dir/proxy.qmp"
echo "qemu: socket mode, a divergence checkpointed by QEMU"
python3 "$top/tests/socket/drive.py" "$proxy" "$top/pcap_fixtures/http-payload-differs-pvm.pcap" \
    "$top/pcap_fixtures/http-payload-differs-svm.pcap" --qmp "unix:$dir/proxy.qmp"
echo "qemu: the secondary colo-proxy takes over; QEMU must hear of it"
"$bin" --takeover "unix:$dir/sec-proxy.qmp"
echo status >&"${PAIR[1]}"
read -r -t 10 status <&"${PAIR[0]}" || status='{}'
python3 - "$status" <<'PY'
import json, sys
st = json.loads(sys.argv[1]).get("secondary", {})
ok = st.get("mode") == "none" and st.get("last-mode") == "secondary" and st.get("reason") == "request"
print("qemu: %s the secondary QEMU reports the failover colo-proxy asked for: %s" % ("PASS" if ok else "FAIL", json.dumps(st)))
sys.exit(0 if ok else 1)
PY
