#!/usr/bin/env python3
"""send.py - a paced UDP frame sender pinned to one CPU.

trafgen pins its sending process to CPU 0 whatever the caller's affinity, so
the suite uses this to make one source's packets leave (and, on veth, be
received by XDP) on a chosen CPU.

Usage: send.py DEV CPU PPS COUNT MAX_SECONDS SMAC DMAC SRC DST DPORT
Sends COUNT frames from SRC to DST:DPORT at PPS (smoothly: it sends what the
clock says is due, then sleeps ~200 us), on CPU, through an AF_PACKET socket
on DEV. Stops at COUNT or MAX_SECONDS; prints the number sent.
"""
import ipaddress
import os
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def frame(smac, dmac, src, dst, dport, payload):
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    ulen = 8 + len(payload)
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 17, ulen)
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", ulen, 17)
    udp = struct.pack("!HHHH", 40000, dport, ulen, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    if s.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0x4000, 64, 17, 0,
                         s.packed, d.packed)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        etype = 0x0800
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, ulen, 17, 64, s.packed, d.packed)
        etype = 0x86DD
    return mac(dmac) + mac(smac) + struct.pack("!H", etype) + ip + udp


def main():
    dev, cpu, pps, count, max_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), \
        int(sys.argv[4]), float(sys.argv[5])
    smac, dmac, src, dst, dport = sys.argv[6:11]
    os.sched_setaffinity(0, {cpu})
    pkt = frame(smac, dmac, src, dst, int(dport), b"A" * 18)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    sent = 0
    t0 = time.monotonic()
    end = t0 + max_s
    while sent < count:
        now = time.monotonic()
        if now >= end:
            break
        # At most 32 per tick, so a stall is not followed by a long burst.
        due = min(count, int((now - t0) * pps) + 1, sent + 32)
        while sent < due:
            try:
                s.send(pkt)
            except OSError:  # a full queue: try again on the next tick
                break
            sent += 1
        time.sleep(0.0002)
    print(sent)


if __name__ == "__main__":
    main()
