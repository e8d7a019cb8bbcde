#!/usr/bin/env python3
"""tests/fuzz/seeds.py OUT_DIR — seed corpora for the libFuzzer targets.

Frames come from pcap_fixtures/ (the recorded PVM/SVM pairs); protocol seeds are
the messages QEMU and the Xen COLO frame really send. Written afresh each time.
"""
import glob
import os
import shutil
import struct
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_FRAMES = 40


def frames(path):
    """Frames of a classic pcap (either byte order), at most MAX_FRAMES."""
    data = open(path, "rb").read()
    if len(data) < 24:
        return []
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, off = [], 24
    while off + 16 <= len(data) and len(out) < MAX_FRAMES:
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def pairs():
    for pvm in sorted(glob.glob(os.path.join(TOP, "pcap_fixtures", "*-pvm.pcap"))):
        svm = pvm[:-len("-pvm.pcap")] + "-svm.pcap"
        if os.path.exists(svm):
            yield os.path.basename(pvm)[:-len("-pvm.pcap")], frames(pvm), frames(svm)


def record(body, vnet=None):
    head = struct.pack(">I", len(body))
    return head + (struct.pack(">I", vnet) if vnet is not None else b"") + body


EXTREME_TIMES = [(1000, 0), (0x7fffffff, 999999), (0x80000000, 0), (0xffffffff, 0xffffffff), (0, 0),
                 (0xffffffff, 999999), (0x80000001, 0x80000000)]


def extreme_times(path):
    """The first records of a little-endian classic pcap, stamped across 2038, at 0xffffffff and back."""
    data = bytearray(open(path, "rb").read())
    at = 24
    for sec, frac in EXTREME_TIMES:
        if at + 16 > len(data):
            break
        struct.pack_into("<II", data, at, sec, frac)
        at += 16 + struct.unpack("<I", data[at + 8:at + 12])[0]
    return bytes(data[:at])


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)


def main():
    out = sys.argv[1]
    shutil.rmtree(out, ignore_errors=True)
    for name, pvm, svm in pairs():
        for i, f in enumerate(pvm[:8]):
            write(out, "parse", "%s-%d" % (name, i), f)
        # compare: raw-frame steps (op 6 = PVM, 7 = SVM), the two sides interleaved
        prog = b"".join(bytes([6 + side, min(len(f), 255)]) + f[:255]
                        for a, b in zip(pvm, svm) for side, f in ((0, a), (1, b)))
        write(out, "compare", name, prog + bytes([8]))  # and a checkpoint
        # rewrite: raw steps from the SVM (op 4) and from the link (op 12)
        write(out, "rewrite", name, b"".join(bytes([4 + 8 * (i % 2), min(len(f), 255)]) + f[:255]
                                             for i, f in enumerate(pvm)))
        write(out, "chardev", name, bytes([7]) + b"".join(record(f) for f in pvm))
        write(out, "chardev", name + "-vnet", bytes([8]) + b"".join(record(b"\0" * 10 + f, 10) for f in svm))
    qmp = [b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, '
           b'"capabilities": ["oob"]}}\r\n',
           b'{"return": {}, "id": 1}\r\n',
           b'{"return": {"status": "active", "mode": "primary", "last-mode": "none", "reason": "none"}, "id": 7}\r\n',
           b'{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "STOP"}\r\n'
           b'{"timestamp": {"seconds": 1700000000, "microseconds": 9}, "event": "RESUME"}\r\n',
           b'{"event": "COLO_EXIT", "data": {"mode": "primary", "reason": "error"}, "timestamp": {}}\r\n',
           b'{"error": {"class": "GenericError", "desc": "caf\\u00e9 \\ud83d\\ude00 \\"quoted\\""}, "id": 3}\r\n']
    for i, m in enumerate(qmp):
        write(out, "qmp", "msg-%d" % i, bytes([i]) + m)
    words = [b"COLO_USERSPACE_PROXY_INIT", b"COLO_CHECKPOINT", b"DO_CHECKPOINT", b"COLO_CHECKPOINT!"]
    write(out, "notify", "words", b"".join(record(w) for w in words))
    for path in sorted(glob.glob(os.path.join(TOP, "pcap_fixtures", "*-pvm.pcap"))):
        data = open(path, "rb").read()
        write(out, "pcap", "head-" + os.path.basename(path), data[:4096])  # cut mid-record
        whole = 24
        for _ in range(4):  # the first records, whole
            whole += 16 + struct.unpack("<I", data[whole + 8:whole + 12])[0]
        write(out, "pcap", "first-" + os.path.basename(path), data[:whole])
    write(out, "pcap", "extreme-times", extreme_times(os.path.join(TOP, "pcap_fixtures", "http-identical-pvm.pcap")))
    conf = (b"# socket mode\n[compare]\nprimary_in = tcp:127.0.0.1:9001\ncompare_timeout = 3000\n"
            b"vnet_hdr_support = true\nvnet-hdr = 12\nbypass = proto=udp,guest_port=123\n[run]\neal = -l 1\n")
    write(out, "settings", "good", conf + b"\0proto=tcp,guest=10.0.0.0/8,guest_port=80; peer=fd00::/16\0" + bytes(48))
    write(out, "settings", "bad", b"[compare]\ncompare_timout=1\nvnet_hdr_support=perhaps\n\0proto=sctpx;;,=\0")
    # witness: ops 1 (signed request: type, pair, sender, counter, no flip), 2 (time), 4 (the holder's turn)
    grant = bytes([1, 1, 1, 1, 1, 0, 255]) + bytes([2, 0x40, 0x33]) + bytes([1, 1, 1, 1, 2, 0, 255])
    write(out, "witness", "grant-renew", grant + bytes([1, 1, 1, 2, 1, 0, 255, 3]))
    write(out, "witness", "holder", bytes([2, 0x40, 0x33]) + bytes([4, 255, 0]) * 3 + bytes([2, 0x30, 0x75, 4, 255, 0]))
    write(out, "witness", "raw", bytes([0, 80]) + b"CLWT\x01\x01" + bytes(74) + bytes([0, 3]) + b"abc")
    # track: a 40-entry table, then crafted keys for one home (op 1) until its window overflows, lookups
    # (op 2), a busy mark (op 3), a RST (op 4) and expiry (op 5)
    crafted = b"".join(bytes([1, 7, 1, i, 2 * i]) + struct.pack("<HH", 100 * i, i) for i in range(40))
    write(out, "track", "one-home", bytes([39]) + bytes(range(16)) + crafted +
          bytes([2, 3, 3, 5, 1, 4, 9, 0x04, 5, 20, 255, 5, 250, 255]))
    write(out, "config", "knobs", b"\x003000\x001000\x011024\x02\x0365536\x0420\x0552:54:00:12:34:56\x00")


if __name__ == "__main__":
    main()
