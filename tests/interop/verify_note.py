#!/usr/bin/env python3
"""Independent check of Rogatory's audit checkpoints and proofs.

Verifies, with code written from the C2SP specifications and RFC 9162 alone (Python's
`cryptography` for Ed25519, `hashlib` for SHA-256; nothing shared with Rogatory):

  * a C2SP signed note (tlog-checkpoint) against a C2SP verifier key (type 0x01): the key id
    formula, the note layout, the Ed25519 signature over the note text;
  * a c2sp.org/tlog-proof@v1 proof: its checkpoint as above, and the RFC 9162 §2.1.3.2
    inclusion of SHA-256(0x00 || extra) at `index`;
  * the cosignatures in spec/vectors/receipts.json (spec/PROTOCOL.md §6.4): the carried
    checkpoint against its log key (type 0x01), then the C2SP cosignature/v1 line (type 0x04):
    key id, timestamp, Ed25519 over "cosignature/v1\ntime T\n" + the checkpoint body, and that
    the receipt's CBOR payload carries exactly that line.

Usage: verify_note.py --vkey VKEY (--note FILE | --proof FILE)
       verify_note.py --receipt-vectors FILE
Exit status 0 only if everything verifies.
"""

import argparse
import base64
import hashlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def parse_vkey(vkey, sig_type=0x01):
    name, key_id, rest = vkey.split("+", 2)
    raw = base64.b64decode(rest, validate=True)
    if raw[0] != sig_type or len(raw) != 33:
        fail(f"the verifier key is not a type {sig_type:#04x} Ed25519 key")
    computed = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if computed.hex() != key_id:
        fail(f"key id {key_id} does not match the name and key ({computed.hex()})")
    return name, computed, Ed25519PublicKey.from_public_bytes(raw[1:])


def verify_note(note, vkey):
    name, key_id, public = parse_vkey(vkey)
    text_end = note.rfind("\n\n")
    if text_end < 0:
        fail("no blank line between the text and the signatures")
    text, sigs = note[: text_end + 1], note[text_end + 2 :]
    verified = False
    for line in sigs.split("\n")[:-1]:
        if not line.startswith("\u2014 "):
            fail(f"bad signature line {line!r}")
        sig_name, b64 = line[2:].split(" ")
        blob = base64.b64decode(b64, validate=True)
        if sig_name != name or blob[:4] != key_id:
            continue  # an unknown key: ignored, as the specification requires
        try:
            public.verify(blob[4:], text.encode())
        except InvalidSignature:
            fail(f"the signature of {name} does not verify")
        verified = True
    if not verified:
        fail("no signature from the given key")
    lines = text.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    if origin != name and not origin.startswith(name + "/case/"):
        fail(f"origin {origin} is not a log of key {name}")
    print(f"ok: checkpoint of {origin} at size {size} signed by {name}")
    return size, root


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_receipt_cosignatures(path):
    import json

    import cbor2

    doc = json.load(open(path, encoding="utf-8"))
    checked = 0
    for r in doc["receipts"]:
        line = r.get("cosignature_text")
        if line is None:
            continue
        verify_note(r["carried_checkpoint"], r["carried_checkpoint_verifier_key"])
        carried = r["carried_checkpoint"]
        body = carried[: carried.rfind("\n\n") + 1]
        name, key_id, public = parse_vkey(r["witness_verifier_key"], 0x04)
        if not line.startswith("\u2014 ") or not line.endswith("\n") or line.count("\n") != 1:
            fail(f"not one signature line: {line!r}")
        sig_name, b64 = line[2:-1].split(" ")
        blob = base64.b64decode(b64, validate=True)
        if sig_name != name or blob[:4] != key_id or len(blob) != 4 + 8 + 64:
            fail("the cosignature is not by the witness key, or not 76 bytes")
        ts = int.from_bytes(blob[4:12], "big")
        if ts != r["cosignature_timestamp"]:
            fail(f"timestamp {ts} is not {r['cosignature_timestamp']}")
        try:
            public.verify(blob[12:], f"cosignature/v1\ntime {ts}\n".encode() + body.encode())
        except InvalidSignature:
            fail("the cosignature does not verify")
        sign1 = cbor2.loads(bytes.fromhex(r["bytes"]))
        payload = cbor2.loads(sign1.value[2] if hasattr(sign1, "value") else sign1[2])
        if payload.get("cosignature") != line.encode():
            fail("the receipt's payload does not carry that cosignature line")
        print(f"ok: cosignature by {name} at {ts} of {body.splitlines()[0]}")
        checked += 1
    if checked == 0:
        fail("no receipt with a cosignature in the vectors")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vkey", help="the agency's C2SP verifier key")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--note", help="a signed checkpoint (rogatory audit checkpoint)")
    g.add_argument("--proof", help="a tlog-proof (rogatory audit prove)")
    g.add_argument("--receipt-vectors", help="spec/vectors/receipts.json")
    a = ap.parse_args()
    if a.receipt_vectors:
        verify_receipt_cosignatures(a.receipt_vectors)
        return
    if not a.vkey:
        fail("--vkey is required with --note and --proof")
    if a.note:
        verify_note(open(a.note, encoding="utf-8").read(), a.vkey)
        return
    text = open(a.proof, encoding="utf-8").read()
    header, rest = text.split("\n", 1)
    if header != "c2sp.org/tlog-proof@v1":
        fail("not a tlog-proof")
    head, checkpoint = rest.split("\n\n", 1)
    lines = head.split("\n")
    extra = None
    if lines[0].startswith("extra "):
        extra = base64.b64decode(lines.pop(0)[6:], validate=True)
    index = int(lines.pop(0)[len("index ") :])
    proof = [base64.b64decode(l, validate=True) for l in lines if l]
    size, root = verify_note(checkpoint, a.vkey)
    if extra is None:
        fail("the proof carries no entry")
    leaf = hashlib.sha256(b"\x00" + extra).digest()
    if not verify_inclusion(index, size, leaf, proof, root):
        fail(f"entry {index} is not included at size {size}")
    print(f"ok: entry {index} is included in the tree of size {size}")


if __name__ == "__main__":
    main()
