#!/usr/bin/env python3
"""Builds key histories in Python, to test verify_keys.py and the rogatory binary against them.

Everything is encoded here with cbor2 and signed with `cryptography`, from the format that
verify_keys.py describes (its decoding and replay are reused to read the input history).

Subcommands:
  extend HISTORY --out OUT [--root-key RK]... [--online-keys SK] [--revoke KID|signing]
         [--reason R] [--at-delta N] [--prev-of payload|bytes] [--agency ID]
         [--reuse-encryption-key KID_PREFIX]
      Appends one statement: a new card (fresh keys; prints the new signing key id), or with
      --revoke a revocation.  It is signed by each --root-key (a COSE_Key with its secret in -4,
      like the data directory's root-key.cose) and, with --online-keys (the data directory's
      secret-keys.cose), by the agency's current online signing key.  With --online-keys alone,
      that is a rotation forged by someone who took the node but not the root.  --at-delta sets
      `at` relative to the last statement's; --prev-of bytes hashes the previous statement's
      bytes instead of its payload; --agency puts another agency's card in it;
      --reuse-encryption-key lists an encryption key of an earlier card again.
  flip-signature HISTORY OUT [--statement N]
      Flips one bit in the middle of the last signature of statement N (default: the last).
  drop HISTORY OUT --statement N
      Removes statement N, leaving the others as they are.
  synth --out OUT [--agency ID] [--threshold K] [--root-keys N] [--fault F]
      A whole history under a K-of-N root (default 2 of 3): genesis; a rotation signed by K root
      keys and endorsed; the revocation of the replaced signing key; a new 1-of-1 root signed by K
      old keys and the new; a rotation signed by the new root and endorsed.  --fault breaks one
      rule (see --help); the history must then be refused.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_keys as vk  # noqa: E402  (the decoding and replay of the format)

FAULTS = {
    "none": "none",
    "genesis-below-threshold": "the genesis is signed by K-1 root keys",
    "card-below-threshold": "the first rotation is signed by K-1 root keys (and endorsed)",
    "root-change-without-new-key": "the new root is signed by K old keys only",
    "old-root-after-change": "the last rotation is signed by K keys of the replaced root",
    "revoked-key-endorses": "the current signing key is revoked, then endorses the next rotation",
    "stranger-signs": "the first rotation also carries the signature of an unknown key",
}


# --- Keys ----------------------------------------------------------------------------------

class Signer:
    """An Ed25519 key: seed, public x, kid (RFC 9679 thumbprint)."""

    def __init__(self, seed: bytes | None = None):
        self.sk = Ed25519PrivateKey.from_private_bytes(seed) if seed else Ed25519PrivateKey.generate()
        self.x = self.sk.public_key().public_bytes_raw()
        self.kid = vk.thumbprint(vk.CRV_ED25519, self.x)

    def cose_key(self) -> bytes:
        return vk.canonical({1: vk.KTY_OKP, 2: self.kid, 3: vk.ALG_EDDSA, -1: vk.CRV_ED25519, -2: self.x})


def x25519_cose_key(x: bytes) -> bytes:
    kid = vk.thumbprint(vk.CRV_X25519, x)
    return vk.canonical({1: vk.KTY_OKP, 2: kid, 3: vk.ALG_ECDH_ES_HKDF_256, -1: vk.CRV_X25519, -2: x})


def load_secret_cose_key(raw: bytes, what: str) -> Signer:
    key = vk.decode_one(raw, what)
    vk.need(isinstance(key, dict) and key.get(-1) == vk.CRV_ED25519 and isinstance(key.get(-4), bytes),
            f"{what}: not an Ed25519 COSE_Key with its secret (-4)")
    s = Signer(key[-4])
    vk.need(s.x == key.get(-2), f"{what}: the public key does not match the seed")
    return s


def load_online_key(path: str) -> Signer:
    """The signing key of a data directory's secret-keys.cose: the array's Ed25519 key."""
    keys = vk.decode_one(vk.read_input(path), path)
    vk.need(isinstance(keys, list), f"{path}: not a CBOR array of COSE_Keys")
    ed = [k for k in keys if isinstance(k, dict) and k.get(-1) == vk.CRV_ED25519]
    vk.need(len(ed) == 1, f"{path}: expected exactly one Ed25519 key")
    return load_secret_cose_key(cbor2.dumps(ed[0]), path)


# --- Encoding ------------------------------------------------------------------------------

def make_card(agency: str, issued_at: int, sign: Signer, enc_x: bytes, like: dict | None = None) -> bytes:
    like = like or {}
    body = {
        "version": 1, "id": agency, "name": like.get("name", f"Agency {agency}"),
        "country": agency[:2], "roles": like.get("roles", ["central-authority"]),
        "keys": [
            {"use": "sign", "cose_key": sign.cose_key(), "valid_from": issued_at},
            {"use": "encrypt", "cose_key": x25519_cose_key(enc_x), "valid_from": issued_at},
        ],
        "addresses": like.get("addresses", ["/ip4/127.0.0.1/tcp/4100"]),
        "languages": like.get("languages", ["en"]), "legal_bases": like.get("legal_bases", []),
        "issued_at": issued_at,
    }
    payload = vk.canonical(body)
    protected = vk.canonical({1: vk.ALG_EDDSA, 4: sign.kid})
    sig = sign.sk.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
    return cbor2.dumps(cbor2.CBORTag(vk.TAG_SIGN1, [protected, {}, payload, sig]))


def fresh_x25519() -> bytes:
    return X25519PrivateKey.generate().public_key().public_bytes_raw()


def make_statement(body: dict, signers: list[Signer]) -> bytes:
    payload = vk.canonical(body)
    sigs = []
    for s in sorted(signers, key=lambda s: s.kid):
        protected = vk.canonical({1: vk.ALG_EDDSA, 4: s.kid})
        sigs.append([protected, {}, s.sk.sign(cbor2.dumps(["Signature", b"", protected, b"", payload]))])
    return cbor2.dumps(cbor2.CBORTag(vk.TAG_SIGN, [b"", {}, payload, sigs]))


def encode_history(statements: list[bytes]) -> bytes:
    return cbor2.dumps(statements)


def write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def read_history(path: str) -> list[bytes]:
    arr = vk.decode_one(vk.read_input(path), path)
    vk.need(isinstance(arr, list) and arr and all(isinstance(s, bytes) for s in arr),
            f"{path}: not a key history file")
    return arr


# --- Subcommands ---------------------------------------------------------------------------

def cmd_extend(a: argparse.Namespace) -> None:
    raws = read_history(a.history)
    h = vk.replay(raws)
    last = h.statements[-1]
    body = {"version": 1, "agency": h.agency, "seq": len(raws),
            "prev": hashlib.sha256(last.payload if a.prev_of == "payload" else last.raw).digest(),
            "at": max(0, h.last_at + a.at_delta)}
    signers = [load_secret_cose_key(vk.read_input(p), p) for p in a.root_key]
    if a.online_keys:
        online = load_online_key(a.online_keys)
        vk.need(online.kid == h.card.sign.kid,
                f"{a.online_keys}: its signing key is not the current card's ({vk.short(h.card.sign.kid)}…)")
        signers.append(online)
    if a.revoke:
        kid = h.card.sign.kid if a.revoke == "signing" else bytes.fromhex(a.revoke)
        body.update(kind="revoke", revoke={"kid": kid, "reason": a.reason, "effective": body["at"]})
        print(kid.hex())
    else:
        new = Signer()
        enc_x = fresh_x25519()
        if a.reuse_encryption_key:
            old = [c.enc for c in h.cards if c.enc.kid.hex().startswith(a.reuse_encryption_key.lower())]
            vk.need(len(old) >= 1, f"no earlier card lists encryption key {a.reuse_encryption_key}")
            enc_x = old[0].x
        card = make_card(a.agency or h.agency, body["at"], new, enc_x, h.card.body)
        body.update(kind="card", card=card)
        print(new.kid.hex())
    write(a.out, encode_history(raws + [make_statement(body, signers)]))


def cmd_flip_signature(a: argparse.Namespace) -> None:
    raws = read_history(a.history)
    n = len(raws) - 1 if a.statement is None else a.statement
    st = vk.parse_statement(raws[n], n)
    raw = bytearray(raws[n])
    vk.need(bytes(raw[-64:]) == st.sigs[-1].signature, "the last 64 bytes are not the last signature")
    raw[-32] ^= 0x01
    raws[n] = bytes(raw)
    write(a.out, encode_history(raws))


def cmd_drop(a: argparse.Namespace) -> None:
    raws = read_history(a.history)
    vk.need(0 <= a.statement < len(raws), "no such statement")
    del raws[a.statement]
    write(a.out, encode_history(raws))


def cmd_synth(a: argparse.Namespace) -> None:
    k, n, f = a.threshold, a.root_keys, a.fault
    vk.need(1 <= k <= n, "1 <= threshold <= root keys")
    root = [Signer() for _ in range(n)]
    t0 = 1_780_000_000
    statements: list[bytes] = []
    payloads: list[bytes] = []

    def add(body: dict, signers: list[Signer]) -> None:
        base = {"version": 1, "agency": a.agency, "seq": len(statements), "at": t0 + 10 * len(statements)}
        if statements:
            base["prev"] = hashlib.sha256(payloads[-1]).digest()
        payloads.append(vk.canonical({**base, **body}))
        statements.append(make_statement({**base, **body}, signers))

    def root_set(keys: list[Signer], threshold: int) -> dict:
        return {"threshold": threshold, "keys": [s.cose_key() for s in sorted(keys, key=lambda s: s.kid)]}

    a1 = Signer()
    add({"kind": "genesis", "root": root_set(root, k), "card": make_card(a.agency, t0, a1, fresh_x25519())},
        root[:k - 1] if f == "genesis-below-threshold" else root[:k])
    b1 = Signer()
    extra = [Signer()] if f == "stranger-signs" else []
    add({"kind": "card", "card": make_card(a.agency, t0 + 10, b1, fresh_x25519())},
        (root[1:k] if f == "card-below-threshold" else root[n - k:]) + [a1] + extra)
    revoked = b1 if f == "revoked-key-endorses" else a1
    add({"kind": "revoke", "revoke": {"kid": revoked.kid, "reason": "superseded", "effective": t0 + 15}},
        root[:k])
    r2 = Signer()
    add({"kind": "root", "root": root_set([r2], 1)},
        root[:k] if f == "root-change-without-new-key" else root[:k] + [r2])
    c1 = Signer()
    add({"kind": "card", "card": make_card(a.agency, t0 + 40, c1, fresh_x25519())},
        (root[:k] if f == "old-root-after-change" else [r2]) + [b1])
    write(a.out, encode_history(statements))
    print(c1.kid.hex())


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extend", help="append a card or revoke statement")
    e.add_argument("history")
    e.add_argument("--out", required=True)
    e.add_argument("--root-key", action="append", default=[], metavar="FILE")
    e.add_argument("--online-keys", metavar="SECRET_KEYS")
    e.add_argument("--revoke", metavar="KID|signing")
    e.add_argument("--reason", default="compromised", choices=vk.REASONS)
    e.add_argument("--at-delta", type=int, default=0)
    e.add_argument("--prev-of", choices=("payload", "bytes"), default="payload")
    e.add_argument("--agency")
    e.add_argument("--reuse-encryption-key", metavar="KID_PREFIX")
    fl = sub.add_parser("flip-signature", help="flip a bit of a signature")
    fl.add_argument("history")
    fl.add_argument("out")
    fl.add_argument("--statement", type=int)
    d = sub.add_parser("drop", help="remove one statement")
    d.add_argument("history")
    d.add_argument("out")
    d.add_argument("--statement", type=int, required=True)
    s = sub.add_parser("synth", help="a whole k-of-n history",
                       epilog="faults: " + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()))
    s.add_argument("--out", required=True)
    s.add_argument("--agency", default="XE.MOJ-CA")
    s.add_argument("--threshold", type=int, default=2)
    s.add_argument("--root-keys", type=int, default=3)
    s.add_argument("--fault", choices=sorted(FAULTS), default="none")
    a = p.parse_args(argv)
    try:
        {"extend": cmd_extend, "flip-signature": cmd_flip_signature, "drop": cmd_drop,
         "synth": cmd_synth}[a.cmd](a)
    except vk.Refused as err:
        print(f"forge_keys: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
