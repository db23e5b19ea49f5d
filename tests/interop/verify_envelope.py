#!/usr/bin/env python3
"""Independent-implementation interoperability check for Rogatory envelopes.

Verifies an envelope sealed by the Rust implementation (proto-types) using nothing from it:
only the format as spec/PROTOCOL.md §3 and RFC 9052 / RFC 9053 / RFC 9679 describe it, and
independent Python libraries.

Which library does what
-----------------------
* cbor2         decodes every CBOR item (cards, key sets, headers, the message) and encodes the
                RFC 9679 thumbprint input and the COSE_KDF_Context of the cross-check.
* pycose        verifies every Ed25519 COSE_Sign1: both agency-card self-signatures, the outer
                envelope signature and the inner message signature (Sign1Message + OKPKey,
                built from the x coordinate on the card).
* python-cwt    decrypts the COSE_Encrypt layer: ECDH-ES + HKDF-256 over X25519 with the
                COSE_KDF_Context that cwt builds itself from the content algorithm name, then
                ChaCha20/Poly1305 over the Enc_structure.  (pycose 1.1.0 supports neither
                X25519 key agreement nor ChaCha20/Poly1305.)
* cryptography  derives the public keys of the secret keys (to check they belong to the card),
                and runs a hand-written RFC 9052 §5.3 / RFC 9053 §5-6 decryption (X25519,
                HKDF-SHA256, ChaCha20Poly1305).  That path runs on every envelope as a
                cross-check of cwt, and is the fallback when cwt cannot decrypt (reported as a
                "note:" line and in the JSON output as decrypted_by).
* hashlib       SHA-256: key thumbprints, the case commitment, the envelope id.

Usage
-----
    verify_envelope.py --envelope ENV --sender-card CARD --recipient-card CARD \\
                       --recipient-keys SECRET_KEYS [--expect-json MESSAGE.json] [--json]
    verify_envelope.py --vector spec/vectors/envelope-NAME.json [--json]

Binary files (as `rogatory` writes them) and files holding the same bytes as hex are both
accepted.  Every check prints "ok: ..."; the first failing one prints "FAIL: ..." and the
script exits 1.  Exit 0 means every check passed.

In the printed message, every byte string is lower-case hex, 16-byte ids included (not UUID
form).  --expect-json takes the message as JSON (digests as hex, ids as UUIDs); a decoded byte
string is compared with the expected text as lower-case hex, dashes removed for 16-byte ids.
The comparison is otherwise exact: a field present on one side only is a mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import cbor2
import cwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pycose.algorithms import EdDSA
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.keys.keyparam import KpAlg
from pycose.messages import Sign1Message

# --- Constants of RFC 9052 / 9053 and of the protocol ------------------------------------------

TAG_SIGN1 = 18
TAG_ENCRYPT = 96

H_ALG = 1
H_KID = 4
H_IV = 5
H_EPHEMERAL_KEY = -1

ALG_EDDSA = -8
ALG_ECDH_ES_HKDF_256 = -25
ALG_CHACHA20_POLY1305 = 24

KTY_OKP = 1
CRV_X25519 = 4
CRV_ED25519 = 6
K_KTY, K_KID, K_ALG, K_CRV, K_X, K_D = 1, 2, 3, -1, -2, -4

PROTOCOL_VERSION = 1
CASE_COMMITMENT_DOMAIN = b"rogatory/case/v1\x00"

# Private-use header labels (spec/PROTOCOL.md §3; RFC 9052 §11.1).
L_VERSION = -65537
L_FROM = -65538
L_TO = -65539
L_MESSAGE_ID = -65540
L_SENT_AT = -65541
L_CASE_COMMITMENT = -65542
L_CHECKPOINT = -65543
L_SEQUENCE = -65544
L_PREVIOUS = -65545
L_CASE_ID = -65546
L_MESSAGE_TYPE = -65547
L_RECIPIENTS = -65548
L_CONSISTENCY = -65549
L_OFFICERS = -65550

LABEL_NAMES = {
    H_ALG: "alg",
    H_KID: "kid",
    L_VERSION: "version",
    L_FROM: "from",
    L_TO: "to",
    L_MESSAGE_ID: "message_id",
    L_SENT_AT: "sent_at",
    L_CASE_COMMITMENT: "case_commitment",
    L_CHECKPOINT: "checkpoint",
    L_SEQUENCE: "sequence",
    L_PREVIOUS: "previous",
    L_CASE_ID: "case_id",
    L_MESSAGE_TYPE: "message_type",
    L_RECIPIENTS: "recipients",
    L_CONSISTENCY: "consistency",
    L_OFFICERS: "officers",
}

OUTER_LABELS = {H_ALG, H_KID, L_VERSION, L_FROM, L_TO, L_MESSAGE_ID, L_SENT_AT,
                L_CASE_COMMITMENT, L_CHECKPOINT, L_SEQUENCE, L_PREVIOUS, L_CONSISTENCY}
INNER_LABELS = {H_ALG, H_KID, L_VERSION, L_FROM, L_MESSAGE_ID, L_CASE_ID, L_MESSAGE_TYPE,
                L_RECIPIENTS, L_OFFICERS}
OFFICER_ROLES = ("issuing-authority", "validating-authority", "liaison-officer")
CARD_LABELS = {H_ALG, H_KID}

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX_RE = re.compile(r"(?:[0-9a-fA-F]{2})+")


# --- Reporting ------------------------------------------------------------------------------

class CheckFailed(Exception):
    """A check did not pass; the message says which and why."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Report:
    """Prints "ok:" / "note:" lines, or collects them for the --json document."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.checks: list[str] = []
        self.notes: list[str] = []
        self.envelopes: list[dict] = []

    def ok(self, message: str) -> None:
        self.checks.append(message)
        if not self.as_json:
            print(f"ok: {message}", flush=True)

    def note(self, message: str) -> None:
        self.notes.append(message)
        if not self.as_json:
            print(f"note: {message}", flush=True)

    def show(self, title: str, value: Any) -> None:
        if not self.as_json:
            print(f"{title}:")
            print(json.dumps(value, indent=2, ensure_ascii=False))

    def finish(self, error: Optional[str]) -> int:
        if self.as_json:
            doc = {"ok": error is None, "checks": self.checks, "notes": self.notes,
                   "envelopes": self.envelopes}
            if error is not None:
                doc["error"] = error
            print(json.dumps(doc, indent=2, ensure_ascii=False))
            if error is not None:
                print(f"FAIL: {error}", file=sys.stderr)
        elif error is not None:
            print(f"FAIL: {error}", flush=True)
        return 0 if error is None else 1


# --- CBOR helpers ---------------------------------------------------------------------------

def cbor_decode(raw: bytes, what: str) -> Any:
    """Decodes exactly one CBOR item; trailing bytes are an error (cbor2.loads ignores them)."""
    fp = io.BytesIO(raw)
    try:
        obj = cbor2.CBORDecoder(fp).decode()
    except Exception as e:  # cbor2 raises several types for malformed input
        raise CheckFailed(f"{what}: not well-formed CBOR ({e})") from e
    require(fp.tell() == len(raw), f"{what}: {len(raw) - fp.tell()} bytes after the CBOR item")
    return obj


def deterministic_bytes(obj: Any) -> bytes:
    """RFC 8949 §4.2.1 core deterministic encoding of a decoded item.

    cbor2 always writes integers and lengths in their shortest form, but its canonical=True mode
    orders map keys length-first (RFC 7049 §3.9), not bytewise as RFC 8949 requires, so the
    maps are re-ordered here and written in insertion order.  (No float appears in these
    structures; cbor2 would write floats as float64.)
    """

    def order(o: Any) -> Any:
        if isinstance(o, dict):
            items = sorted(o.items(), key=lambda kv: cbor2.dumps(kv[0]))
            return {k: order(v) for k, v in items}
        if isinstance(o, list):
            return [order(v) for v in o]
        if isinstance(o, cbor2.CBORTag):
            return cbor2.CBORTag(o.tag, order(o.value))
        return o

    return cbor2.dumps(order(obj))


def require_deterministic(raw: bytes, obj: Any, what: str) -> None:
    require(deterministic_bytes(obj) == raw,
            f"{what} is not in RFC 8949 deterministic encoding")


def is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def to_jsonable(v: Any) -> Any:
    """Bytes become lower-case hex; everything else maps onto JSON as is."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(LABEL_NAMES.get(k, k)) if isinstance(k, int) else k: to_jsonable(x)
                for k, x in v.items()}
    if isinstance(v, list):
        return [to_jsonable(x) for x in v]
    if isinstance(v, cbor2.CBORTag):
        return {"cbor_tag": v.tag, "value": to_jsonable(v.value)}
    return v


def read_input(path: str, what: str) -> bytes:
    """Reads a file as raw bytes, or as hex if it holds nothing but hex digits."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckFailed(f"cannot read {what} {path}: {e.strerror}") from e
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return data
    return bytes.fromhex(text) if HEX_RE.fullmatch(text) else data


# --- Keys -----------------------------------------------------------------------------------

def okp_thumbprint(crv: int, x: bytes) -> bytes:
    """RFC 9679 COSE Key Thumbprint (SHA-256) of an OKP public key.

    The required members {1: kty, -1: crv, -2: x} are inserted in deterministic order (encoded
    keys 0x01 < 0x20 < 0x21), and cbor2 keeps insertion order when not in canonical mode.
    """
    return hashlib.sha256(cbor2.dumps({K_KTY: KTY_OKP, K_CRV: crv, K_X: x})).digest()


def parse_okp(key: Any, crv: int, alg: int, secret: bool,
              what: str) -> tuple[bytes, bytes, Optional[bytes]]:
    """Checks one OKP COSE_Key; returns (x, kid, d).  The kid must be the RFC 9679 thumbprint."""
    require(isinstance(key, dict), f"{what}: a COSE_Key is a CBOR map")
    allowed = {K_KTY, K_KID, K_ALG, K_CRV, K_X} | ({K_D} if secret else set())
    require(set(key) <= allowed, f"{what}: unexpected COSE_Key parameters {sorted(set(key) - allowed)}")
    require(key.get(K_KTY) == KTY_OKP, f"{what}: kty is {key.get(K_KTY)!r}, expected {KTY_OKP} (OKP)")
    require(key.get(K_CRV) == crv, f"{what}: crv is {key.get(K_CRV)!r}, expected {crv}")
    require(key.get(K_ALG) == alg, f"{what}: alg is {key.get(K_ALG)!r}, expected {alg}")
    x = key.get(K_X)
    require(isinstance(x, bytes) and len(x) == 32, f"{what}: x must be a 32-byte string")
    kid = key.get(K_KID)
    require(isinstance(kid, bytes) and len(kid) == 32, f"{what}: kid must be a 32-byte string")
    thumbprint = okp_thumbprint(crv, x)
    require(kid == thumbprint,
            f"{what}: kid {kid.hex()} is not the RFC 9679 thumbprint {thumbprint.hex()}")
    d = key.get(K_D)
    if secret:
        require(isinstance(d, bytes) and len(d) == 32, f"{what}: d (-4) must be a 32-byte string")
    return x, kid, d


def ed25519_public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def x25519_public(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


@dataclass
class SecretKeys:
    """An agency's secret keys: the Ed25519 seed and the X25519 secret scalar bytes."""
    ed25519_seed: bytes
    x25519_secret: bytes


def load_key_set(raw: bytes) -> SecretKeys:
    """A COSE_KeySet of two keys, the signing key first, each with its secret in d (-4)."""
    keys = cbor_decode(raw, "secret key file")
    require(isinstance(keys, list) and len(keys) == 2,
            "secret key file: expected a COSE_KeySet (array) of exactly two COSE_Keys")
    sx, _, seed = parse_okp(keys[0], CRV_ED25519, ALG_EDDSA, True, "secret key file, signing key")
    ex, _, secret = parse_okp(keys[1], CRV_X25519, ALG_ECDH_ES_HKDF_256, True,
                              "secret key file, encryption key")
    require(ed25519_public(seed) == sx,
            "secret key file: the Ed25519 public key does not match its seed")
    require(x25519_public(secret) == ex,
            "secret key file: the X25519 public key does not match its secret")
    return SecretKeys(seed, secret)


# --- Signatures (pycose) --------------------------------------------------------------------

@dataclass
class Sign1:
    """A tagged COSE_Sign1, decoded with cbor2, its signature not yet checked."""
    raw: bytes
    header: dict
    payload: bytes
    signature: bytes


def decode_sign1(raw: bytes, allowed_labels: set, what: str) -> Sign1:
    """The shape Rogatory requires: tag 18, protected {alg: EdDSA, kid: 32 bytes, ...}, empty
    unprotected header, embedded payload, protected header in deterministic encoding."""
    obj = cbor_decode(raw, what)
    require(isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_SIGN1,
            f"{what}: not a tagged COSE_Sign1 (tag {TAG_SIGN1})")
    require(isinstance(obj.value, list) and len(obj.value) == 4,
            f"{what}: a COSE_Sign1 is an array of 4 items")
    protected, unprotected, payload, signature = obj.value
    require(isinstance(protected, bytes) and protected,
            f"{what}: the protected header must be a non-empty byte string")
    require(unprotected == {}, f"{what}: the unprotected header must be empty")
    require(isinstance(payload, bytes), f"{what}: the payload must be embedded (a byte string)")
    require(isinstance(signature, bytes) and len(signature) == 64,
            f"{what}: an Ed25519 signature is 64 bytes")
    header = cbor_decode(protected, f"{what}, protected header")
    require(isinstance(header, dict), f"{what}: the protected header must be a map")
    require_deterministic(protected, header, f"{what}: the protected header")
    unknown = set(header) - allowed_labels
    require(not unknown, f"{what}: header labels {sorted(unknown, key=str)} are not allowed here")
    require(header.get(H_ALG) == ALG_EDDSA,
            f"{what}: alg is {header.get(H_ALG)!r}, expected {ALG_EDDSA} (EdDSA)")
    kid = header.get(H_KID)
    require(isinstance(kid, bytes) and len(kid) == 32, f"{what}: kid must be 32 bytes")
    return Sign1(raw, header, payload, signature)


def pycose_verify(raw: bytes, ed25519_x: bytes, what: str) -> None:
    """Verifies a COSE_Sign1 with pycose and the given Ed25519 public key."""
    try:
        msg = Sign1Message.decode(raw)
        msg.key = OKPKey(crv=Ed25519, x=ed25519_x, optional_params={KpAlg: EdDSA})
        good = msg.verify_signature()
    except Exception as e:  # pycose raises CoseException, ValueError, TypeError ...
        raise CheckFailed(f"{what}: pycose could not verify the signature ({type(e).__name__}: {e})") from e
    require(good, f"{what}: the signature does not verify (pycose)")


# --- Agency cards ---------------------------------------------------------------------------

@dataclass
class Card:
    id: str
    body: dict
    sign_x: bytes
    sign_kid: bytes
    enc_x: bytes
    enc_kid: bytes


CARD_FIELDS = {"version", "id", "name", "country", "roles", "keys", "addresses", "languages",
               "legal_bases", "issued_at"}


def parse_card(raw: bytes, what: str, report: Report) -> Card:
    """Step 1: decode a card, check its keys' thumbprints and its self-signature (pycose)."""
    s = decode_sign1(raw, CARD_LABELS, what)
    body = cbor_decode(s.payload, f"{what}, body")
    require(isinstance(body, dict) and all(isinstance(k, str) for k in body),
            f"{what}: the body must be a map with text keys")
    require_deterministic(s.payload, body, f"{what}: the body")
    require(set(body) == CARD_FIELDS,
            f"{what}: body fields differ from the format: missing {sorted(CARD_FIELDS - set(body))}, "
            f"unexpected {sorted(set(body) - CARD_FIELDS)}")
    require(isinstance(body["id"], str), f"{what}: id must be text")
    what = f"{what} {body['id']}"
    keys = body["keys"]
    require(isinstance(keys, list), f"{what}: keys must be an array")
    found: dict[str, tuple[bytes, bytes]] = {}
    for i, entry in enumerate(keys):
        where = f"{what}: keys[{i}]"
        require(isinstance(entry, dict), f"{where} must be a map")
        use = entry.get("use")
        require(use in ("sign", "encrypt"), f"{where}: use is {use!r}, expected sign or encrypt")
        require(use not in found, f"{where}: a second {use} key (one of each is expected)")
        require(is_uint(entry.get("valid_from")), f"{where}: valid_from must be an unsigned integer")
        cose_key = entry.get("cose_key")
        require(isinstance(cose_key, bytes), f"{where}: cose_key must be a byte string")
        decoded = cbor_decode(cose_key, f"{where}.cose_key")
        require_deterministic(cose_key, decoded, f"{where}.cose_key")
        if use == "sign":
            x, kid, _ = parse_okp(decoded, CRV_ED25519, ALG_EDDSA, False, f"{where} (sign)")
        else:
            x, kid, _ = parse_okp(decoded, CRV_X25519, ALG_ECDH_ES_HKDF_256, False, f"{where} (encrypt)")
        found[use] = (x, kid)
    require(set(found) == {"sign", "encrypt"}, f"{what}: needs one signing and one encryption key")
    card = Card(body["id"], body, *found["sign"], *found["encrypt"])
    require(s.header[H_KID] == card.sign_kid,
            f"{what}: signed with kid {s.header[H_KID].hex()}, not its own signing key {card.sign_kid.hex()}")
    pycose_verify(raw, card.sign_x, what)
    report.ok(f"card {card.id}: self-signature verified (pycose); signing kid {card.sign_kid.hex()} "
              f"and encryption kid {card.enc_kid.hex()} are RFC 9679 thumbprints")
    return card


def check_keys_match_card(keys: SecretKeys, card: Card, report: Report) -> None:
    require(ed25519_public(keys.ed25519_seed) == card.sign_x,
            f"the recipient's Ed25519 secret key does not belong to card {card.id}")
    require(x25519_public(keys.x25519_secret) == card.enc_x,
            f"the recipient's X25519 secret key does not belong to card {card.id}")
    report.ok(f"secret keys belong to card {card.id}")


# --- Header fields --------------------------------------------------------------------------

def get_field(header: dict, label: int, kind: str, what: str, *, length: Optional[int] = None,
              optional: bool = False) -> Any:
    name = f"{what}: header {LABEL_NAMES[label]} ({label})"
    if label not in header:
        require(optional, f"{name} is missing")
        return None
    v = header[label]
    if kind == "uint":
        require(is_uint(v), f"{name} must be an unsigned integer")
    elif kind == "tstr":
        require(isinstance(v, str), f"{name} must be a text string")
    elif kind == "bstr":
        require(isinstance(v, bytes), f"{name} must be a byte string")
        require(length is None or len(v) == length, f"{name} must be {length} bytes, not {len(v)}")
    return v


def case_commitment(case_id: bytes) -> bytes:
    return hashlib.sha256(CASE_COMMITMENT_DOMAIN + case_id).digest()


# --- Decryption (python-cwt, and the hand-written cross-check) -------------------------------

@dataclass
class EncryptLayer:
    """The COSE_Encrypt, decoded with cbor2 and checked against the protocol's profile."""
    raw: bytes
    protected: bytes
    iv: bytes
    ciphertext: bytes
    recipient_protected: bytes
    recipient_kid: bytes
    ephemeral_x: bytes


def decode_encrypt(raw: bytes) -> EncryptLayer:
    what = "encrypted layer"
    obj = cbor_decode(raw, what)
    require(isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_ENCRYPT,
            f"{what}: not a tagged COSE_Encrypt (tag {TAG_ENCRYPT})")
    require(isinstance(obj.value, list) and len(obj.value) == 4,
            f"{what}: a COSE_Encrypt is an array of 4 items")
    protected, unprotected, ciphertext, recipients = obj.value
    require(isinstance(protected, bytes), f"{what}: protected header must be a byte string")
    header = cbor_decode(protected, f"{what}, protected header")
    require(header == {H_ALG: ALG_CHACHA20_POLY1305},
            f"{what}: protected header is {header!r}, expected {{1: 24}} (ChaCha20/Poly1305)")
    require(isinstance(unprotected, dict) and set(unprotected) == {H_IV},
            f"{what}: the unprotected header must hold the IV (5) and nothing else")
    iv = unprotected[H_IV]
    require(isinstance(iv, bytes) and len(iv) == 12, f"{what}: the IV must be 12 bytes")
    require(isinstance(ciphertext, bytes) and len(ciphertext) >= 16,
            f"{what}: the ciphertext must be a byte string holding at least the 16-byte tag")
    require(isinstance(recipients, list) and len(recipients) == 1,
            f"{what}: exactly one recipient structure is required")
    r = recipients[0]
    require(isinstance(r, list) and len(r) == 3,
            f"{what}: the recipient is [protected, unprotected, ciphertext] with no nested recipients")
    r_protected, r_unprotected, r_ciphertext = r
    require(isinstance(r_protected, bytes), f"{what}: recipient protected header must be a byte string")
    r_header = cbor_decode(r_protected, f"{what}, recipient protected header")
    require(r_header == {H_ALG: ALG_ECDH_ES_HKDF_256},
            f"{what}: recipient protected header is {r_header!r}, expected {{1: -25}} (ECDH-ES + HKDF-256)")
    require(r_ciphertext == b"", f"{what}: the recipient ciphertext must be empty (direct key agreement)")
    require(isinstance(r_unprotected, dict) and set(r_unprotected) == {H_KID, H_EPHEMERAL_KEY},
            f"{what}: the recipient unprotected header must hold kid (4) and ephemeral key (-1) only")
    kid = r_unprotected[H_KID]
    require(isinstance(kid, bytes), f"{what}: the recipient kid must be a byte string")
    eph = r_unprotected[H_EPHEMERAL_KEY]
    require(isinstance(eph, dict) and set(eph) == {K_KTY, K_CRV, K_X} and eph[K_KTY] == KTY_OKP
            and eph[K_CRV] == CRV_X25519 and isinstance(eph[K_X], bytes) and len(eph[K_X]) == 32,
            f"{what}: the ephemeral key must be {{1: 1, -1: 4, -2: 32-byte x}}")
    return EncryptLayer(raw, protected, iv, ciphertext, r_protected, kid, eph[K_X])


def cwt_decrypt(layer: EncryptLayer, card: Card, x25519_secret: bytes) -> bytes:
    """Decrypts with python-cwt.

    The key carries x as well as d on purpose: cwt 3.3.0 silently ignores d of an ECDH-ES key
    that has no x, and then derives from a freshly generated key (it fails with a bare
    authentication error).  The kid must equal the recipient's kid, or cwt skips the key.
    """
    key = cwt.COSEKey.new({K_KTY: KTY_OKP, K_KID: card.enc_kid, K_ALG: ALG_ECDH_ES_HKDF_256,
                           K_CRV: CRV_X25519, K_X: x25519_public(x25519_secret), K_D: x25519_secret})
    # cwt builds the COSE_KDF_Context itself from the content algorithm's name: AlgorithmID 24,
    # no PartyU/PartyV identities, keyDataLength 256, and the recipient's protected header.
    ctx = cwt.COSE.new(verify_kid=True)
    return ctx.decode(layer.raw, keys=[key], context={"alg": "ChaCha20/Poly1305"})


def rfc9053_decrypt(layer: EncryptLayer, x25519_secret: bytes) -> bytes:
    """Hand-written ECDH-ES + HKDF-256 / ChaCha20-Poly1305 decryption (RFC 9052 §5.3, RFC 9053
    §4.4, §5.1, §5.2, §6.1) with `cryptography`; raises InvalidTag on a wrong key or data, and
    ValueError when the ephemeral key is a low-order point."""
    shared = X25519PrivateKey.from_private_bytes(x25519_secret).exchange(
        X25519PublicKey.from_public_bytes(layer.ephemeral_x))
    kdf_context = cbor2.dumps([
        ALG_CHACHA20_POLY1305,
        [None, None, None],  # PartyUInfo: identity, nonce, other
        [None, None, None],  # PartyVInfo
        [256, layer.recipient_protected],  # SuppPubInfo: keyDataLength, protected
    ])
    cek = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=kdf_context).derive(shared)
    enc_structure = cbor2.dumps(["Encrypt", layer.protected, b""])
    return ChaCha20Poly1305(cek).decrypt(layer.iv, layer.ciphertext, enc_structure)


def decrypt(layer: EncryptLayer, card: Card, x25519_secret: bytes, report: Report) -> tuple[bytes, str]:
    """Step 3: python-cwt decrypts; the hand-written path must agree, or stands in for cwt."""
    cwt_error = None
    try:
        by_cwt = cwt_decrypt(layer, card, x25519_secret)
    except Exception as e:  # cwt wraps failures in DecodeError, ValueError ...
        by_cwt, cwt_error = None, f"{type(e).__name__}: {e}"
    try:
        by_hand = rfc9053_decrypt(layer, x25519_secret)
    except (InvalidTag, ValueError):  # ValueError: a low-order ephemeral key (all-zero secret)
        by_hand = None
    if by_cwt is not None:
        require(by_hand is not None,
                "python-cwt decrypted the envelope but the hand-written RFC 9053 path did not: "
                "the cross-check in this script is wrong")
        require(by_hand == by_cwt, "python-cwt and the hand-written RFC 9053 path disagree on the plaintext")
        report.ok(f"decrypted {len(by_cwt)} bytes with python-cwt (ECDH-ES + HKDF-256, X25519, "
                  "ChaCha20/Poly1305); the hand-written RFC 9053 derivation agrees")
        return by_cwt, "python-cwt"
    require(by_hand is not None,
            f"the envelope cannot be decrypted with the recipient's key: python-cwt says {cwt_error}; "
            "the hand-written RFC 9053 path fails authentication too")
    report.note(f"python-cwt could not decrypt ({cwt_error}); fell back to the hand-written "
                "RFC 9053 path (cryptography), which succeeded")
    report.ok(f"decrypted {len(by_hand)} bytes with the hand-written RFC 9053 path (fallback)")
    return by_hand, "fallback (cryptography)"


# --- The envelope ---------------------------------------------------------------------------

@dataclass
class Opened:
    envelope_id: str
    outer: Sign1
    layer: EncryptLayer
    inner: Sign1
    message: dict
    decrypted_by: str
    summary: dict = field(default_factory=dict)


def open_envelope(raw: bytes, sender: Card, recipient: Card, keys: SecretKeys,
                  report: Report) -> Opened:
    """Steps 2 to 4, the decoding of step 5, and the envelope id of step 6."""
    # Step 2: the outer signature and routing header.
    outer = decode_sign1(raw, OUTER_LABELS, "envelope")
    h = outer.header
    require(get_field(h, L_VERSION, "uint", "envelope") == PROTOCOL_VERSION,
            f"envelope: protocol version {h[L_VERSION]}, expected {PROTOCOL_VERSION}")
    sender_id = get_field(h, L_FROM, "tstr", "envelope")
    to = get_field(h, L_TO, "tstr", "envelope")
    message_id = get_field(h, L_MESSAGE_ID, "bstr", "envelope", length=16)
    get_field(h, L_SENT_AT, "uint", "envelope")
    commitment = get_field(h, L_CASE_COMMITMENT, "bstr", "envelope", length=32)
    checkpoint = get_field(h, L_CHECKPOINT, "bstr", "envelope", optional=True)
    consistency = get_field(h, L_CONSISTENCY, "bstr", "envelope", optional=True)
    if consistency is not None:
        require(checkpoint is not None,
                "envelope: a consistency proof comes only with the checkpoint it leads to")
        require(len(consistency) >= 8 and (len(consistency) - 8) % 32 == 0,
                "envelope: the consistency proof is an 8-byte size followed by 32-byte hashes")
    sequence = get_field(h, L_SEQUENCE, "uint", "envelope")
    previous = get_field(h, L_PREVIOUS, "bstr", "envelope", length=32, optional=True)
    require(sequence >= 1 and (sequence == 1) == (previous is None),
            f"envelope: sequence {sequence} with{'out' if previous is None else ''} a previous "
            "envelope id (only the first, sequence 1, has none)")
    require(sender_id == sender.id, f"envelope: from is {sender_id!r}, but the sender card is {sender.id!r}")
    require(h[H_KID] == sender.sign_kid,
            f"envelope: signed with kid {h[H_KID].hex()}, not {sender.id}'s signing key "
            f"{sender.sign_kid.hex()}")
    pycose_verify(raw, sender.sign_x, "envelope (outer COSE_Sign1)")
    require(to == recipient.id, f"envelope: to is {to!r}, but the recipient card is {recipient.id!r}")
    report.ok(f"outer COSE_Sign1 signature by {sender.id} verified (pycose); from {sender_id}, "
              f"to {to}, sequence {sequence}")

    # Step 3: the encrypted layer.
    layer = decode_encrypt(outer.payload)
    require(layer.recipient_kid == recipient.enc_kid,
            f"encrypted layer: recipient kid {layer.recipient_kid.hex()} is not {recipient.id}'s "
            f"encryption key {recipient.enc_kid.hex()}")
    report.ok(f"COSE_Encrypt recipient kid is {recipient.id}'s encryption key {recipient.enc_kid.hex()}")
    plaintext, decrypted_by = decrypt(layer, recipient, keys.x25519_secret, report)

    # Step 4: the inner signature and its header.
    inner = decode_sign1(plaintext, INNER_LABELS, "inner message")
    ih = inner.header
    require(ih[H_KID] == sender.sign_kid,
            f"inner message: signed with kid {ih[H_KID].hex()}, not {sender.id}'s signing key")
    pycose_verify(plaintext, sender.sign_x, "inner message (inner COSE_Sign1)")
    require(get_field(ih, L_VERSION, "uint", "inner message") == PROTOCOL_VERSION,
            f"inner message: protocol version {ih[L_VERSION]}, expected {PROTOCOL_VERSION}")
    inner_from = get_field(ih, L_FROM, "tstr", "inner message")
    require(inner_from == sender_id,
            f"inner message: from is {inner_from!r}, the envelope's is {sender_id!r}")
    inner_message_id = get_field(ih, L_MESSAGE_ID, "bstr", "inner message", length=16)
    require(inner_message_id == message_id,
            f"message ids differ: inner {inner_message_id.hex()}, outer {message_id.hex()}")
    case_id = get_field(ih, L_CASE_ID, "bstr", "inner message", length=16)
    get_field(ih, L_MESSAGE_TYPE, "tstr", "inner message")
    recipients = ih.get(L_RECIPIENTS)
    require(isinstance(recipients, list) and recipients and all(isinstance(r, str) for r in recipients),
            "inner message: recipients must be a non-empty array of text strings")
    require(all(a < b for a, b in zip(recipients, recipients[1:])),
            f"inner message: recipients {recipients} are not sorted and unique")
    require(recipient.id in recipients,
            f"inner message: {recipient.id} is not among the recipients {recipients}")
    require(case_commitment(case_id) == commitment,
            f"case commitment {commitment.hex()} is not SHA-256(\"rogatory/case/v1\\0\" || case id "
            f"{case_id.hex()}) = {case_commitment(case_id).hex()}")
    report.ok(f"inner COSE_Sign1 signature by {sender.id} verified (pycose); from and message id "
              f"match the envelope, {recipient.id} is among recipients {recipients}, case commitment "
              "matches the case id")

    # Step 5 (decoding): the message itself.
    message = cbor_decode(inner.payload, "message")
    require(isinstance(message, dict) and all(isinstance(k, str) for k in message),
            "message: must be a CBOR map with text keys")
    require_deterministic(inner.payload, message, "message")
    report.ok(f"message ({ih[L_MESSAGE_TYPE]}, {len(inner.payload)} bytes) decoded with cbor2; "
              "it is in deterministic encoding")

    # Step 6.
    envelope_id = hashlib.sha256(raw).hexdigest()
    opened = Opened(envelope_id, outer, layer, inner, message, decrypted_by)
    opened.summary = {
        "to": to,
        "envelope_id": envelope_id,
        "decrypted_by": decrypted_by,
        "outer_header": to_jsonable(h),
        "inner_header": to_jsonable(ih),
        "message": to_jsonable(message),
    }
    report.envelopes.append(opened.summary)
    return opened


# --- Comparing with an expected message -----------------------------------------------------

def compare(actual: Any, expected: Any, path: str, problems: list[str]) -> None:
    """Collects every difference between the decoded message and the expected JSON."""
    if isinstance(actual, bytes):
        if not isinstance(expected, str):
            problems.append(f"{path}: decoded a {len(actual)}-byte string, expected {json.dumps(expected)}")
            return
        want = expected.lower()
        if len(actual) == 16 and UUID_RE.fullmatch(want):
            want = want.replace("-", "")
        if actual.hex() != want:
            problems.append(f"{path}: decoded {actual.hex()}, expected {expected}")
    elif isinstance(actual, dict):
        if not isinstance(expected, dict):
            problems.append(f"{path}: decoded a map, expected {json.dumps(expected)}")
            return
        for k in sorted(set(expected) - set(actual)):
            problems.append(f"{path}.{k}: missing from the decoded message "
                            f"(expected {json.dumps(expected[k])})")
        for k in sorted(set(actual) - set(expected)):
            problems.append(f"{path}.{k}: in the decoded message but not expected "
                            f"(decoded {json.dumps(to_jsonable(actual[k]))})")
        for k in sorted(set(actual) & set(expected)):
            compare(actual[k], expected[k], f"{path}.{k}", problems)
    elif isinstance(actual, list):
        if not isinstance(expected, list):
            problems.append(f"{path}: decoded an array, expected {json.dumps(expected)}")
            return
        if len(actual) != len(expected):
            problems.append(f"{path}: decoded {len(actual)} items, expected {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            compare(a, e, f"{path}[{i}]", problems)
    # bool is an int in Python: compare types as well so that true never equals 1.
    elif type(actual) is not type(expected) or actual != expected:
        problems.append(f"{path}: decoded {json.dumps(to_jsonable(actual))}, expected {json.dumps(expected)}")


def check_expected(message: dict, expected: Any, source: str, report: Report) -> None:
    problems: list[str] = []
    compare(message, expected, "$", problems)
    require(not problems, f"the decoded message differs from {source} in {len(problems)} place(s):\n  "
            + "\n  ".join(problems))
    report.ok(f"decoded message equals {source}")


# --- The two modes --------------------------------------------------------------------------

def run_files(args: argparse.Namespace, report: Report) -> None:
    sender = parse_card(read_input(args.sender_card, "sender card"), "sender card", report)
    recipient = parse_card(read_input(args.recipient_card, "recipient card"), "recipient card", report)
    keys = load_key_set(read_input(args.recipient_keys, "secret key file"))
    check_keys_match_card(keys, recipient, report)
    expected = None
    if args.expect_json:
        try:
            with open(args.expect_json, encoding="utf-8") as f:
                expected = json.load(f)
        except (OSError, ValueError) as e:
            raise CheckFailed(f"cannot read the expected message {args.expect_json}: {e}") from e
    opened = open_envelope(read_input(args.envelope, "envelope"), sender, recipient, keys, report)
    report.show("message", opened.summary["message"])
    if expected is not None:
        check_expected(opened.message, expected, args.expect_json, report)
    report.ok(f"envelope id {opened.envelope_id}")


def vector_hex(v: dict, key: str, what: str) -> Optional[bytes]:
    value = v.get(key)
    if value is None:
        return None
    require(isinstance(value, str) and HEX_RE.fullmatch(value), f"{what}: {key} must be hex")
    return bytes.fromhex(value)


def check_equal(got: Any, want: Any, what: str) -> None:
    require(got == want, f"{what}: envelope has {to_jsonable(got)!r}, the vector says {to_jsonable(want)!r}")


def check_refusals(raw: bytes, opened: Opened, sender: Card, recipient: Card, report: Report) -> None:
    """Negative checks: a flipped signature byte, and decryption with a wrong X25519 key."""
    # The signature is the last item and 64 bytes long, so it is the last 64 bytes of the
    # envelope: flip a byte in its middle without re-encoding anything else.
    require(raw[-64:] == opened.outer.signature, "envelope: the signature is not its last 64 bytes")
    tampered = bytearray(raw)
    tampered[-32] ^= 0x01
    try:
        pycose_verify(bytes(tampered), sender.sign_x, "tampered envelope")
    except CheckFailed:
        pass
    else:
        raise CheckFailed("pycose accepted an envelope whose signature had a flipped byte")

    wrong = X25519PrivateKey.generate().private_bytes_raw()
    try:
        cwt_decrypt(opened.layer, recipient, wrong)
    except Exception:  # any failure is the expected refusal
        pass
    else:
        raise CheckFailed("python-cwt decrypted the envelope with a wrong X25519 key")
    try:
        rfc9053_decrypt(opened.layer, wrong)
    except (InvalidTag, ValueError):
        pass
    else:
        raise CheckFailed("the hand-written RFC 9053 path decrypted the envelope with a wrong X25519 key")
    report.ok("tampered envelope refused: pycose rejects the outer signature with one flipped byte; "
              "python-cwt and the hand-written path both refuse a wrong X25519 key")


def run_vector(path: str, report: Report) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            v = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckFailed(f"cannot read the test vector {path}: {e}") from e
    what = f"vector {path}"

    # Step 1 for every agency in the vector, and the vector's own statements about its keys.
    cards: dict[str, Card] = {}
    secrets: dict[str, SecretKeys] = {}
    for a in v["agencies"]:
        card = parse_card(vector_hex(a, "card", what), "card", report)
        check_equal(card.id, a["id"], f"{what}: agency id")
        check_equal(card.sign_kid.hex(), a["signing_key_id"], f"{what}: {card.id} signing_key_id")
        check_equal(card.enc_kid.hex(), a["encryption_key_id"], f"{what}: {card.id} encryption_key_id")
        cards[card.id] = card
        secrets[card.id] = SecretKeys(vector_hex(a, "signing_seed", what),
                                      vector_hex(a, "encryption_secret", what))
    require(v["sender"] in cards, f"{what}: no card for the sender {v['sender']}")
    sender = cards[v["sender"]]
    addressees = sorted(e["to"] for e in v["envelopes"])
    case_id = uuid.UUID(v["case_id"]).bytes
    message_id = uuid.UUID(v["message_id"]).bytes
    inner_bytes = vector_hex(v, "inner", what)
    message_bytes = vector_hex(v, "message_cbor", what)
    shown = False

    for n, e in enumerate(v["envelopes"]):
        ewhat = f"{what}, envelope {n} (to {e['to']})"
        if not report.as_json:
            print(f"-- envelope {n}: {v['sender']} -> {e['to']}")
        require(e["to"] in cards, f"{ewhat}: no card for the addressee")
        recipient = cards[e["to"]]
        keys = secrets[recipient.id]
        check_keys_match_card(keys, recipient, report)
        raw = vector_hex(e, "envelope", ewhat)
        opened = open_envelope(raw, sender, recipient, keys, report)
        if not shown:
            report.show("message", opened.summary["message"])
            shown = True

        # The vector's statements about this envelope, each against what was decoded.
        oh, ih = opened.outer.header, opened.inner.header
        check_equal(oh[L_VERSION], v["protocol_version"], f"{ewhat}: protocol version")
        check_equal(oh[L_MESSAGE_ID], message_id, f"{ewhat}: message id")
        check_equal(oh[L_SENT_AT], v["sent_at"], f"{ewhat}: sent-at")
        check_equal(oh[L_CASE_COMMITMENT], vector_hex(v, "case_commitment", what),
                    f"{ewhat}: case commitment")
        check_equal(oh.get(L_CHECKPOINT), vector_hex(v, "checkpoint", what), f"{ewhat}: checkpoint")
        check_equal(oh[L_SEQUENCE], e["sequence"], f"{ewhat}: sequence")
        check_equal(oh.get(L_PREVIOUS), vector_hex(e, "previous", ewhat), f"{ewhat}: previous")
        check_equal(oh.get(L_CONSISTENCY), vector_hex(e, "consistency", ewhat),
                    f"{ewhat}: consistency proof")
        check_equal(ih[L_CASE_ID], case_id, f"{ewhat}: case id")
        check_equal(ih[L_MESSAGE_TYPE], v["message_type"], f"{ewhat}: message type")
        check_equal(ih[L_RECIPIENTS], addressees, f"{ewhat}: recipients (every envelope's addressee)")
        check_equal(opened.layer.iv, vector_hex(e, "nonce", ewhat), f"{ewhat}: IV")
        check_equal(opened.layer.ephemeral_x, x25519_public(vector_hex(e, "ephemeral_secret", ewhat)),
                    f"{ewhat}: ephemeral public key (X25519 of ephemeral_secret)")
        report.ok("header values, IV and ephemeral key match the vector")
        require(opened.inner.raw == inner_bytes,
                f"{ewhat}: the decrypted plaintext differs from the vector's inner")
        report.ok("decrypted plaintext equals the vector's inner COSE_Sign1 byte for byte")
        require(opened.inner.payload == message_bytes,
                f"{ewhat}: the inner payload differs from the vector's message_cbor")
        report.ok("inner payload equals the vector's message_cbor byte for byte")
        check_expected(opened.message, v["message"], "the vector's message (JSON)", report)
        check_officers(opened, v, sender.id, ewhat, report)
        check_equal(opened.envelope_id, e["envelope_id"], f"{ewhat}: envelope id")
        report.ok(f"envelope id {opened.envelope_id} equals the vector's")
        check_refusals(raw, opened, sender, recipient, report)


def check_officers(opened, v: dict, sender_id: str, what: str, report) -> None:
    """spec/PEOPLE.md §5: the inner header's officers, each [role, kid, signature], signed in
    order over the deterministic CBOR of ["rogatory/officer/v1", from, message id, case id,
    type, recipients, body, earlier entries], verified here with each official's public key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    ih = opened.inner.header
    want = v.get("officers", [])
    entries = ih.get(L_OFFICERS)
    if not want:
        require(entries is None, f"{what}: officers in the header, none in the vector")
        return
    require(isinstance(entries, list) and len(entries) == len(want),
            f"{what}: the header carries {entries!r} officers, the vector {len(want)}")
    roles = [e[0] for e in entries]
    require(roles[0] != "validating-authority" and all(r in OFFICER_ROLES for r in roles)
            and (len(roles) == 1 or roles[1] == "validating-authority"),
            f"{what}: officers {roles}: an issuer, then at most one validating authority")
    for i, (e, o) in enumerate(zip(entries, want)):
        require(isinstance(e, list) and len(e) == 3 and isinstance(e[1], bytes) and len(e[1]) == 32
                and isinstance(e[2], bytes) and len(e[2]) == 64,
                f"{what}: officer {i} is not [role, kid (32 bytes), signature (64 bytes)]")
        tbs = cbor2.dumps(["rogatory/officer/v1", sender_id, ih[L_MESSAGE_ID], ih[L_CASE_ID],
                           ih[L_MESSAGE_TYPE], ih[L_RECIPIENTS], opened.inner.payload,
                           entries[:i]], canonical=True)
        require(tbs.hex() == o["signed"], f"{what}: officer {i}: the bytes signed differ from the vector's")
        require(e[0] == o["role"] and e[1].hex() == o["key_id"],
                f"{what}: officer {i}: role or key id differ from the vector's")
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(o["public_key"]))
        from cryptography.exceptions import InvalidSignature
        try:
            pub.verify(e[2], tbs)
        except InvalidSignature:
            raise CheckFailed(f"{what}: officer {i} ({e[0]}): the signature does not verify")
        try:
            pub.verify(e[2], tbs[:-1] + bytes([tbs[-1] ^ 1]))
        except InvalidSignature:
            pass
        else:
            raise CheckFailed(f"{what}: officer {i}: a signature verified over other bytes")
    report.ok(f"{len(entries)} official(s) ({', '.join(roles)}): each signature verified "
              "(cryptography) over the bytes this script built with cbor2")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Verify a Rogatory envelope with independent libraries only (pycose for the "
                    "Ed25519 COSE_Sign1 layers, python-cwt for the COSE_Encrypt layer, cbor2 for "
                    "CBOR). Exit status 0 only if every check passes.")
    p.add_argument("--envelope", metavar="ENV", help="the envelope (outer COSE_Sign1)")
    p.add_argument("--sender-card", metavar="CARD", help="the sending agency's card")
    p.add_argument("--recipient-card", metavar="CARD", help="the addressee's card")
    p.add_argument("--recipient-keys", metavar="SECRET_KEYS",
                   help="the addressee's secret key file (COSE_KeySet)")
    p.add_argument("--expect-json", metavar="MESSAGE.json",
                   help="compare the decrypted message with this JSON message")
    p.add_argument("--vector", metavar="FILE",
                   help="check every envelope of a spec/vectors/envelope-*.json test vector "
                        "instead (cards and keys come from the vector)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON report (checks, headers, message, envelope ids) instead of lines")
    args = p.parse_args(argv)
    file_args = [args.envelope, args.sender_card, args.recipient_card, args.recipient_keys]
    if args.vector:
        if any(file_args) or args.expect_json:
            p.error("--vector takes no --envelope, card, key or --expect-json arguments")
    elif not all(file_args):
        p.error("give --envelope, --sender-card, --recipient-card and --recipient-keys, or --vector")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    report = Report(args.json)
    try:
        if args.vector:
            run_vector(args.vector, report)
        else:
            run_files(args, report)
    except CheckFailed as e:
        return report.finish(str(e))
    except (KeyError, TypeError, ValueError) as e:
        # A malformed vector or key file: report it as a failed check, not a traceback.
        return report.finish(f"malformed input ({type(e).__name__}: {e})")
    return report.finish(None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
