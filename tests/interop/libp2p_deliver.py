#!/usr/bin/env python3
"""Delivers an envelope to a Rogatory node over py-libp2p, an independent libp2p stack.

Dials the node with the sender agency's Ed25519 key as libp2p identity (spec/PROTOCOL.md §7.1:
the peer id is the card's signing key, and the node admits only pinned peers), over TCP with
Noise and Yamux; opens a stream for `/rogatory/envelope/1`; writes the envelope and closes its
write side (the end of the stream ends the request); reads the receipt to the end of the stream.

Usage: libp2p_deliver.py --sender-keys SECRET_KEYS --addr /ip4/…/tcp/…/p2p/PEER
                         --envelope ENVELOPE --out RECEIPT
"""

from __future__ import annotations

import argparse
import os
import sys

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.peerinfo import info_from_p2p_addr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_envelope import load_key_set, read_input  # noqa: E402

ENVELOPE_PROTOCOL = TProtocol("/rogatory/envelope/1")
MAX_RECEIPT = 64 * 1024


async def deliver(seed: bytes, addr: str, envelope: bytes) -> bytes:
    host = new_host(key_pair=create_new_key_pair(seed), muxer_preference="YAMUX")
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        with trio.fail_after(30):
            await host.connect(info)
            stream = await host.new_stream(info.peer_id, [ENVELOPE_PROTOCOL])
            await stream.write(envelope)
            await stream.close_write()
            receipt = b""
            while True:
                try:
                    chunk = await stream.read(65536)
                except StreamEOF:
                    break
                if not chunk:
                    break
                receipt += chunk
                if len(receipt) > MAX_RECEIPT:
                    raise ValueError("the answer is larger than a receipt may be")
        await host.close()
        return receipt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sender-keys", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--envelope", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    keys = load_key_set(read_input(a.sender_keys, "sender keys"))
    envelope = read_input(a.envelope, "envelope")
    receipt = trio.run(deliver, keys.ed25519_seed, a.addr, envelope)
    if not receipt:
        print("FAIL: no receipt (the node closed the stream without answering)")
        return 1
    with open(a.out, "wb") as f:
        f.write(receipt)
    print(f"ok: {len(receipt)}-byte receipt received over py-libp2p")
    return 0


if __name__ == "__main__":
    sys.exit(main())
