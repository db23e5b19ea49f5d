#!/usr/bin/env python3
"""Independent verification of a Rogatory key history (an agency's root of trust over time).

Written from the format, with independent libraries only; nothing of the Rust implementation is
used.  The format, as this script reads it:

* A history file is a CBOR array of 1 to 1024 byte strings (at most 4 MiB in all), each a
  *statement*.  A file that starts with tag 18 (0xd2) is instead a bare agency card (a COSE_Sign1):
  the history of an agency that has none, whose root is the card's own signing key.
* A statement is a tagged COSE_Sign (RFC 9052 §4.1, tag 98), at most 80 KiB, in one encoding:
      98([ h'', {}, payload, [ 1*16 [ h'{1: -8, 4: kid}', {}, bstr .size 64 ] ] ])
  the signatures sorted by kid, each signer once.  Each signature is Ed25519 over the
  Sig_structure ["Signature", h'', sign_protected, h'', payload], made by the key whose RFC 9679
  thumbprint is the kid.
* The payload is the deterministic CBOR (RFC 8949 §4.2.1) of a map:
      version: 1, agency: tstr, seq: uint, ? prev: bstr .size 32, at: uint,
      kind: "genesis" / "card" / "revoke" / "root",
      ? root: {threshold: uint, keys: [+ bstr]}    ; genesis, root
      ? card: bstr (a COSE_Sign1 agency card)      ; genesis, card
      ? revoke: {kid: bstr .size 32, reason: "compromised" / "superseded" / "retired",
                 effective: uint}                  ; revoke
  Statement 0, and only it, is the genesis; `prev` is absent exactly there, and elsewhere is
  SHA-256 of the previous statement's payload; `seq` counts from 0; `at` never decreases.
* A root set is 1 to 16 Ed25519 COSE_Keys, sorted by kid, each once, and a threshold between 1
  and their number.  The root id (what the fingerprint shows) is, for one key with threshold 1,
  its thumbprint; otherwise SHA-256("rogatory/root/v1" || 0x00 || CBOR([threshold, [kids…]]))
  with the kids sorted.  The fingerprint is the first 16 bytes of the root id, as eight groups
  of four upper-case hex digits joined by '-'.  It is fixed by the genesis: a later root
  statement changes who signs, not the fingerprint.
* Who signs: every signature must be by a key allowed to sign the statement, and verify; at least
  `threshold` of the current root's keys must have signed.
    genesis  the root it names;
    card     the current root, and may be endorsed by the signing key of the current card (the
             key it replaces) unless that key was revoked;
    revoke   the current root;
    root     the current root (its threshold) and the new root (its threshold too).
* Cards (genesis, card): a valid self-signed card of the same agency.  Its two keys get a window
  [max(valid_from, at), valid_until).  A key the current card already lists goes on (its end is
  whatever the new card says; it must not be revoked); any other key already seen is refused (a
  replaced key cannot come back); a key of the current card that the new card drops ends at the
  statement's `at` (or earlier, if its card said so).  A key's state is revoked, else replaced
  once its window has an end, else current.
* revoke: the key must have been listed by some card, and not be revoked already.

Which library does what: cbor2 decodes and re-encodes every CBOR item (every item must be the
one accepted encoding of what it decodes to); `cryptography` verifies every Ed25519 signature
over a Sig_structure built here, and checks X25519 points; pycose 1.1.0 verifies every statement
signature again (SignMessage, one COSE_Signature at a time) and every card self-signature
(Sign1Message), and must agree; hashlib computes thumbprints, `prev` hashes and the root id.

Usage:
    verify_keys.py HISTORY [--fingerprint FP] [--expect-revoked KID_PREFIX[:REASON]]...
                   [--expect-current-signing KID_PREFIX] [--expect-statements N]
                   [--compare-card-show JSON] [--json]
    verify_keys.py --vectors spec/vectors/keys.json
                   every history of the vectors verifies and gives what the vector says (root id,
                   fingerprint, statements, signers, keys; genesis root = the keys of root_seeds),
                   and every history the vectors list as refused is refused

Exit status 0 if everything verifies and every expectation holds; 1 with a one-line reason
(FAIL: …) otherwise; 2 for a usage error or a failure of this script itself.  HISTORY may hold the bytes or the same bytes as hex.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import io
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Optional

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pycose.algorithms import EdDSA
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.keys.keyparam import KpAlg
from pycose.messages import CoseMessage, Sign1Message, SignMessage

# --- Constants -----------------------------------------------------------------------------

TAG_SIGN = 98
TAG_SIGN1 = 18
ALG_EDDSA = -8
ALG_ECDH_ES_HKDF_256 = -25
KTY_OKP = 1
CRV_X25519 = 4
CRV_ED25519 = 6

MAX_HISTORY_BYTES = 4 * 1024 * 1024
MAX_STATEMENTS = 1024
MAX_STATEMENT_BYTES = 80 * 1024
MAX_SIGNERS = 16
MAX_ROOT_KEYS = 16
MAX_CARD_BYTES = 64 * 1024
STATEMENT_VERSION = 1
CARD_VERSION = 1
ROOT_DOMAIN = b"rogatory/root/v1\x00"

U32 = 2**32
U64 = 2**64

KINDS = ("genesis", "card", "revoke", "root", "officer")
# The optional fields each kind carries, exactly.
KIND_FIELDS = {"genesis": {"root", "card"}, "card": {"card"}, "revoke": {"revoke"},
               "root": {"root"}, "officer": {"officer"}}
STATEMENT_REQUIRED = {"version", "agency", "seq", "at", "kind"}
STATEMENT_OPTIONAL = {"prev", "root", "card", "revoke", "officer"}
OFFICER_ROLES = ("issuing-authority", "validating-authority", "liaison-officer")
OFFICER_NAME_RE = re.compile(r"[a-z][a-z0-9._-]{0,31}")
MAX_OFFICER_VALIDITY = 366 * 86400
REASONS = ("compromised", "superseded", "retired")
ROLES = {"central-authority", "police-liaison", "prosecutor", "court", "extradition",
         "contact-point247"}
CARD_REQUIRED = {"version", "id", "name", "country", "roles", "keys", "addresses", "languages",
                 "legal_bases", "issued_at"}
AGENCY_RE = re.compile(r"[A-Z]{2}\.[A-Z0-9](?:[A-Z0-9-]{0,30}[A-Z0-9])?")
HEX_RE = re.compile(r"(?:[0-9a-fA-F]{2})+")


class Refused(Exception):
    """The history (or an expectation) does not hold; the message says why."""


def need(condition: bool, message: str) -> None:
    if not condition:
        raise Refused(message)


def short(kid: bytes) -> str:
    return kid[:8].hex()


def utc(t: int) -> str:
    try:
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"@{t}"


# --- CBOR ----------------------------------------------------------------------------------

def decode_one(raw: bytes, what: str) -> Any:
    """Exactly one well-formed CBOR item, nothing after it."""
    fp = io.BytesIO(raw)
    try:
        obj = cbor2.CBORDecoder(fp).decode()
    except Exception as e:  # cbor2 raises several error types for malformed input
        raise Refused(f"{what}: not well-formed CBOR ({e})") from e
    need(fp.tell() == len(raw), f"{what}: {len(raw) - fp.tell()} bytes after the CBOR item")
    return obj


def encode(obj: Any, what: str) -> bytes:
    """Re-encodes a decoded item (to compare with the bytes it came from)."""
    try:
        return cbor2.dumps(obj)
    except Exception as e:  # e.g. a stray break marker cbor2 decoded as a value
        raise Refused(f"{what}: not in the one accepted encoding ({type(e).__name__})") from e


def canonical(obj: Any) -> bytes:
    """RFC 8949 §4.2.1 deterministic encoding: shortest heads (cbor2 always writes them),
    definite lengths, map keys in the bytewise order of their encodings."""

    def order(o: Any) -> Any:
        if isinstance(o, dict):
            items = sorted(((cbor2.dumps(k), k, order(v)) for k, v in o.items()),
                           key=lambda t: t[0])
            return {k: v for _, k, v in items}
        if isinstance(o, list):
            return [order(v) for v in o]
        if isinstance(o, cbor2.CBORTag):
            return cbor2.CBORTag(o.tag, order(o.value))
        need(not isinstance(o, float), "a floating-point number where none is allowed")
        return o

    return cbor2.dumps(order(obj))


def decode_strict(raw: bytes, what: str) -> Any:
    """Decodes, and requires the bytes to be the deterministic encoding of the decoded value
    (this refuses non-shortest heads, indefinite lengths, unsorted or duplicate map keys)."""
    obj = decode_one(raw, what)
    try:
        again = canonical(obj)
    except Refused:
        raise
    except Exception as e:  # cbor2 cannot encode what it decoded (a break marker, a bad key)
        raise Refused(f"{what}: not in deterministic CBOR encoding ({type(e).__name__})") from e
    need(again == raw, f"{what}: not in deterministic CBOR encoding (RFC 8949 §4.2.1)")
    return obj


def is_uint(v: Any, limit: int = U64) -> bool:
    return type(v) is int and 0 <= v < limit


def read_input(path: str) -> bytes:
    """A file's bytes, or the bytes its text spells in hex."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_HISTORY_BYTES + 1)
    except OSError as e:
        raise Refused(f"cannot read {path}: {e.strerror}") from e
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return data
    return bytes.fromhex(text) if HEX_RE.fullmatch(text) else data


# --- Keys and signatures -------------------------------------------------------------------

def thumbprint(crv: int, x: bytes) -> bytes:
    """RFC 9679 thumbprint of an OKP key: SHA-256 of the deterministic {1: 1, -1: crv, -2: x}."""
    return hashlib.sha256(canonical({1: KTY_OKP, -1: crv, -2: x})).digest()


def parse_cose_key(raw: Any, crv: int, alg: int, what: str) -> tuple[bytes, bytes]:
    """A public OKP COSE_Key exactly {1: 1, 2: kid, 3: alg, -1: crv, -2: x}, deterministically
    encoded, kid the thumbprint.  Returns (kid, x)."""
    need(isinstance(raw, bytes), f"{what}: a COSE_Key is carried as a byte string")
    key = decode_strict(raw, what)
    need(isinstance(key, dict), f"{what}: a COSE_Key is a map")
    need(set(key) == {1, 2, 3, -1, -2},
         f"{what}: expected exactly kty, kid, alg, crv, x (labels 1, 2, 3, -1, -2), got {list(key)}")
    need(key[1] == KTY_OKP, f"{what}: kty is {key[1]!r}, not OKP (1)")
    need(key[-1] == crv, f"{what}: crv is {key[-1]!r}, not {crv}")
    need(key[3] == alg, f"{what}: alg is {key[3]!r}, not {alg}")
    x, kid = key[-2], key[2]
    need(isinstance(x, bytes) and len(x) == 32, f"{what}: x is not 32 bytes")
    need(isinstance(kid, bytes) and len(kid) == 32, f"{what}: kid is not 32 bytes")
    need(kid == thumbprint(crv, x), f"{what}: kid {short(kid)}… is not the RFC 9679 thumbprint")
    return kid, x


def ed25519_ok(x: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(x).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def x25519_contributory(x: bytes) -> bool:
    """False for low-order points, with which every key agreement gives the all-zero secret
    (`cryptography` refuses that result)."""
    try:
        X25519PrivateKey.from_private_bytes(b"\x42" * 32).exchange(X25519PublicKey.from_public_bytes(x))
        return True
    except ValueError:
        return False


def pycose_key(x: bytes) -> OKPKey:
    return OKPKey(crv=Ed25519, x=x, optional_params={KpAlg: EdDSA})


# --- Agency cards --------------------------------------------------------------------------

@dataclass
class CardKey:
    use: str
    kid: bytes
    x: bytes
    valid_from: int
    valid_until: Optional[int]


@dataclass
class Card:
    raw: bytes
    agency: str
    body: dict
    sign: CardKey
    enc: CardKey


def parse_card(raw: Any, what: str) -> Card:
    """A tagged COSE_Sign1 (protected exactly {1: -8, 4: kid}, empty unprotected header, embedded
    payload, 64-byte signature), the body a deterministic map of the card fields, self-signed by
    the signing key it lists."""
    need(isinstance(raw, bytes), f"{what}: a card is carried as a byte string")
    need(len(raw) <= MAX_CARD_BYTES, f"{what}: larger than 64 KiB")
    obj = decode_one(raw, what)
    need(isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_SIGN1,
         f"{what}: not a tagged COSE_Sign1 (tag 18)")
    need(isinstance(obj.value, list) and len(obj.value) == 4, f"{what}: a COSE_Sign1 is an array of 4")
    protected, unprotected, payload, signature = obj.value
    need(isinstance(protected, bytes), f"{what}: the protected header is not a byte string")
    need(unprotected == {}, f"{what}: the unprotected header must be empty")
    need(isinstance(payload, bytes), f"{what}: the payload must be embedded")
    need(isinstance(signature, bytes) and len(signature) == 64, f"{what}: the signature is not 64 bytes")
    need(encode(cbor2.CBORTag(TAG_SIGN1, [protected, {}, payload, signature]), what) == raw,
         f"{what}: not in the one accepted encoding")
    header = decode_strict(protected, f"{what}, protected header")
    need(isinstance(header, dict) and set(header) == {1, 4} and header[1] == ALG_EDDSA
         and isinstance(header[4], bytes) and len(header[4]) == 32,
         f"{what}: the protected header is not exactly {{1: -8, 4: 32-byte kid}}")

    body = decode_strict(payload, f"{what}, body")
    need(isinstance(body, dict) and all(isinstance(k, str) for k in body),
         f"{what}: the body is not a map with text keys")
    extra = set(body) - CARD_REQUIRED
    missing = CARD_REQUIRED - set(body)
    need(not extra and not missing,
         f"{what}: body fields: missing {sorted(missing)}, unknown {sorted(extra)}")
    agency = body["id"]
    need(isinstance(agency, str) and AGENCY_RE.fullmatch(agency), f"{what}: bad agency id {agency!r}")
    what = f"{what} ({agency})"
    need(body["version"] == CARD_VERSION and is_uint(body["version"], U32),
         f"{what}: card version {body['version']!r} is not {CARD_VERSION}")
    need(body["country"] == agency[:2], f"{what}: the country does not match the agency id")
    name = body["name"]
    need(isinstance(name, str) and name.strip() and len(name) <= 256,
         f"{what}: the name must be 1 to 256 characters")
    roles = body["roles"]
    need(isinstance(roles, list) and roles and all(isinstance(r, str) and r in ROLES for r in roles),
         f"{what}: roles must be a non-empty list of {sorted(ROLES)}")
    for f in ("addresses", "languages", "legal_bases"):
        need(isinstance(body[f], list) and all(isinstance(s, str) for s in body[f]),
             f"{what}: {f} must be a list of text strings")
    need(len(body["addresses"]) <= 16 and all(len(a.encode()) <= 256 for a in body["addresses"]),
         f"{what}: at most 16 addresses of at most 256 bytes")
    need(is_uint(body["issued_at"]), f"{what}: issued_at is not an unsigned integer")

    keys = body["keys"]
    need(isinstance(keys, list) and len(keys) == 2,
         f"{what}: a card lists exactly one signing and one encryption key")
    found: dict[str, CardKey] = {}
    for i, k in enumerate(keys):
        where = f"{what}: keys[{i}]"
        need(isinstance(k, dict) and {"use", "cose_key", "valid_from"} <= set(k)
             <= {"use", "cose_key", "valid_from", "valid_until"},
             f"{where}: expected use, cose_key, valid_from and optionally valid_until")
        use = k["use"]
        need(use in ("sign", "encrypt") and use not in found,
             f"{what}: a card lists exactly one signing and one encryption key")
        need(is_uint(k["valid_from"]), f"{where}: valid_from is not an unsigned integer")
        until = k.get("valid_until")
        need("valid_until" not in k or is_uint(until),
             f"{where}: valid_until is not an unsigned integer")
        need(until is None or until > k["valid_from"], f"{where}: the validity ends before it starts")
        if use == "sign":
            kid, x = parse_cose_key(k["cose_key"], CRV_ED25519, ALG_EDDSA, f"{where} (signing key)")
        else:
            kid, x = parse_cose_key(k["cose_key"], CRV_X25519, ALG_ECDH_ES_HKDF_256,
                                    f"{where} (encryption key)")
            need(x25519_contributory(x), f"{where}: the X25519 key is a low-order point")
        found[use] = CardKey(use, kid, x, k["valid_from"], until)

    sign = found["sign"]
    need(header[4] == sign.kid, f"{what}: signed with kid {short(header[4])}…, not its own signing key")
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    by_hand = ed25519_ok(sign.x, signature, tbs)
    try:
        msg = Sign1Message.decode(raw)
        msg.key = pycose_key(sign.x)
        by_pycose = bool(msg.verify_signature())
    except Exception:  # pycose raises assorted errors; a failure to verify is "False" here
        by_pycose = False
    need(by_hand == by_pycose, f"{what}: cryptography and pycose disagree on the self-signature")
    need(by_hand, f"{what}: the self-signature does not verify")
    return Card(raw, agency, body, sign, found["encrypt"])


def card_keys_in_order(card: Card) -> list[CardKey]:
    return [card.sign if k["use"] == "sign" else card.enc for k in card.body["keys"]]


# --- Statements ----------------------------------------------------------------------------

@dataclass
class Sig:
    kid: bytes
    protected: bytes
    signature: bytes


@dataclass
class Statement:
    raw: bytes
    payload: bytes
    body: dict
    sigs: list[Sig]

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.payload).digest()


@dataclass
class RootSet:
    threshold: int
    keys: dict[bytes, bytes]  # kid -> x, in kid order


def parse_root_set(v: Any, what: str) -> RootSet:
    need(isinstance(v, dict) and set(v) == {"threshold", "keys"},
         f"{what}: a root set is {{threshold, keys}}")
    keys, threshold = v["keys"], v["threshold"]
    need(isinstance(keys, list) and 1 <= len(keys) <= MAX_ROOT_KEYS,
         f"{what}: a root set has 1 to {MAX_ROOT_KEYS} keys")
    need(is_uint(threshold, U32) and 1 <= threshold <= len(keys),
         f"{what}: the threshold {threshold!r} is not between 1 and the number of keys")
    parsed = [parse_cose_key(k, CRV_ED25519, ALG_EDDSA, f"{what}: root key {i}")
              for i, k in enumerate(keys)]
    kids = [kid for kid, _ in parsed]
    need(all(a < b for a, b in zip(kids, kids[1:])), f"{what}: root keys are not sorted by kid, each once")
    return RootSet(threshold, dict(parsed))


def root_id(root: RootSet) -> bytes:
    if root.threshold == 1 and len(root.keys) == 1:
        return next(iter(root.keys))
    return hashlib.sha256(ROOT_DOMAIN + cbor2.dumps([root.threshold, sorted(root.keys)])).digest()


def fingerprint(rid: bytes) -> str:
    h = rid[:16].hex().upper()
    return "-".join(h[i:i + 4] for i in range(0, 32, 4))


def parse_statement(raw: Any, index: int) -> Statement:
    what = f"statement {index}"
    need(isinstance(raw, bytes), f"{what}: not a byte string")
    need(len(raw) <= MAX_STATEMENT_BYTES, f"{what}: larger than 80 KiB")
    obj = decode_one(raw, what)
    need(isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_SIGN,
         f"{what}: not a tagged COSE_Sign (tag 98)")
    need(isinstance(obj.value, list) and len(obj.value) == 4, f"{what}: a COSE_Sign is an array of 4")
    protected, unprotected, payload, signatures = obj.value
    need(protected == b"", f"{what}: the body protected header must be the empty byte string")
    need(unprotected == {}, f"{what}: the body unprotected header must be empty")
    need(isinstance(payload, bytes), f"{what}: the payload must be embedded")
    need(isinstance(signatures, list) and len(signatures) <= MAX_SIGNERS,
         f"{what}: expected an array of at most {MAX_SIGNERS} COSE_Signatures")
    need(signatures, f"{what}: carries no signature (a statement prepared for signing)")
    sigs = []
    for j, s in enumerate(signatures):
        where = f"{what}, signature {j}"
        need(isinstance(s, list) and len(s) == 3, f"{where}: a COSE_Signature is an array of 3")
        sp, su, sig = s
        need(isinstance(sp, bytes) and len(sp) == 38 and sp[:6] == b"\xa2\x01\x27\x04\x58\x20",
             f"{where}: the protected header is not exactly {{1: -8, 4: 32-byte kid}}")
        need(su == {}, f"{where}: the unprotected header must be empty")
        need(isinstance(sig, bytes) and len(sig) == 64, f"{where}: an Ed25519 signature is 64 bytes")
        sigs.append(Sig(sp[6:], sp, sig))
    kids = [s.kid for s in sigs]
    need(all(a < b for a, b in zip(kids, kids[1:])), f"{what}: signatures are not sorted by kid, each once")
    need(encode(obj, what) == raw, f"{what}: not in the one accepted encoding")

    body = decode_strict(payload, f"{what}, payload")
    need(isinstance(body, dict) and all(isinstance(k, str) for k in body),
         f"{what}: the payload is not a map with text keys")
    unknown = set(body) - STATEMENT_REQUIRED - STATEMENT_OPTIONAL
    missing = STATEMENT_REQUIRED - set(body)
    need(not unknown and not missing,
         f"{what}: payload fields: missing {sorted(missing)}, unknown {sorted(unknown)}")
    need(is_uint(body["version"], U32) and body["version"] == STATEMENT_VERSION,
         f"{what}: statement version {body['version']!r} is not {STATEMENT_VERSION}")
    need(isinstance(body["agency"], str) and AGENCY_RE.fullmatch(body["agency"]),
         f"{what}: bad agency id {body['agency']!r}")
    need(is_uint(body["seq"]), f"{what}: seq is not an unsigned integer")
    need(is_uint(body["at"]), f"{what}: at is not an unsigned integer")
    kind = body["kind"]
    need(kind in KINDS, f"{what}: unknown kind {kind!r}")
    if "prev" in body:
        need(isinstance(body["prev"], bytes) and len(body["prev"]) == 32, f"{what}: prev is not 32 bytes")
    need((body["seq"] == 0) == (kind == "genesis"), f"{what}: statement 0, and only it, is the genesis")
    need((body["seq"] == 0) == ("prev" not in body), f"{what}: prev is absent exactly in statement 0")
    carried = set(body) & {"root", "card", "revoke", "officer"}
    need(carried == KIND_FIELDS[kind],
         f"{what}: a {kind} statement carries {sorted(KIND_FIELDS[kind])}, this one {sorted(carried)}")
    if kind == "revoke":
        r = body["revoke"]
        need(isinstance(r, dict) and set(r) == {"kid", "reason", "effective"},
             f"{what}: a revocation is {{kid, reason, effective}}")
        need(isinstance(r["kid"], bytes) and len(r["kid"]) == 32, f"{what}: a revoked key id is 32 bytes")
        need(r["reason"] in REASONS, f"{what}: unknown revocation reason {r['reason']!r}")
        need(is_uint(r["effective"]), f"{what}: effective is not an unsigned integer")
    if "card" in body:
        need(isinstance(body["card"], bytes), f"{what}: the card is not a byte string")
    if kind == "officer":
        o = body["officer"]
        need(isinstance(o, dict) and set(o) == {"name", "role", "key", "valid_from", "valid_until"},
             f"{what}: an officer's certificate is {{name, role, key, valid_from, valid_until}}")
        need(isinstance(o["name"], str) and OFFICER_NAME_RE.fullmatch(o["name"]),
             f"{what}: bad officer name {o['name']!r}")
        need(o["role"] in OFFICER_ROLES, f"{what}: unknown officer role {o['role']!r}")
        need(is_uint(o["valid_from"]) and is_uint(o["valid_until"]), f"{what}: validity not uints")
        need(0 < o["valid_until"] - o["valid_from"] <= MAX_OFFICER_VALIDITY,
             f"{what}: an officer's certificate is valid for more than 0 and at most 366 days")
    return Statement(raw, payload, body, sigs)


# --- Replay --------------------------------------------------------------------------------

@dataclass
class Revoked:
    reason: str
    effective: int
    seq: int
    at: int


@dataclass
class KeyRecord:
    kid: bytes
    use: str
    card: int
    introduced: int
    valid_from: int
    valid_until: Optional[int]
    revoked: Optional[Revoked] = None


@dataclass
class Officer:
    name: str
    role: str
    kid: bytes
    x: bytes
    valid_from: int
    valid_until: int
    introduced: int
    revoked: Optional[Revoked] = None


@dataclass
class Summary:
    seq: int
    kind: str
    at: int
    hash: bytes
    signers: list[tuple[bytes, str]]  # (kid, role)
    detail: str


@dataclass
class History:
    agency: str
    root_id: bytes
    genesis_root: RootSet
    root: RootSet
    cards: list[Card] = field(default_factory=list)
    keys: dict[bytes, KeyRecord] = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    last_at: int = 0
    bare: bool = False
    officers: dict[bytes, "Officer"] = field(default_factory=dict)

    @property
    def card(self) -> Card:
        return self.cards[-1]

    def state(self, rec: KeyRecord) -> str:
        """spec/KEYS.md §4.1: revoked; replaced once its window has an end; else current."""
        if rec.revoked:
            return "revoked"
        return "current" if rec.valid_until is None else "replaced"


def check_signers(st: Statement, root: RootSet, others: dict[bytes, tuple[bytes, str]],
                  new_root: Optional[RootSet] = None) -> list[tuple[bytes, str]]:
    """Every signature by an allowed key and verifying (cryptography, then pycose); at least the
    root's threshold of root keys (and of the new root's, for a root statement)."""
    seq = st.body["seq"]
    try:
        pycose_msg = CoseMessage.decode(st.raw)
        need(isinstance(pycose_msg, SignMessage) and len(pycose_msg.signers) == len(st.sigs),
             f"statement {seq}: pycose does not read it as a COSE_Sign with {len(st.sigs)} signers")
    except Refused:
        raise
    except Exception as e:
        raise Refused(f"statement {seq}: pycose cannot decode it ({type(e).__name__}: {e})") from e
    signers = []
    in_root = in_new = 0
    for j, s in enumerate(st.sigs):
        roles = []
        if s.kid in root.keys:
            roles.append("root")
            x = root.keys[s.kid]
        if new_root is not None and s.kid in new_root.keys:
            roles.append("new root")
            x = new_root.keys[s.kid]
        if s.kid in others:
            x, role = others[s.kid]
            roles.append(role)
        need(bool(roles), f"statement {seq}: signed by key {short(s.kid)}…, which may not sign it")
        tbs = cbor2.dumps(["Signature", b"", s.protected, b"", st.payload])
        by_hand = ed25519_ok(x, s.signature, tbs)
        try:
            signer = pycose_msg.signers[j]
            signer.key = pycose_key(x)
            by_pycose = bool(signer.verify_signature())
        except Exception:  # pycose raises assorted errors; treat them as "does not verify"
            by_pycose = False
        need(by_hand == by_pycose,
             f"statement {seq}: cryptography and pycose disagree on the signature of {short(s.kid)}…")
        need(by_hand, f"statement {seq}: the signature of key {short(s.kid)}… does not verify")
        in_root += "root" in roles
        in_new += "new root" in roles
        signers.append((s.kid, "+".join(roles)))
    need(in_root >= root.threshold,
         f"statement {seq}: signed by {in_root} root key(s); the root threshold is {root.threshold}")
    if new_root is not None:
        need(in_new >= new_root.threshold,
             f"statement {seq}: signed by {in_new} key(s) of the new root; its threshold is "
             f"{new_root.threshold}")
    return signers


def certified_card(st: Statement, agency: str) -> Card:
    seq = st.body["seq"]
    card = parse_card(st.body["card"], f"statement {seq}: card")
    need(card.agency == agency, f"statement {seq}: certifies a card of {card.agency}, not {agency}")
    return card


def new_records(card: Card, index: int, seq: int, at: int) -> list[KeyRecord]:
    return [KeyRecord(k.kid, k.use, index, seq, max(k.valid_from, at), k.valid_until)
            for k in card_keys_in_order(card)]


def replay(raw_statements: list[bytes]) -> History:
    need(1 <= len(raw_statements) <= MAX_STATEMENTS, "a history holds 1 to 1024 statements")
    g = parse_statement(raw_statements[0], 0)
    b = g.body
    need(b["kind"] == "genesis", "a key history starts with its genesis")
    root = parse_root_set(b["root"], "statement 0: root")
    card = certified_card(g, b["agency"])
    signers = check_signers(g, root, {})
    h = History(b["agency"], root_id(root), root, root, last_at=b["at"])
    h.cards.append(card)
    for r in new_records(card, 0, 0, b["at"]):
        h.keys[r.kid] = r
    h.statements.append(g)
    h.summaries.append(Summary(0, "genesis", b["at"], g.hash, signers,
                               f"root {root.threshold} of {len(root.keys)}; card signing key "
                               f"{short(card.sign.kid)}…, encryption key {short(card.enc.kid)}…"))

    for index, raw in enumerate(raw_statements[1:], start=1):
        st = parse_statement(raw, index)
        b = st.body
        seq, at, kind = b["seq"], b["at"], b["kind"]
        need(b["agency"] == h.agency, f"statement {index}: names {b['agency']}, the history is {h.agency}'s")
        chained = b["prev"] == h.statements[-1].hash
        broken = (f"prev {b['prev'].hex()[:16]}… is not SHA-256 of statement {index - 1}'s payload "
                  f"({h.statements[-1].hash.hex()[:16]}…)")
        need(seq == index, f"statement {index}: numbered {seq}" + ("" if chained else f", and its {broken}"))
        need(chained, f"statement {index}: {broken}")
        need(at >= h.last_at, f"statement {index}: takes effect ({at}) before the previous one ({h.last_at})")
        need(kind != "genesis", f"statement {index}: only statement 0 is a genesis")
        if kind == "card":
            new = certified_card(st, h.agency)
            old = h.card.sign
            others = {}
            if h.keys[old.kid].revoked is None:
                others[old.kid] = (old.x, "previous signing key")
            signers = check_signers(st, h.root, others)
            current = {h.card.sign.kid, h.card.enc.kid}
            listed = {new.sign.kid, new.enc.kid}
            index_card = len(h.cards)
            for r in new_records(new, index_card, seq, at):
                if r.kid in h.keys:
                    need(r.kid in current, f"statement {index}: the new card brings back key "
                         f"{short(r.kid)}…, already replaced")
                    need(h.keys[r.kid].revoked is None,
                         f"statement {index}: the new card keeps key {short(r.kid)}…, which is revoked")
                    h.keys[r.kid].valid_until = r.valid_until
                else:
                    h.keys[r.kid] = r
            for kid in current - listed:
                rec = h.keys[kid]
                rec.valid_until = at if rec.valid_until is None else min(rec.valid_until, at)
            h.cards.append(new)
            endorsed = old.kid in [k for k, _ in signers]
            detail = (f"new card: signing key {short(new.sign.kid)}…, encryption key "
                      f"{short(new.enc.kid)}…" + ("; endorsed by the key it replaces" if endorsed else ""))
        elif kind == "revoke":
            r = b["revoke"]
            signers = check_signers(st, h.root, {})
            need(r["kid"] in h.keys or r["kid"] in h.officers,
                 f"statement {index}: revokes key {short(r['kid'])}…, which the history never listed")
            rec = h.keys.get(r["kid"]) or h.officers[r["kid"]]
            need(rec.revoked is None, f"statement {index}: revokes key {short(r['kid'])}…, already revoked")
            rec.revoked = Revoked(r["reason"], r["effective"], seq, at)
            use = rec.use if isinstance(rec, KeyRecord) else f"{rec.name}'s officer"
            detail = f"revokes {use} key {short(r['kid'])}… ({r['reason']}, effective {utc(r['effective'])})"
        elif kind == "officer":
            o = b["officer"]
            kid, x = parse_cose_key(o["key"], CRV_ED25519, ALG_EDDSA, f"statement {index}: officer key")
            need(kid not in h.keys and kid not in h.officers,
                 f"statement {index}: certifies key {short(kid)}…, which the history already holds")
            # The root alone certifies an official.
            signers = check_signers(st, h.root, {})
            h.officers[kid] = Officer(o["name"], o["role"], kid, x, max(o["valid_from"], at),
                                      o["valid_until"], seq)
            detail = f"certifies {o['name']} ({o['role']}), key {short(kid)}…"
        else:  # root
            new_root = parse_root_set(b["root"], f"statement {index}: root")
            signers = check_signers(st, h.root, {}, new_root)
            h.root = new_root
            detail = f"new root: {new_root.threshold} of {len(new_root.keys)}"
        h.last_at = at
        h.statements.append(st)
        h.summaries.append(Summary(seq, kind, at, st.hash, signers, detail))
    return h


def from_bare_card(raw: bytes) -> History:
    card = parse_card(raw, "bare card")
    root = RootSet(1, {card.sign.kid: card.sign.x})
    h = History(card.agency, card.sign.kid, root, root, last_at=card.body["issued_at"], bare=True)
    h.cards.append(card)
    for r in new_records(card, 0, 0, 0):
        h.keys[r.kid] = r
    return h


def verify_file(raw: bytes) -> History:
    need(len(raw) <= MAX_HISTORY_BYTES, "the history is larger than 4 MiB")
    need(len(raw) > 0, "the file is empty")
    if raw[0] == 0xD2:
        return from_bare_card(raw)
    arr = decode_one(raw, "history file")
    need(isinstance(arr, list) and all(isinstance(s, bytes) for s in arr),
         "the history file is not a CBOR array of byte strings")
    need(encode(arr, "history file") == raw, "the history file is not in the one accepted encoding")
    return replay(arr)


# --- Expectations and output ---------------------------------------------------------------

def normalize_fp(s: str) -> str:
    return "".join(c for c in s if c in "0123456789abcdefABCDEF").upper()


def check_fingerprint(h: History, given: str) -> None:
    g = normalize_fp(given)
    actual = normalize_fp(fingerprint(h.root_id))
    need(len(g) >= 32 and actual.startswith(g),
         f"the root fingerprint is {fingerprint(h.root_id)}, not the expected {given}")


def find_key(h: History, prefix: str, what: str) -> KeyRecord:
    p = prefix.lower()
    need(len(p) >= 8 and all(c in "0123456789abcdef" for c in p),
         f"{what}: give at least 8 hex digits of the key id")
    matches = [r for r in h.keys.values() if r.kid.hex().startswith(p)]
    need(len(matches) == 1, f"{what}: {len(matches)} keys of the history have an id starting {p}")
    return matches[0]


def check_expectations(h: History, args: argparse.Namespace) -> None:
    if args.fingerprint is not None:
        check_fingerprint(h, args.fingerprint)
    for spec in args.expect_revoked or []:
        prefix, _, reason = spec.partition(":")
        rec = find_key(h, prefix, "--expect-revoked")
        need(rec.revoked is not None, f"key {short(rec.kid)}… is {h.state(rec)}, not revoked")
        need(not reason or rec.revoked.reason == reason,
             f"key {short(rec.kid)}… is revoked as {rec.revoked.reason}, not {reason}")
    if args.expect_current_signing is not None:
        p = args.expect_current_signing.lower()
        need(len(p) >= 8, "--expect-current-signing: give at least 8 hex digits of the key id")
        kid = h.card.sign.kid
        need(kid.hex().startswith(p), f"the current signing key is {kid.hex()}, not {p}…")
        need(h.keys[kid].revoked is None, f"the current signing key {short(kid)}… is revoked")
    if args.expect_statements is not None:
        need(len(h.statements) == args.expect_statements,
             f"the history holds {len(h.statements)} statement(s), not {args.expect_statements}")


def key_json(h: History, r: KeyRecord) -> dict:
    return {
        "key_id": r.kid.hex(), "use": r.use, "state": h.state(r), "card": r.card,
        "introduced": r.introduced, "valid_from": r.valid_from, "valid_until": r.valid_until,
        "revoked": None if r.revoked is None else {
            "reason": r.revoked.reason, "effective": r.revoked.effective,
            "statement": r.revoked.seq, "at": r.revoked.at},
    }


def to_json(h: History) -> dict:
    return {
        "agency": h.agency,
        "bare_card": h.bare,
        "fingerprint": fingerprint(h.root_id),
        "root_id": h.root_id.hex(),
        "genesis_root": {"threshold": h.genesis_root.threshold,
                         "keys": [k.hex() for k in h.genesis_root.keys]},
        "root": {"threshold": h.root.threshold, "keys": [k.hex() for k in h.root.keys]},
        "statements": [{"seq": s.seq, "kind": s.kind, "at": s.at, "hash": s.hash.hex(),
                        "signers": [{"key_id": k.hex(), "as": role} for k, role in s.signers],
                        "detail": s.detail} for s in h.summaries],
        "keys": [key_json(h, r) for r in h.keys.values()],
        "current": {"signing_key": h.card.sign.kid.hex(), "encryption_key": h.card.enc.kid.hex()},
    }


def print_text(h: History) -> None:
    if h.bare:
        print(f"bare card of {h.agency}: no key history, its signing key is its root")
    else:
        print(f"key history of {h.agency}: {len(h.statements)} statement(s); genesis root "
              f"{h.genesis_root.threshold} of {len(h.genesis_root.keys)}, current root "
              f"{h.root.threshold} of {len(h.root.keys)}")
    print(f"fingerprint: {fingerprint(h.root_id)} (root id {h.root_id.hex()})")
    for s in h.summaries:
        who = ", ".join(f"{short(k)}… ({role})" for k, role in s.signers)
        print(f"statement {s.seq}: {s.kind} at {utc(s.at)}, signed by {who}: {s.detail}")
    for r in h.keys.values():
        window = f"valid from {utc(r.valid_from)}" + (
            f" until {utc(r.valid_until)}" if r.valid_until is not None else "")
        state = h.state(r)
        if r.revoked:
            state += (f" ({r.revoked.reason}, effective {utc(r.revoked.effective)}, "
                      f"statement {r.revoked.seq})")
        print(f"key {r.kid.hex()} {r.use:7}: {state}; {window}")
    print(f"current card: signing key {h.card.sign.kid.hex()}, encryption key {h.card.enc.kid.hex()}")


def compare_card_show(h: History, path: str) -> list[str]:
    """Compares with what `rogatory card show --json` printed for the same file: fingerprint,
    current root, current signing key, every key's id, use, window, state and revocation, and
    every official's name, role, key, window, state and revocation."""
    try:
        with open(path, encoding="utf-8") as f:
            other = json.load(f)
    except (OSError, ValueError) as e:
        raise Refused(f"cannot read {path}: {e}") from e
    problems = []
    if other.get("fingerprint") != fingerprint(h.root_id):
        problems.append(f"fingerprint: {other.get('fingerprint')} vs {fingerprint(h.root_id)}")
    want_root = {"threshold": h.root.threshold, "keys": [k.hex() for k in h.root.keys]}
    if other.get("root") != want_root:
        problems.append(f"root: {other.get('root')} vs {want_root}")
    if other.get("signing_key", {}).get("key_id") != h.card.sign.kid.hex():
        problems.append("current signing key differs")
    mine = [{"key_id": r.kid.hex(), "use": r.use, "valid_from": utc(r.valid_from),
             "valid_until": None if r.valid_until is None else utc(r.valid_until),
             "state": h.state(r),
             "revoked": None if r.revoked is None else {
                 "reason": r.revoked.reason, "effective": utc(r.revoked.effective),
                 "statement": r.revoked.seq}} for r in h.keys.values()]
    theirs = other.get("keys", [])
    if mine != theirs:
        problems.append(f"keys: rogatory says {json.dumps(theirs)}, this script {json.dumps(mine)}")
    mine = [{"name": o.name, "role": o.role, "key_id": o.kid.hex(), "valid_from": utc(o.valid_from),
             "valid_until": utc(o.valid_until), "state": "revoked" if o.revoked else "certified",
             "revoked": None if o.revoked is None else {
                 "reason": o.revoked.reason, "effective": utc(o.revoked.effective),
                 "statement": o.revoked.seq}} for o in h.officers.values()]
    theirs = other.get("officers", [])
    if mine != theirs:
        problems.append(f"officers: rogatory says {json.dumps(theirs)}, this script {json.dumps(mine)}")
    return problems


def ed25519_public(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle tree hash of the leaves' data."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


def key_log_checkpoint(h: History, size: int) -> str:
    """The C2SP checkpoint body of the first `size` statements of h's key log (KEYS.md §7.6):
    origin rogatory.<agency>/keys, one leaf per statement payload."""
    root = merkle_root([st.payload for st in h.statements[:size]])
    return f"rogatory.{h.agency}/keys\n{size}\n{base64.b64encode(root).decode()}\n"


def verify_cosignature_v1(note: str, name: str, x: bytes) -> tuple[str, int]:
    """A C2SP signed note with exactly one cosignature/v1 line (signature type 0x04) by `name`
    with Ed25519 key x: returns its checkpoint body and timestamp."""
    need(note.endswith("\n") and "\n\n" in note, "a note is a text, a blank line and signature lines")
    body, sigs = note.split("\n\n", 1)
    body += "\n"
    lines = sigs[:-1].split("\n")
    need(len(lines) == 1, f"exactly one signature line, not {len(lines)}")
    dash, who, b64 = lines[0].split(" ")
    need(dash == "\u2014" and who == name, f"the line is by {who}, not {name}")
    raw = base64.b64decode(b64, validate=True)
    need(len(raw) == 4 + 8 + 64, "a cosignature/v1 is a key id, a timestamp and a signature")
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + x).digest()[:4]
    need(raw[:4] == key_id, "the key id is not the witness key's")
    t = int.from_bytes(raw[4:12], "big")
    message = f"cosignature/v1\ntime {t}\n".encode() + body.encode()
    need(ed25519_ok(x, raw[12:], message), f"the cosignature by {name} does not verify")
    return body, t


def check_key_log(kl: dict, h: History) -> None:
    """The key log vectors: checkpoint recomputed from the history, the agency's freshness note
    and a witness's cosignatures (of the whole log and of a prefix) verified."""
    n = len(h.statements)
    need(key_log_checkpoint(h, n) == kl["checkpoint"], "the key log checkpoint differs from the vector")
    body, t = verify_cosignature_v1(kl["fresh"], f"rogatory.{h.agency}", h.cards[-1].sign.x)
    need(body == kl["checkpoint"] and t == kl["fresh_time"], "the freshness note names another checkpoint or time")
    wx = bytes.fromhex(kl["witness_public_key"])
    wname = f"rogatory.{kl['witness']}"
    body, t = verify_cosignature_v1(kl["cosignature"], wname, wx)
    need(body == kl["checkpoint"] and t == kl["cosignature_time"], "the cosignature names another checkpoint")
    body, t = verify_cosignature_v1(kl["prefix_cosignature"], wname, wx)
    need(body == key_log_checkpoint(h, kl["prefix_size"]) and t == kl["prefix_time"],
         "the prefix cosignature is not of the history's first statements")
    # A split view: the same cosignature over another root is refused.
    forged = kl["cosignature"].replace(kl["checkpoint"].split("\n")[2], base64.b64encode(bytes(32)).decode())
    try:
        verify_cosignature_v1(forged, wname, wx)
    except Refused:
        pass
    else:
        raise Refused("a cosignature over another root verified")
    print(f"ok: {h.agency}'s key log: checkpoint of {n} statements, freshness note by its current key, "
          f"{kl['witness']}'s cosignatures of the whole log and of its first {kl['prefix_size']} statements")


def run_vectors(path: str) -> None:
    """Checks spec/vectors/keys.json against this script's own replay; prints ok lines."""
    try:
        with open(path, encoding="utf-8") as f:
            v = json.load(f)
    except (OSError, ValueError) as e:
        raise Refused(f"cannot read {path}: {e}") from e
    try:
        histories, refused = v["histories"], v["refused"]
        for hv in histories:
            what = f"{path}: {hv['agency']}"
            exp = hv["history"]
            h = verify_file(bytes.fromhex(exp["file"]))
            need(h.agency == hv["agency"], f"{what}: the history is {h.agency}'s")
            need(h.root_id.hex() == exp["root_id"], f"{what}: root id {h.root_id.hex()}, the vector says {exp['root_id']}")
            need(fingerprint(h.root_id) == exp["fingerprint"],
                 f"{what}: fingerprint {fingerprint(h.root_id)}, the vector says {exp['fingerprint']}")
            seeds = sorted(thumbprint(CRV_ED25519, ed25519_public(bytes.fromhex(x) * 32)) for x in hv["root_seeds"])
            need(seeds == sorted(h.genesis_root.keys), f"{what}: the genesis root is not the keys of root_seeds")
            need(len(exp["statements"]) == len(h.statements), f"{what}: the vector lists "
                 f"{len(exp['statements'])} statements, the file holds {len(h.statements)}")
            for sv, st, sm in zip(exp["statements"], h.statements, h.summaries):
                got = {"seq": sm.seq, "kind": sm.kind, "at": sm.at, "bytes": st.raw.hex(),
                       "payload_sha256": sm.hash.hex(), "signers": [k.hex() for k, _ in sm.signers]}
                for k, x in got.items():
                    need(sv[k] == x, f"{what}, statement {sm.seq}: {k} differs from the vector")
            mine = [{"kid": r.kid.hex(), "use": r.use, "from": r.valid_from, "until": r.valid_until,
                     "revoked": None if r.revoked is None else {
                         "effective": r.revoked.effective, "reason": r.revoked.reason, "seq": r.revoked.seq}}
                    for r in h.keys.values()]
            need(mine == exp["keys"], f"{what}: the keys differ: the vector says {json.dumps(exp['keys'])}, "
                 f"the replay gives {json.dumps(mine)}")
            officers = [{"name": o.name, "role": o.role, "kid": o.kid.hex(), "from": o.valid_from,
                         "until": o.valid_until, "revoked": None if o.revoked is None else {
                             "reason": o.revoked.reason, "effective": o.revoked.effective,
                             "seq": o.revoked.seq}}
                        for o in h.officers.values()]
            need(officers == exp["officers"], f"{what}: the officers differ: the vector says "
                 f"{json.dumps(exp['officers'])}, the replay gives {json.dumps(officers)}")
            print(f"ok: {hv['agency']} ({hv['story']}): root id, fingerprint {exp['fingerprint']}, "
                  f"{len(h.statements)} statements with their signers, {len(mine)} keys and "
                  f"{len(officers)} officer(s) as the vector says")
            if v["key_log"]["agency"] == hv["agency"]:
                check_key_log(v["key_log"], h)
        for rv in refused:
            try:
                replay([bytes.fromhex(x) for x in rv["statements"]])
            except Refused as e:
                print(f"ok: refused ({rv['error']}): {rv['what']}: {e}")
                continue
            raise Refused(f"{path}: accepted a history the vectors refuse: {rv['what']}")
    except (KeyError, TypeError, ValueError) as e:
        raise Refused(f"{path}: malformed vector ({type(e).__name__}: {e})") from e
    need(histories and refused, f"{path}: no histories or no refused histories")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Verify a Rogatory key history (or bare agency card) "
                                "with independent libraries; exit 0 only if it verifies and "
                                "every expectation holds.")
    p.add_argument("history", nargs="?", help="the history file (`rogatory card export`) or a bare card")
    p.add_argument("--vectors", metavar="KEYS_JSON", help="check spec/vectors/keys.json instead")
    p.add_argument("--fingerprint", help="the pinned root fingerprint (any case, any separators, "
                   "at least 32 hex digits)")
    p.add_argument("--expect-revoked", action="append", metavar="KID_PREFIX[:REASON]",
                   help="this key (at least 8 hex digits of its id) is revoked (for REASON); repeatable")
    p.add_argument("--expect-current-signing", metavar="KID_PREFIX",
                   help="this key is the current card's signing key, and not revoked")
    p.add_argument("--expect-statements", type=int, metavar="N", help="the history holds N statements")
    p.add_argument("--compare-card-show", metavar="JSON",
                   help="`rogatory card show --json` output for the same file: must agree")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    args = p.parse_args(argv)
    if (args.history is None) == (args.vectors is None):
        p.error("give a HISTORY file, or --vectors")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    h = None
    try:
        if args.vectors:
            run_vectors(args.vectors)
            return 0
        h = verify_file(read_input(args.history))
        check_expectations(h, args)
        if args.compare_card_show:
            problems = compare_card_show(h, args.compare_card_show)
            need(not problems, "rogatory card show disagrees: " + "; ".join(problems))
    except Refused as e:
        error = str(e).replace("\n", " ")
        if args.json:
            doc = {"ok": False, "error": error}
            if h is not None:
                doc.update(to_json(h))
            print(json.dumps(doc, indent=2))
        print(f"FAIL: {error}", file=sys.stderr if args.json else sys.stdout)
        return 1
    except Exception as e:  # a bug of this script, not a verdict on the history: exit 2
        print(f"error: verify_keys.py failed on its input: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"ok": True, **to_json(h)}, indent=2))
    else:
        print_text(h)
        print("ok: every statement and signature verifies"
              + (", the fingerprint matches" if args.fingerprint else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
