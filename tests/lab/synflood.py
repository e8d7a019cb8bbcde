#!/usr/bin/env python3
"""synflood.py DST PORT SECONDS RATE SRC... — TCP SYNs to DST:PORT, RATE per second at most.

Each SYN comes from one of the SRC addresses (which the sender's namespace owns, so the
guest's SYN-ACKs reach it and its kernel resets them) and a source port of its own: every
SYN is a new connection for the proxies to track. Prints the number sent and the rate.
Only for addresses inside the lab's own network namespaces.
"""
import random
import socket
import struct
import sys
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def syn(src, dst, sport, dport, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + tcp


def main():
    dst, dport, seconds, rate, sources = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), \
        sys.argv[5:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent, t0, port = 0, time.time(), 1024
    while time.time() - t0 < seconds:
        ahead = sent / rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
        for src in sources:
            port = port + 1 if port < 65000 else 1024
            try:
                s.sendto(syn(src, dst, port, dport, random.getrandbits(32)), (dst, 0))
                sent += 1
            except OSError:
                time.sleep(0.001)  # the queue is full: let it drain
    print("%d SYNs in %.1f s: %.0f/s from %d addresses" % (sent, time.time() - t0, sent / (time.time() - t0),
                                                       len(sources)))


if __name__ == "__main__":
    main()
