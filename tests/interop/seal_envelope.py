#!/usr/bin/env python3
"""Independent sealing of a Rogatory envelope, from spec/PROTOCOL.md §3 alone.

The reverse of verify_envelope.py: seals a message for one addressee with cbor2 (deterministic
encoding as RFC 8949 §4.2.1 orders maps), `cryptography` (Ed25519, X25519, HKDF-SHA256,
ChaCha20-Poly1305) and hashlib, sharing no code with Rogatory, so that the `rogatory` binary can
be asked to open it. The card and key-set readers are verify_envelope.py's (the same
independent code).

It can also carry a checkpoint of the sender's log of the case (a C2SP signed note it signs
itself, of a one-entry tree), and check the receipt the node returns: its COSE_Sign1 signature
with pycose against the issuer's card, that it accepts exactly this envelope, and the issuer's
cosignature of the checkpoint, byte for byte as spec/PROTOCOL.md §6.4 states it.

Usage: seal_envelope.py seal --sender-keys SECRET_KEYS --sender-card CARD --recipient-card CARD
                             --case UUID --type TYPE --message-cbor HEX --out ENVELOPE
                             [--sequence N --previous ENVELOPE-ID-HEX] [--checkpoint]
       seal_envelope.py check-receipt --receipt RECEIPT --envelope ENVELOPE --issuer-card CARD
                             [--checkpoint-body FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import time
import uuid

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_envelope import (  # noqa: E402  (the independent readers of cards and keys)
    ALG_CHACHA20_POLY1305, ALG_ECDH_ES_HKDF_256, ALG_EDDSA, CRV_X25519, H_ALG, H_EPHEMERAL_KEY,
    H_IV, H_KID, K_CRV, K_KTY, K_X, KTY_OKP, L_CASE_COMMITMENT, L_CASE_ID, L_FROM, L_MESSAGE_ID,
    L_CHECKPOINT, L_MESSAGE_TYPE, L_PREVIOUS, L_RECIPIENTS, L_SENT_AT, L_SEQUENCE, L_TO,
    L_VERSION, PROTOCOL_VERSION, TAG_ENCRYPT, TAG_SIGN1, Report, case_commitment, cbor_decode,
    decode_sign1, deterministic_bytes, load_key_set, parse_card, pycose_verify, read_input,
)


def sign1(seed: bytes, protected: dict, payload: bytes) -> bytes:
    """A tagged COSE_Sign1 (RFC 9052 §4.2), EdDSA, empty unprotected header."""
    protected_bytes = deterministic_bytes(protected)
    to_sign = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(to_sign)
    return deterministic_bytes(cbor2.CBORTag(TAG_SIGN1, [protected_bytes, {}, payload, signature]))


def encrypt(recipient_x25519: bytes, recipient_kid: bytes, plaintext: bytes) -> bytes:
    """A tagged COSE_Encrypt with one recipient: ECDH-ES + HKDF-256 over X25519 (RFC 9053 §6.1),
    ChaCha20/Poly1305 content encryption (RFC 9053 §4.4)."""
    ephemeral = X25519PrivateKey.generate()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_x25519))
    recipient_protected = deterministic_bytes({H_ALG: ALG_ECDH_ES_HKDF_256})
    kdf_context = cbor2.dumps([
        ALG_CHACHA20_POLY1305,
        [None, None, None],
        [None, None, None],
        [256, recipient_protected],
    ])
    cek = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=kdf_context).derive(shared)
    protected = deterministic_bytes({H_ALG: ALG_CHACHA20_POLY1305})
    iv = os.urandom(12)
    enc_structure = cbor2.dumps(["Encrypt", protected, b""])
    ciphertext = ChaCha20Poly1305(cek).encrypt(iv, plaintext, enc_structure)
    eph_x = ephemeral.public_key().public_bytes_raw()
    recipient = [
        recipient_protected,
        {H_KID: recipient_kid, H_EPHEMERAL_KEY: {K_KTY: KTY_OKP, K_CRV: CRV_X25519, K_X: eph_x}},
        b"",
    ]
    return deterministic_bytes(cbor2.CBORTag(TAG_ENCRYPT, [protected, {H_IV: iv}, ciphertext,
                                                          [recipient]]))


def key_id(name: str, sig_type: int, public: bytes) -> bytes:
    """C2SP signed-note key id: the first 4 bytes of SHA-256(name || 0x0A || type || key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public).digest()[:4]


def signed_checkpoint(seed: bytes, agency: str, case: uuid.UUID) -> tuple[str, bytes]:
    """A checkpoint of a one-entry log of the case (C2SP tlog-checkpoint), signed as a C2SP
    signed note (Ed25519, type 0x01) under the agency's log key name (spec/PROTOCOL.md §6.2).
    Returns the body and the note bytes."""
    name = f"rogatory.{agency}"
    root = hashlib.sha256(b"\x00" + b"an entry of the independent implementation").digest()
    body = f"{name}/case/{case}\n1\n{base64.b64encode(root).decode()}\n"
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    sig = key.sign(body.encode())
    line = f"\u2014 {name} {base64.b64encode(key_id(name, 0x01, public) + sig).decode()}\n"
    return body, (body + "\n" + line).encode()


def seal(a: argparse.Namespace) -> int:
    report = Report(True)
    keys = load_key_set(read_input(a.sender_keys, "sender keys"))
    sender = parse_card(read_input(a.sender_card, "sender card"), "sender card", report)
    recipient = parse_card(read_input(a.recipient_card, "recipient card"), "recipient card", report)
    case = uuid.UUID(a.case)
    case_id = case.bytes
    message_id = uuid.uuid4().bytes  # any UUID version is accepted (§3.2)
    message = bytes.fromhex(a.message_cbor)

    # Steps 1-2: the message signed with the inner header (§3.3, §3.4).
    inner = sign1(keys.ed25519_seed, {
        H_ALG: ALG_EDDSA,
        H_KID: sender.sign_kid,
        L_VERSION: PROTOCOL_VERSION,
        L_FROM: sender.id,
        L_MESSAGE_ID: message_id,
        L_CASE_ID: case_id,
        L_MESSAGE_TYPE: a.type,
        L_RECIPIENTS: [recipient.id],
    }, message)
    # Step 3: encrypted for the addressee (§3.5).
    encrypted = encrypt(recipient.enc_x, recipient.enc_kid, inner)
    # Step 4: signed again with the routing header (§3.6, §3.7).
    outer = {
        H_ALG: ALG_EDDSA,
        H_KID: sender.sign_kid,
        L_VERSION: PROTOCOL_VERSION,
        L_FROM: sender.id,
        L_TO: recipient.id,
        L_MESSAGE_ID: message_id,
        L_SENT_AT: int(time.time()),
        L_CASE_COMMITMENT: case_commitment(case_id),
        L_SEQUENCE: a.sequence,
    }
    if a.sequence > 1:
        outer[L_PREVIOUS] = bytes.fromhex(a.previous)
    if a.checkpoint:
        body, note = signed_checkpoint(keys.ed25519_seed, sender.id, case)
        outer[L_CHECKPOINT] = note
        with open(a.out + ".checkpoint-body", "w", encoding="utf-8") as f:
            f.write(body)
    envelope = sign1(keys.ed25519_seed, outer, encrypted)
    with open(a.out, "wb") as f:
        f.write(envelope)
    print(f"sealed {len(envelope)} bytes, envelope id {hashlib.sha256(envelope).hexdigest()}")
    return 0


def check_receipt(a: argparse.Namespace) -> int:
    report = Report(True)
    issuer = parse_card(read_input(a.issuer_card, "issuer card"), "issuer card", report)
    raw = read_input(a.receipt, "receipt")
    envelope = read_input(a.envelope, "envelope")
    signed = decode_sign1(raw, {H_ALG, H_KID}, "receipt")
    if signed.header[H_KID] != issuer.sign_kid:
        print("FAIL: the receipt is not signed with the issuer's card key")
        return 1
    pycose_verify(raw, issuer.sign_x, "receipt")
    r = cbor_decode(signed.payload, "receipt payload")
    problems = []
    if r.get("event") != "accepted":
        problems.append(f"event {r.get('event')!r} (reason {r.get('reason')!r}: {r.get('detail')!r})")
    if r.get("envelope_id") != hashlib.sha256(envelope).digest():
        problems.append("envelope_id is not the SHA-256 of the envelope")
    if r.get("from") != issuer.id:
        problems.append(f"from {r.get('from')!r} is not {issuer.id}")
    if a.checkpoint_body:
        body = open(a.checkpoint_body, encoding="utf-8").read()
        line = r.get("cosignature", b"").decode()
        name = f"rogatory.{issuer.id}"
        if not (line.startswith("\u2014 " + name + " ") and line.endswith("\n")
                and line.count("\n") == 1):
            problems.append(f"the cosignature is not one signature line by {name}: {line!r}")
        else:
            blob = base64.b64decode(line[len(name) + 3:-1], validate=True)
            ts = int.from_bytes(blob[4:12], "big")
            if blob[:4] != key_id(name, 0x04, issuer.sign_x) or len(blob) != 76:
                problems.append("the cosignature's key id is not the issuer's witness key")
            try:
                Ed25519PublicKey.from_public_bytes(issuer.sign_x).verify(
                    blob[12:], f"cosignature/v1\ntime {ts}\n".encode() + body.encode())
            except InvalidSignature:
                problems.append("the cosignature does not verify")
    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        return 1
    print(f"ok: {issuer.id}'s receipt verifies and accepts envelope "
          f"{hashlib.sha256(envelope).hexdigest()}"
          + ("; its cosignature of our checkpoint verifies" if a.checkpoint_body else ""))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seal", help="seal a message for one addressee")
    s.add_argument("--sender-keys", required=True)
    s.add_argument("--sender-card", required=True)
    s.add_argument("--recipient-card", required=True)
    s.add_argument("--case", required=True, help="the case id (a UUIDv7)")
    s.add_argument("--type", required=True, help="the message type (spec/PROTOCOL.md §5)")
    s.add_argument("--message-cbor", required=True, help="the message's CBOR, as hex")
    s.add_argument("--out", required=True)
    s.add_argument("--sequence", type=int, default=1)
    s.add_argument("--previous", help="the previous envelope's id, hex (with --sequence > 1)")
    s.add_argument("--checkpoint", action="store_true",
                   help="carry a signed checkpoint (its body is written to OUT.checkpoint-body)")
    c = sub.add_parser("check-receipt", help="check the receipt of an envelope sealed here")
    c.add_argument("--receipt", required=True)
    c.add_argument("--envelope", required=True)
    c.add_argument("--issuer-card", required=True)
    c.add_argument("--checkpoint-body", help="the body of the checkpoint the envelope carried")
    a = ap.parse_args()
    return seal(a) if a.command == "seal" else check_receipt(a)


if __name__ == "__main__":
    sys.exit(main())
