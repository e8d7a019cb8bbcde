#!/usr/bin/env bash
# run.sh [PROXY_BINARY [DRIVER_BINARY]] — QEMU 7.2's colo-compare and colo-proxy side by side
# on the cases of docs/qemu-faults.md, same records from the same C driver (verdict_cases),
# both with compare_timeout=1000 and expired_scan_cycle=100, both asking for checkpoints
# on notify_dev. judge.py prints one `verdicts: PASS|FAIL` line per case: where QEMU is
# right both must give the correct verdict; where it is wrong colo-proxy must.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
proxy=${1:-$top/build-release/colo-proxy}
driver=${2:-$top/build-release/tests/verdict_cases}
command -v qemu-system-x86_64 >/dev/null || { echo "verdicts: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 2; }
dir=$(mktemp -d /tmp/colo-verdicts.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

qemu-system-x86_64 -M none -nodefaults -display none -object iothread,id=io1 \
    -chardev "socket,id=pin,path=$dir/q-pin,server=on,wait=off" \
    -chardev "socket,id=sin,path=$dir/q-sin,server=on,wait=off" \
    -chardev "socket,id=out,path=$dir/q-out,server=on,wait=off" \
    -chardev "socket,id=nfy,path=$dir/q-nfy,server=on,wait=off" \
    -object colo-compare,id=c0,primary_in=pin,secondary_in=sin,outdev=out,notify_dev=nfy,iothread=io1,compare_timeout=1000,expired_scan_cycle=100 \
    2>"$dir/qemu.log" &
pids+=($!)
"$proxy" compare --primary_in "unix:$dir/p-pin,server" --secondary_in "unix:$dir/p-sin,server" \
    --outdev "unix:$dir/p-out,server" --notify_dev "unix:$dir/p-nfy,server" \
    --compare_timeout 1000 --expired_scan_cycle 100 2>"$dir/proxy.log" &
pids+=($!)
echo "verdicts: $(qemu-system-x86_64 --version | head -1) colo-compare vs colo-proxy, same records"
"$driver" "$dir/q-pin" "$dir/q-sin" "$dir/q-out" "$dir/q-nfy" >"$dir/qemu.out" &
qd=$!
"$driver" "$dir/p-pin" "$dir/p-sin" "$dir/p-out" "$dir/p-nfy" >"$dir/proxy.out"
wait "$qd"
python3 "$here/judge.py" "$dir/qemu.out" "$dir/proxy.out"
