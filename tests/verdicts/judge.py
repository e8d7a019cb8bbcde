#!/usr/bin/env python3
"""judge.py QEMU_OUT PROXY_OUT — judges verdict_cases' lines for QEMU and colo-proxy.

A verdict is `checkpoint` when a checkpoint was asked for, `match` when every PVM
frame left without one, `held` otherwise. colo-proxy must give the correct verdict on
every case, ask exactly once where it asks, release every PVM frame exactly once in
order. QEMU must give the same verdict where it is right; where docs/qemu-faults.md
says QEMU is wrong, QEMU's behaviour is reported beside colo-proxy's.
"""
import sys


def parse(path):
    cases, handshake = {}, None
    for line in open(path):
        words = line.split()
        if words[:1] == ["handshake"]:
            handshake = words[1]
        elif words[:1] == ["case"]:
            fields = dict(w.split("=", 1) for w in words[2:])
            cases[words[1]] = fields
    return cases, handshake


def verdict(c):
    if int(c["requests"]):
        return "checkpoint"
    return "match" if c["released_before"] == c["sent"] else "held"


def describe(c):
    lost = int(c["sent"]) - int(c["released"])
    return "%s (%s requests, %s/%s released before any flush%s%s)" % (
        verdict(c), c["requests"], c["released_before"], c["sent"],
        ", %d LOST" % lost if lost > 0 else "",
        ", %s out of order" % c["reordered"] if int(c["reordered"]) else "")


def main():
    qemu, q_hs = parse(sys.argv[1])
    proxy, p_hs = parse(sys.argv[2])
    failures = 0

    def say(ok, text):
        nonlocal failures
        failures += not ok
        print("verdicts: %s %s" % ("PASS" if ok else "FAIL", text))

    say(p_hs == "answered" and q_hs == "answered",
        "notify_dev handshake answered (QEMU %s, colo-proxy %s)" % (q_hs, p_hs))
    for name, p in proxy.items():
        q = qemu.get(name)
        expect = p["expect"]
        proxy_ok = (verdict(p) == expect and p["released"] == p["sent"] and p["reordered"] == "0"
                    and (expect == "match" or p["requests"] == "1"))
        if q is None:
            say(False, "%s: QEMU gave no result" % name)
            continue
        if p["qemu_right"] == "1":
            same = verdict(q) == verdict(p) == expect
            say(proxy_ok and same, "%s: both %s — QEMU %s; colo-proxy %s" % (name, expect, describe(q), describe(p)))
        else:
            say(proxy_ok, "%s: colo-proxy %s; QEMU (wrong here) %s"
                % (name, describe(p), describe(q)))
    missing = set(qemu) - set(proxy)
    say(not missing and len(proxy) > 0, "%d cases run on both" % len(proxy))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
