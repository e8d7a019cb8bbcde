#!/usr/bin/env python3
"""resident.py PID — how much of a colo-proxy's resident memory is its own, for the memory checks.

Prints "KIB WHAT": KiB resident, and a few words saying what was counted.

  * An ordinary build: VmRSS, all of it.
  * Under AddressSanitizer (its shadow mapped from 0x7fff8000): the resident size of every
    mapping outside ASan's shadow (0x7fff8000 up to 0x10007fff8000) and outside its
    allocator's region for small blocks (0x600000000000 up to 0x640000000000). ASan keeps
    every freed block in a quarantine (256 MiB by default) and marks it in the shadow, so
    those two grow with what the proxy has ever freed, not with what it holds. What is
    left is the proxy's own: the connection table, the record slot pools, large blocks,
    DPDK's memory, stacks. Growth of small heap blocks is measured on the optimised build.

Also a module: resident_kib(pid) returns (kib, what).
"""
import re
import sys

SHADOW = (0x7FFF8000, 0x10007FFF8000)
ALLOCATOR = (0x600000000000, 0x640000000000)


def under_asan(pid):
    for line in open("/proc/%d/maps" % pid):
        start = int(line.split("-", 1)[0], 16)
        if start == SHADOW[0] or "libasan" in line or "libclang_rt.asan" in line:
            return True
    return False


def vm_rss_kib(pid):
    return int(re.search(r"^VmRSS:\s*(\d+)", open("/proc/%d/status" % pid).read(), re.M).group(1))


def outside_asan_kib(pid):
    kib, inside = 0, False
    for line in open("/proc/%d/smaps" % pid):
        m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ ", line)
        if m:
            start = int(m.group(1), 16)
            inside = SHADOW[0] <= start < SHADOW[1] or ALLOCATOR[0] <= start < ALLOCATOR[1]
            continue
        m = re.match(r"^Rss:\s+(\d+) kB", line)
        if m and not inside:
            kib += int(m.group(1))
    return kib


def resident_kib(pid):
    if under_asan(pid):
        return outside_asan_kib(pid), "resident outside ASan's shadow and small-block heap (under ASan)"
    return vm_rss_kib(pid), "resident (VmRSS)"


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    kib, what = resident_kib(int(sys.argv[1]))
    print(kib, what)


if __name__ == "__main__":
    main()
