#!/usr/bin/env python3
"""Independent check of Rogatory's audit checkpoints and proofs.

Verifies, with code written from the C2SP specifications and RFC 9162 alone (Python's
`cryptography` for Ed25519, `hashlib` for SHA-256; nothing shared with Rogatory):

  * a C2SP signed note (tlog-checkpoint) against a C2SP verifier key (type 0x01): the key id
    formula, the note layout, the Ed25519 signature over the note text;
  * a c2sp.org/tlog-proof@v1 proof: its checkpoint as above, and the RFC 9162 §2.1.3.2
    inclusion of SHA-256(0x00 || extra) at `index`.

Usage: verify_note.py --vkey VKEY (--note FILE | --proof FILE)
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


def parse_vkey(vkey):
    name, key_id, rest = vkey.split("+", 2)
    raw = base64.b64decode(rest, validate=True)
    if raw[0] != 0x01 or len(raw) != 33:
        fail("the verifier key is not an Ed25519 (type 0x01) key")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vkey", required=True, help="the agency's C2SP verifier key")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--note", help="a signed checkpoint (rogatory audit checkpoint)")
    g.add_argument("--proof", help="a tlog-proof (rogatory audit prove)")
    a = ap.parse_args()
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
