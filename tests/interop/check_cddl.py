#!/usr/bin/env python3
"""Check the test vectors in spec/vectors/ against the CDDL schemas in spec/cddl/.

What is checked (every line of output is "ok   ..." or "FAIL ..."; the exit status is 0 only if
every check passes):

  * every schema parses, and a rule defined in several schema files is defined identically in
    all of them (the files are self-contained, so shared rules are repeated);
  * spec/vectors/messages.json: each message type's CBOR against spec/cddl/<type>.cddl, then
    negative checks on the decoded message (required keys removed, null values, unknown keys,
    broken conditional rules) that the schema must refuse, and a few variants it must accept;
  * spec/vectors/receipts.json: each receipt's COSE_Sign1 payload against receipt.cddl, the
    COSE_Sign1 itself against `signed-receipt`, and negative checks;
  * every agency card in spec/vectors/ (envelope-*.json agencies[].card and the receipts'
    issuer): the payload against agency-card.cddl, the COSE_Keys it carries, the COSE_Sign1
    against `agency-card`, and negative checks;
  * every envelope in spec/vectors/envelope-*.json against envelope.cddl, layer by layer: the
    outer COSE_Sign1, the COSE_Encrypt, its recipient, the inner COSE_Sign1 given in the vector
    (and its payload against the schema of the type it names), the COSE_KDF_Context and
    Enc_structure built as spec/PROTOCOL.md §3.5 says (and, with the `cryptography` package,
    that they decrypt the vector to exactly the inner COSE_Sign1), and negative checks.

Validation uses pycddl (the Rust `cddl` crate). Where that validator departs from RFC 8610 the
checker works around it, without weakening what the schema says:

  * `.regexp`: the crate matches unanchored, while RFC 8610 §3.8.3 patterns are implicitly
    anchored, so every pattern is wrapped as ^(?:...)$ before it is given to pycddl;
  * `.cbor` on an array element: the crate applies the control to every element of the array,
    so COSE arrays are validated with `bstr .cbor R` read as `bstr` ("relaxed"), and each
    embedded byte string is then validated separately against R (protected headers, payloads);
  * maps that are array elements are not checked for unknown keys by the crate, so such
    elements (contacts, offences, persons, measures, items, card keys, unprotected COSE
    headers ...) are also validated one by one against their rule, where the check is made;
  * an array whose only entry is itself an array (`[recipient]`) is not checked for length by
    the crate, so the one-recipient rule is asserted directly;
  * the crate accepts any map for the empty map `{}`, so empty unprotected headers are asserted
    directly.

Usage:
  /tmp/pyvenv/bin/python tests/interop/check_cddl.py            # from the repository root
  python3 tests/interop/check_cddl.py --repo /path/to/repo -v   # show the validator's messages

Needs: pycddl, cbor2 (tests/interop/requirements.txt pins cbor2); cryptography is optional
(decryption cross-check of the KDF context).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

MESSAGE_TYPES = [
    "mla-request",
    "mla-status",
    "evidence-manifest",
    "extradition-status",
    "liaison",
    "preservation-request",
    "evidence-status",
]

# Root rule of each message schema (the first rule of the file).
ROOT_RULE = {
    "mla-request": "mla-request",
    "mla-status": "mla-status-update",
    "evidence-manifest": "evidence-manifest",
    "extradition-status": "extradition-status-update",
    "liaison": "liaison-message",
    "preservation-request": "preservation-request",
    "evidence-status": "evidence-status",
    "receipt": "receipt",
    "agency-card": "card-body",
    "envelope": "rogatory-envelope",
    "audit-entry": "audit-entry",
    "key-statement": "key-statement-body",
}

# Maps that sit in arrays, per schema: (path, rule). `[]` means every element of the array.
# The crate does not check such maps for unknown keys, so each is validated on its own.
ELEMENTS = {
    "mla-request": [
        ("requesting_authority.contacts[]", "contact"),
        ("requested_authority.contacts[]", "contact"),
        ("offences[]", "offence"),
        ("persons[]", "person"),
        ("assistance[]", "measure"),
        ("assistance[].targets[]", "target"),
        ("related_requests[]", "related-request"),
        ("attachments[]", "attachment-ref"),
    ],
    "mla-status": [],
    "evidence-manifest": [
        ("items[]", "evidence-item"),
        ("items[].custody[]", "custody-entry"),
        ("items[].perceptual_hashes[]", "perceptual-hash"),
    ],
    "extradition-status": [],
    "liaison": [("attachments[]", "attachment-ref")],
    "preservation-request": [
        ("requesting_authority.contacts[]", "contact"),
        ("offences[]", "offence"),
        ("data[]", "preserved-data"),
    ],
    "evidence-status": [
        ("items[]", "item-status"),
        ("items[].custody[]", "custody-entry"),
    ],
    "receipt": [],
    "agency-card": [],  # keys[] are checked by use, see check_cards()
}

# Keys always present in each message (the Rust fields without skip_serializing_if).
REQUIRED_KEYS = {
    "mla-request": [
        "requesting_authority", "requested_authority", "legal_basis", "proceedings",
        "summary_of_facts", "offences", "persons", "assistance", "purpose", "confidentiality",
        "urgency", "related_requests", "attachments", "language",
    ],
    "mla-status": ["status", "effective_at", "grounds", "items"],
    "evidence-manifest": ["items"],
    "extradition-status": ["stage", "person_reference", "effective_date"],
    "liaison": ["subject", "body", "handling", "priority", "attachments"],
    "preservation-request": [
        "requesting_authority", "offences", "summary_of_facts", "data", "necessity",
        "intends_mla_request", "period_days", "urgency", "do_not_inform_subject",
    ],
    "evidence-status": ["items"],
}
RECEIPT_REQUIRED = ["version", "envelope_id", "from", "to", "event", "received_at"]
CARD_REQUIRED = [
    "version", "id", "name", "country", "roles", "keys", "addresses", "languages",
    "legal_bases", "issued_at",
]

COSE_SIGN1_TAG = 18
COSE_ENCRYPT_TAG = 96

# ---------------------------------------------------------------------------------------------
# Small helpers for mutating decoded values.

_MISSING = object()


def _parse_path(path: str) -> list:
    """'a.b[0].c' -> ['a', 'b', 0, 'c']; integer labels as '#-65544'."""
    out: list = []
    for part in path.split("."):
        m = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", part)
        if not m:
            raise ValueError(path)
        name, idx = m.groups()
        if name:
            out.append(int(name[1:]) if name.startswith("#") else name)
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", idx))
    return out


def setv(path: str, new):
    """Mutation: set the value at path (adding the key if absent)."""

    def f(v):
        keys = _parse_path(path)
        target = v
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = new

    return f


def delete(path: str):
    """Mutation: remove the key at path."""

    def f(v):
        keys = _parse_path(path)
        target = v
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return f


def chain(*fs):
    def f(v):
        for g in fs:
            g(v)

    return f


def _walk(value, tokens: list[str], where: str):
    """Yields (json path, element) for a path such as 'assistance[].targets[]'."""
    if not tokens:
        yield where, value
        return
    tok, rest = tokens[0], tokens[1:]
    if tok.endswith("[]"):
        key = tok[:-2]
        arr = value.get(key) if isinstance(value, dict) else None
        if not isinstance(arr, list):
            return
        for i, el in enumerate(arr):
            yield from _walk(el, rest, f"{where}{'.' if where else ''}{key}[{i}]")
    else:
        if isinstance(value, dict) and tok in value:
            yield from _walk(value[tok], rest, f"{where}{'.' if where else ''}{tok}")


# ---------------------------------------------------------------------------------------------


class Checker:
    def __init__(self, cddl_dir: Path, vectors_dir: Path, verbose: bool, decrypt: bool):
        import cbor2  # noqa: PLC0415
        import pycddl  # noqa: PLC0415

        self.cbor2 = cbor2
        self.pycddl = pycddl
        self.cddl_dir = cddl_dir
        self.vectors_dir = vectors_dir
        self.verbose = verbose
        self.decrypt = decrypt
        self.passed = 0
        self.failed = 0
        self._texts: dict[str, str] = {}
        self._schemas: dict[tuple, object] = {}

    # -- reporting --------------------------------------------------------------------------

    def ok(self, what: str, detail: str | None = None) -> None:
        self.passed += 1
        print(f"ok   {what}")
        if detail and self.verbose:
            lines = detail.strip().splitlines()
            more = f" [+{len(lines) - 2} more]" if len(lines) > 2 else ""
            print("       " + "\n       ".join(x[:300] for x in lines[:2]) + more)

    def fail(self, what: str, detail: str | None = None) -> None:
        self.failed += 1
        print(f"FAIL {what}")
        if detail:
            limit = 4000 if self.verbose else 600
            print("       " + detail.strip().replace("\n", "\n       ")[:limit])

    # -- schemas ----------------------------------------------------------------------------

    def text(self, name: str) -> str:
        if name not in self._texts:
            self._texts[name] = (self.cddl_dir / f"{name}.cddl").read_text(encoding="utf-8")
        return self._texts[name]

    @staticmethod
    def anchor_regexps(text: str) -> str:
        # RFC 8610 §3.8.3: .regexp patterns are implicitly anchored; the crate matches anywhere.
        return re.sub(r'\.regexp\s+"([^"]*)"', lambda m: '.regexp "^(?:%s)$"' % m.group(1), text)

    @staticmethod
    def relax_cbor(text: str) -> str:
        # The crate mis-applies `.cbor` on array elements; embedded items are checked separately.
        return re.sub(r"\bbstr\s+\.cbor\s+[A-Za-z_@$][A-Za-z0-9_@$.\-]*", "bstr", text)

    def schema(self, name: str, root: str | None = None, relaxed: bool = False):
        key = (name, root, relaxed)
        if key not in self._schemas:
            t = self.anchor_regexps(self.text(name))
            if relaxed:
                t = self.relax_cbor(t)
            if root is not None:
                # The crate validates against the first rule: move the rule wanted to the top.
                # (Not `alias = root`: the crate mis-validates some maps reached through a name.)
                t = self.move_to_front(t, root)
            self._schemas[key] = self.pycddl.Schema(t)
        return self._schemas[key]

    def move_to_front(self, text: str, rule: str) -> str:
        starts = list(self.RULE_START.finditer(text))
        for i, m in enumerate(starts):
            if m.group(1) == rule:
                end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
                return text[m.start():end] + "\n" + text[:m.start()] + text[end:]
        raise KeyError(f"no rule `{rule}`")

    def errors(self, name: str, data: bytes, root: str | None = None, relaxed: bool = False):
        """None if `data` (CBOR bytes) is valid, else the validator's message."""
        try:
            self.schema(name, root, relaxed).validate_cbor(data)
            return None
        except self.pycddl.ValidationError as e:
            return str(e) or repr(e)

    def value_errors(self, name: str, value, root: str | None = None, relaxed=False,
                     elements: bool = True, data: bytes | None = None) -> list[str]:
        """All problems with a decoded value: the whole, then each listed array element."""
        if data is None:
            data = self.cbor2.dumps(value)
        out = []
        e = self.errors(name, data, root, relaxed)
        if e:
            out.append(e)
        if elements:
            for path, rule in ELEMENTS.get(name, []):
                for where, el in _walk(value, path.split("."), ""):
                    e = self.errors(name, self.cbor2.dumps(el), rule)
                    if e:
                        out.append(f"{where} (rule {rule}): {e}")
        return out

    # -- checks -----------------------------------------------------------------------------

    def expect_valid(self, what: str, name: str, value=None, data: bytes | None = None,
                     root: str | None = None, relaxed=False, elements=True) -> bool:
        errs = self.value_errors(name, value, root, relaxed, elements, data) \
            if value is not None else ([e] if (e := self.errors(name, data, root, relaxed)) else [])
        if errs:
            self.fail(what, "\n".join(errs))
            return False
        self.ok(what)
        return True

    def expect_invalid(self, what: str, name: str, value, root: str | None = None,
                       relaxed=False) -> None:
        errs = self.value_errors(name, value, root, relaxed)
        if errs:
            self.ok(what, "refused: " + errs[0])
        else:
            self.fail(what, "the schema accepted it")

    def copy(self, v):
        """Deep copy of a decoded value (copy.deepcopy cannot copy cbor2's C CBORTag)."""
        if isinstance(v, dict):
            return {k: self.copy(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.copy(x) for x in v]
        if isinstance(v, self.cbor2.CBORTag):
            return self.cbor2.CBORTag(v.tag, self.copy(v.value))
        return v

    def mutated(self, base, mutation):
        v = self.copy(base)
        mutation(v)
        return v

    # -- 1. schema files --------------------------------------------------------------------

    def check_schema_files(self) -> None:
        names = MESSAGE_TYPES + ["receipt", "agency-card", "envelope", "audit-entry",
                                 "key-statement"]
        found = sorted(p.stem for p in self.cddl_dir.glob("*.cddl"))
        missing = [n for n in names if n not in found]
        extra = [n for n in found if n not in names]
        if missing or extra:
            self.fail("spec/cddl holds one schema per wire type",
                      f"missing: {missing}; unexpected: {extra}")
        else:
            self.ok(f"spec/cddl holds one schema per wire type ({len(names)} files)")
        for n in names:
            if n in missing:
                continue
            try:
                self.pycddl.Schema(self.text(n))
                self.schema(n)
                self.schema(n, relaxed=True)
                first = self.first_rule(self.text(n))
                if first != ROOT_RULE[n]:
                    self.fail(f"{n}.cddl: first rule is `{ROOT_RULE[n]}`", f"it is `{first}`")
                else:
                    self.ok(f"{n}.cddl parses; root rule `{first}`")
            except Exception as e:  # noqa: BLE001
                self.fail(f"{n}.cddl parses", str(e))
        self.check_shared_rules([n for n in names if n not in missing])

    RULE_START = re.compile(r"^([A-Za-z_@$][A-Za-z0-9_@$.\-]*)\s*(//=|/=|=)", re.M)

    def rules(self, text: str) -> dict[str, str]:
        """Rule name -> definition with comments and white space normalised."""
        out = {}
        starts = list(self.RULE_START.finditer(text))
        for i, m in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            body = text[m.start():end]
            body = "\n".join(line.split(";", 1)[0] for line in body.splitlines())
            out[m.group(1)] = " ".join(body.split())
        return out

    def first_rule(self, text: str) -> str | None:
        m = self.RULE_START.search(text)
        return m.group(1) if m else None

    def check_shared_rules(self, names: list[str]) -> None:
        defs: dict[str, dict[str, str]] = {}
        for n in names:
            for rule, body in self.rules(self.text(n)).items():
                defs.setdefault(rule, {})[n] = body
        shared = {r: d for r, d in defs.items() if len(d) > 1}
        bad = {r: d for r, d in shared.items() if len(set(d.values())) > 1}
        if bad:
            for r, d in sorted(bad.items()):
                variants = "\n".join(f"{f}: {b}" for f, b in sorted(d.items()))
                self.fail(f"shared rule `{r}` is defined identically in every file", variants)
        else:
            self.ok(f"{len(shared)} shared rules are defined identically in every file that has them")

    # -- 2. messages ------------------------------------------------------------------------

    def check_messages(self) -> dict[str, bytes]:
        path = self.vectors_dir / "messages.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        msgs = doc["messages"]
        if sorted(msgs) != sorted(MESSAGE_TYPES):
            self.fail("messages.json has one vector per message type", f"types: {sorted(msgs)}")
        bodies = {}
        for t in MESSAGE_TYPES:
            if t not in msgs:
                continue
            data = bytes.fromhex(msgs[t]["cbor"])
            bodies[t] = data
            value = self.cbor2.loads(data)
            self.expect_valid(f"messages/{t}: vector is valid against {t}.cddl", t,
                              value=value, data=data)
            self.negative_messages(t, value)
        return bodies

    def negative_messages(self, t: str, base) -> None:
        label = f"messages/{t}"
        for key in REQUIRED_KEYS[t]:
            self.expect_invalid(f"{label}: refused without required key `{key}`", t,
                                self.mutated(base, delete(key)))
        self.expect_invalid(f"{label}: refused with an unknown key", t,
                            self.mutated(base, setv("unknown_field", "x")))
        for what, mutation, valid in MESSAGE_CASES.get(t, []):
            v = self.mutated(base, mutation)
            if valid:
                self.expect_valid(f"{label}: accepts {what}", t, value=v)
            else:
                self.expect_invalid(f"{label}: refuses {what}", t, v)

    # -- 3. receipts ------------------------------------------------------------------------

    def sign1_parts(self, data: bytes, what: str):
        v = self.cbor2.loads(data)
        if not (isinstance(v, self.cbor2.CBORTag) and v.tag == COSE_SIGN1_TAG
                and isinstance(v.value, list) and len(v.value) == 4):
            self.fail(f"{what}: is a tagged COSE_Sign1 (tag 18, four elements)")
            return None
        return v

    def check_cose_sign1_common(self, schema: str, sign1, what: str, protected_rule: str) -> None:
        prot, unprot = sign1.value[0], sign1.value[1]
        self.expect_valid(f"{what}: protected header is `{protected_rule}`", schema,
                          data=prot, root=protected_rule)
        # `empty-header = {}`: the crate accepts any map for `{}`, so emptiness is asserted directly.
        if unprot == {}:
            self.ok(f"{what}: unprotected header is `empty-header` (asserted directly)")
        else:
            self.fail(f"{what}: unprotected header is `empty-header` (asserted directly)",
                      repr(unprot))

    def check_receipts(self) -> None:
        doc = json.loads((self.vectors_dir / "receipts.json").read_text(encoding="utf-8"))
        for i, r in enumerate(doc["receipts"]):
            what = f"receipts[{i}]"
            data = bytes.fromhex(r["bytes"])
            s = self.sign1_parts(data, what)
            if s is None:
                continue
            self.expect_valid(f"{what}: COSE_Sign1 is `signed-receipt` (.cbor relaxed)",
                              "receipt", data=data, root="signed-receipt", relaxed=True)
            self.check_cose_sign1_common("receipt", s, what, "sign1-protected-header")
            payload = s.value[2]
            value = self.cbor2.loads(payload)
            self.expect_valid(f"{what}: payload ({value.get('event')}) is valid against receipt.cddl",
                              "receipt", value=value, data=payload)
            if i == 0:
                self.negative_receipts(value)

    def negative_receipts(self, base) -> None:
        label = "receipts"
        for key in RECEIPT_REQUIRED:
            self.expect_invalid(f"{label}: refused without required key `{key}`", "receipt",
                                self.mutated(base, delete(key)))
        accepted = self.mutated(base, chain(setv("event", "accepted"), _pop("reason")))
        rejected = self.mutated(base, setv("event", "rejected"))
        rejected.setdefault("reason", 12)
        cases = [
            ("an unknown key", accepted, setv("unknown_field", 1), False),
            ("an acceptance carrying a reason", accepted, setv("reason", 12), False),
            ("a rejection without a reason", rejected, delete("reason"), False),
            ("a rejection with an unknown reason code (42)", rejected, setv("reason", 42), True),
            ("a reason code above 65535", rejected, setv("reason", 65536), False),
            ("a text reason code", rejected, setv("reason", "invalid-schema"), False),
            ("version 2", accepted, setv("version", 2), False),
            ("a 31-byte envelope_id", accepted, setv("envelope_id", b"\x00" * 31), False),
            ("a lower-case agency id in `from`", accepted, setv("from", "xb.doj-ca"), False),
            ("an agency id with a trailing '-'", accepted, setv("to", "XA.MOJ-"), False),
            ("a null `detail`", accepted, setv("detail", None), False),
            ("a checkpoint and a cosignature", accepted,
             chain(setv("checkpoint", b"note"), setv("cosignature", b"sig")), True),
            ("a negative received_at", accepted, setv("received_at", -1), False),
        ]
        for what, b, mutation, valid in cases:
            v = self.mutated(b, mutation)
            if valid:
                self.expect_valid(f"{label}: accepts {what}", "receipt", value=v)
            else:
                self.expect_invalid(f"{label}: refuses {what}", "receipt", v)

    # -- 4. agency cards --------------------------------------------------------------------

    def collect_cards(self) -> list[tuple[str, bytes]]:
        cards: dict[bytes, str] = {}
        for f in sorted(self.vectors_dir.glob("envelope-*.json")):
            doc = json.loads(f.read_text(encoding="utf-8"))
            for a in doc.get("agencies", []):
                cards.setdefault(bytes.fromhex(a["card"]), f"{f.name}: card of {a['id']}")
        rec = json.loads((self.vectors_dir / "receipts.json").read_text(encoding="utf-8"))
        if "issuer" in rec and "card" in rec["issuer"]:
            cards.setdefault(bytes.fromhex(rec["issuer"]["card"]),
                             f"receipts.json: card of {rec['issuer'].get('id')}")
        return [(w, b) for b, w in cards.items()]

    def check_key_statements(self) -> None:
        """Every statement of spec/vectors/keys.json: its payload against key-statement.cddl,
        and a statement of the wrong kind's fields refused."""
        path = self.vectors_dir / "keys.json"
        data = json.loads(path.read_text())
        count = 0
        first = None
        for h in data["histories"]:
            for st in h["history"]["statements"]:
                tag = self.cbor2.loads(bytes.fromhex(st["bytes"]))
                payload = tag.value[2]
                body = self.cbor2.loads(payload)
                first = first or body
                self.expect_valid(f"keys.json: {h['agency']} statement {st['seq']} ({st['kind']})",
                                  "key-statement", value=body, data=payload, elements=False)
                count += 1
        if count == 0:
            self.fail("keys.json holds key statements", "none found")
        if first is not None:
            # A genesis that also carries a revocation breaks the rule of its kind.
            bad = self.copy(first)
            bad["revoke"] = {"kid": b"\x00" * 32, "reason": "compromised", "effective": 1}
            self.expect_invalid("a genesis carrying a revocation is refused", "key-statement", bad)
            bad = self.copy(first)
            bad["kind"] = "rename"
            self.expect_invalid("an unknown statement kind is refused", "key-statement", bad)

    def check_cards(self) -> None:
        cards = self.collect_cards()
        if not cards:
            self.fail("the vectors hold agency cards")
            return
        first_body = None
        for what, data in cards:
            s = self.sign1_parts(data, what)
            if s is None:
                continue
            self.expect_valid(f"{what}: COSE_Sign1 is `agency-card` (.cbor relaxed)",
                              "agency-card", data=data, root="agency-card", relaxed=True)
            self.check_cose_sign1_common("agency-card", s, what, "sign1-protected-header")
            body = self.cbor2.loads(s.value[2])
            self.expect_valid(f"{what}: payload is valid against agency-card.cddl",
                              "agency-card", value=body, data=s.value[2])
            self.check_card_keys(what, body)
            kid = self.cbor2.loads(s.value[0]).get(4)
            sign_keys = [k for k in body.get("keys", []) if k.get("use") == "sign"]
            if sign_keys and self.cbor2.loads(sign_keys[0]["cose_key"]).get(2) == kid:
                self.ok(f"{what}: kid of the COSE_Sign1 is the card's signing key id")
            else:
                self.fail(f"{what}: kid of the COSE_Sign1 is the card's signing key id")
            first_body = first_body or body
        if first_body is not None:
            self.negative_cards(first_body)

    def check_card_keys(self, what: str, body) -> None:
        rules = {"sign": ("signing-card-key", "ed25519-cose-key"),
                 "encrypt": ("encryption-card-key", "x25519-cose-key")}
        for i, k in enumerate(body.get("keys", [])):
            if k.get("use") not in rules:
                self.fail(f"{what}: keys[{i}] has a known use", repr(k.get("use")))
                continue
            entry_rule, key_rule = rules[k["use"]]
            self.expect_valid(f"{what}: keys[{i}] ({k['use']}) is `{entry_rule}`", "agency-card",
                              data=self.cbor2.dumps(k), root=entry_rule)
            self.expect_valid(f"{what}: keys[{i}].cose_key is `{key_rule}`", "agency-card",
                              data=k["cose_key"], root=key_rule)
            ck = self.cbor2.loads(k["cose_key"])
            crv = ck.get(-1)
            x = ck.get(-2)
            if isinstance(x, bytes):
                thumb = hashlib.sha256(self.cbor2.dumps({1: 1, -1: crv, -2: x})).digest()
                if thumb == ck.get(2):
                    self.ok(f"{what}: keys[{i}].cose_key kid is its RFC 9679 thumbprint")
                else:
                    self.fail(f"{what}: keys[{i}].cose_key kid is its RFC 9679 thumbprint")

    def card_invalid(self, what: str, body) -> None:
        """A card body is refused if the whole or one of its keys (by use) is refused."""
        errs = self.value_errors("agency-card", body)
        for i, k in enumerate(body.get("keys", []) if isinstance(body.get("keys"), list) else []):
            rule = {"sign": "signing-card-key", "encrypt": "encryption-card-key"}.get(
                k.get("use") if isinstance(k, dict) else None)
            if rule:
                e = self.errors("agency-card", self.cbor2.dumps(k), rule)
                if e:
                    errs.append(f"keys[{i}] (rule {rule}): {e}")
        if errs:
            self.ok(f"agency-card: refuses {what}", "refused: " + errs[0])
        else:
            self.fail(f"agency-card: refuses {what}", "the schema accepted it")

    def negative_cards(self, base) -> None:
        for key in CARD_REQUIRED:
            self.card_invalid(f"a card body without required key `{key}`",
                              self.mutated(base, delete(key)))
        sign = next(k for k in base["keys"] if k["use"] == "sign")
        enc = next(k for k in base["keys"] if k["use"] == "encrypt")
        ck = self.cbor2.loads(sign["cose_key"])
        wrong_crv = dict(ck)
        wrong_crv[-1] = 4
        with_d = dict(ck)
        with_d[-4] = b"\x00" * 32
        cases = [
            ("an unknown key", setv("unknown_field", 1)),
            ("version 2", setv("version", 2)),
            ("no roles", setv("roles", [])),
            ("an unknown role", setv("roles", ["ministry"])),
            ("two signing keys", setv("keys", [sign, sign])),
            ("three keys", setv("keys", [sign, enc, enc])),
            ("one key", setv("keys", [sign])),
            ("an empty name", setv("name", "")),
            ("a 1025-byte name", setv("name", "A" * 1025)),
            ("a lower-case country", setv("country", "xa")),
            ("17 addresses", setv("addresses", ["/ip4/127.0.0.1/tcp/4100"] * 17)),
            ("a signing COSE_Key with crv X25519",
             setv("keys", [dict(sign, cose_key=self.cbor2.dumps(wrong_crv)), enc])),
            ("a public COSE_Key with a secret `d`",
             setv("keys", [dict(sign, cose_key=self.cbor2.dumps(with_d)), enc])),
            ("a card key with an unknown field", setv("keys", [dict(sign, comment="x"), enc])),
            ("a card key without valid_from",
             setv("keys", [{k: v for k, v in sign.items() if k != "valid_from"}, enc])),
        ]
        for what, mutation in cases:
            self.card_invalid(what, self.mutated(base, mutation))
        swapped = self.mutated(base, setv("keys", [enc, dict(sign, valid_until=4102444800)]))
        self.expect_valid("agency-card: accepts the keys in the other order, with valid_until",
                          "agency-card", value=swapped)

    # -- 5. envelopes -----------------------------------------------------------------------

    def check_envelopes(self, bodies: dict[str, bytes]) -> None:
        files = sorted(self.vectors_dir.glob("envelope-*.json"))
        if not files:
            self.fail("spec/vectors holds envelope vectors")
            return
        negative_done = False
        for f in files:
            doc = json.loads(f.read_text(encoding="utf-8"))
            agencies = {a["id"]: a for a in doc.get("agencies", [])}
            inner = bytes.fromhex(doc["inner"])
            self.check_inner(f.name, inner, doc, bodies)
            for env in doc["envelopes"]:
                what = f"{f.name}: envelope to {env['to']}"
                data = bytes.fromhex(env["envelope"])
                if hashlib.sha256(data).hexdigest() != env.get("envelope_id"):
                    self.fail(f"{what}: envelope_id is the SHA-256 of the envelope")
                self.check_envelope(what, data, inner, agencies.get(env["to"]))
                if not negative_done:
                    self.negative_envelopes(data, inner)
                    negative_done = True

    def check_inner(self, fname: str, inner: bytes, doc, bodies) -> None:
        what = f"{fname}: inner COSE_Sign1"
        s = self.sign1_parts(inner, what)
        if s is None:
            return
        self.expect_valid(f"{what} is `inner-message` (.cbor relaxed)", "envelope",
                          data=inner, root="inner-message", relaxed=True)
        self.check_cose_sign1_common("envelope", s, what, "inner-protected-header")
        hdr = self.cbor2.loads(s.value[0])
        mtype = hdr.get(-65547)
        payload = s.value[2]
        if mtype in MESSAGE_TYPES:
            self.expect_valid(f"{what}: payload is valid against {mtype}.cddl (type from -65547)",
                              mtype, value=self.cbor2.loads(payload), data=payload)
        else:
            self.fail(f"{what}: -65547 names a message type", repr(mtype))
        if payload == bytes.fromhex(doc.get("message_cbor", "")):
            self.ok(f"{what}: payload equals the vector's message_cbor")
        else:
            self.fail(f"{what}: payload equals the vector's message_cbor")
        recips = hdr.get(-65548)
        if isinstance(recips, list) and recips == sorted(set(recips)):
            self.ok(f"{what}: recipients sorted and unique ({', '.join(recips)})")
        else:
            self.fail(f"{what}: recipients sorted and unique", repr(recips))

    def check_envelope(self, what: str, data: bytes, inner: bytes, addressee) -> None:
        c = self.cbor2
        s = self.sign1_parts(data, what)
        if s is None:
            return
        self.expect_valid(f"{what}: is `rogatory-envelope` (.cbor relaxed)", "envelope",
                          data=data, root=None, relaxed=True)
        self.check_cose_sign1_common("envelope", s, what, "outer-protected-header")
        payload = s.value[2]
        self.expect_valid(f"{what}: payload is `encrypted-layer` (.cbor relaxed)", "envelope",
                          data=payload, root="encrypted-layer", relaxed=True)
        enc = c.loads(payload)
        if not (isinstance(enc, c.CBORTag) and enc.tag == COSE_ENCRYPT_TAG and len(enc.value) == 4):
            self.fail(f"{what}: payload is a tagged COSE_Encrypt (tag 96, four elements)")
            return
        bp, bu, ciphertext, recipients = enc.value
        self.expect_valid(f"{what}: COSE_Encrypt protected header is `encrypt-protected-header`",
                          "envelope", data=bp, root="encrypt-protected-header")
        self.expect_valid(f"{what}: COSE_Encrypt unprotected header is `encrypt-unprotected-header`",
                          "envelope", data=c.dumps(bu), root="encrypt-unprotected-header")
        # The crate does not check the length of `[recipient]` (an array as the only entry).
        if isinstance(recipients, list) and len(recipients) == 1:
            self.ok(f"{what}: exactly one recipient (asserted directly)")
        else:
            self.fail(f"{what}: exactly one recipient (asserted directly)",
                      f"{len(recipients) if isinstance(recipients, list) else recipients!r}")
            return
        r = recipients[0]
        self.expect_valid(f"{what}: recipient is `recipient` (.cbor relaxed)", "envelope",
                          data=c.dumps(r), root="recipient", relaxed=True)
        rp, ru = r[0], r[1]
        self.expect_valid(f"{what}: recipient protected header is `recipient-protected-header`",
                          "envelope", data=rp, root="recipient-protected-header")
        self.expect_valid(f"{what}: recipient unprotected header is `recipient-unprotected-header`",
                          "envelope", data=c.dumps(ru), root="recipient-unprotected-header")
        # COSE_KDF_Context and Enc_structure as spec/PROTOCOL.md §3.5 builds them.
        kdf = c.dumps([24, [None, None, None], [None, None, None], [256, rp]])
        self.expect_valid(f"{what}: COSE_KDF_Context built from the recipient is `COSE_KDF_Context`",
                          "envelope", data=kdf, root="COSE_KDF_Context", relaxed=True)
        aad = c.dumps(["Encrypt", bp, b""])
        self.expect_valid(f"{what}: Enc_structure built from the body header is `Enc_structure`",
                          "envelope", data=aad, root="Enc_structure", relaxed=True)
        if self.decrypt:
            self.check_decryption(what, addressee, ru, bu, ciphertext, kdf, aad, inner)

    def check_decryption(self, what, addressee, ru, bu, ciphertext, kdf, aad, inner) -> None:
        try:
            from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
            from cryptography.hazmat.primitives.asymmetric.x25519 import (  # noqa: PLC0415
                X25519PrivateKey, X25519PublicKey)
            from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: PLC0415
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415
        except ImportError:
            print(f"skip {what}: decryption cross-check (package `cryptography` not installed)")
            return
        label = f"{what}: the KDF context and Enc_structure decrypt the envelope to the inner COSE_Sign1"
        if not addressee or "encryption_secret" not in addressee:
            self.fail(label, "the vector gives no encryption secret for the addressee")
            return
        try:
            sk = X25519PrivateKey.from_private_bytes(bytes.fromhex(addressee["encryption_secret"]))
            shared = sk.exchange(X25519PublicKey.from_public_bytes(ru[-1][-2]))
            cek = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=kdf).derive(shared)
            plain = ChaCha20Poly1305(cek).decrypt(bu[5], ciphertext, aad)
        except Exception as e:  # noqa: BLE001
            self.fail(label, f"{type(e).__name__}: {e}")
            return
        if plain == inner:
            self.ok(label)
        else:
            self.fail(label, "decrypted, but the plaintext differs from the vector's inner")

    def negative_envelopes(self, data: bytes, inner: bytes) -> None:
        c = self.cbor2
        s = c.loads(data)
        outer = c.loads(s.value[0])
        enc = c.loads(s.value[2])
        r = enc.value[3][0]
        ru = r[1]
        inner_hdr = c.loads(c.loads(inner).value[0])
        label = "envelope"

        def hdr_case(what, base, rule, mutation, valid=False, relaxed=False):
            v = self.mutated(base, mutation)
            if valid:
                self.expect_valid(f"{label}: {rule} accepts {what}", "envelope", value=v,
                                  root=rule, relaxed=relaxed)
            else:
                self.expect_invalid(f"{label}: {rule} refuses {what}", "envelope", v,
                                    root=rule, relaxed=relaxed)

        seq1 = self.mutated(outer, chain(setv("#-65544", 1), _pop(-65545)))
        hdr_case("sequence 1 with a previous envelope id", seq1, "outer-protected-header",
                 setv("#-65545", b"\x11" * 32))
        hdr_case("sequence 3 without a previous envelope id", seq1, "outer-protected-header",
                 setv("#-65544", 3))
        hdr_case("sequence 3 with a previous envelope id", seq1, "outer-protected-header",
                 chain(setv("#-65544", 3), setv("#-65545", b"\x11" * 32)), valid=True)
        hdr_case("sequence 0", seq1, "outer-protected-header", setv("#-65544", 0))
        hdr_case("a checkpoint", seq1, "outer-protected-header", setv("#-65543", b"note"),
                 valid=True)
        for lbl, name in [(-65537, "version"), (-65538, "from"), (-65539, "to"),
                          (-65540, "message id"), (-65541, "sent-at"),
                          (-65542, "case commitment"), (-65544, "sequence"), (4, "kid"),
                          (1, "alg")]:
            hdr_case(f"a header without {name} ({lbl})", seq1, "outer-protected-header",
                     delete(f"#{lbl}"))
        hdr_case("an inner-only label (case id, -65546)", seq1, "outer-protected-header",
                 setv("#-65546", b"\x00" * 16))
        hdr_case("a content type (3)", seq1, "outer-protected-header", setv("#3", 0))
        hdr_case("alg ES256 (-7)", seq1, "outer-protected-header", setv("#1", -7))
        hdr_case("a 31-byte kid", seq1, "outer-protected-header", setv("#4", b"\x00" * 31))
        hdr_case("version 2", seq1, "outer-protected-header", setv("#-65537", 2))
        hdr_case("a malformed agency id in `to`", seq1, "outer-protected-header",
                 setv("#-65539", "XB"))
        hdr_case("a 15-byte message id", seq1, "outer-protected-header",
                 setv("#-65540", b"\x00" * 15))
        hdr_case("an outer-only label (to, -65539)", inner_hdr, "inner-protected-header",
                 setv("#-65539", "XB.DOJ-CA"))
        hdr_case("no recipients", inner_hdr, "inner-protected-header", setv("#-65548", []))
        hdr_case("an unknown message type", inner_hdr, "inner-protected-header",
                 setv("#-65547", "mla-response"))
        hdr_case("a missing case id", inner_hdr, "inner-protected-header", delete("#-65546"))
        hdr_case("an 11-byte IV", {5: b"\x00" * 12}, "encrypt-unprotected-header",
                 setv("#5", b"\x00" * 11))
        hdr_case("another label besides the IV", {5: b"\x00" * 12}, "encrypt-unprotected-header",
                 setv("#4", b"\x00" * 32))
        hdr_case("another content algorithm (A256GCM, 3)", {1: 24}, "encrypt-protected-header",
                 setv("#1", 3))
        hdr_case("another key agreement (ECDH-ES + HKDF-512, -26)", {1: -25},
                 "recipient-protected-header", setv("#1", -26))
        hdr_case("an ephemeral key on another curve (P-256, 1)", ru,
                 "recipient-unprotected-header", setv("#-1.#-1", 1))
        hdr_case("an ephemeral key with a kid", ru, "recipient-unprotected-header",
                 setv("#-1.#2", b"\x00" * 32))
        hdr_case("an extra label", ru, "recipient-unprotected-header", setv("#-2", b"x"))
        hdr_case("a non-empty recipient ciphertext", r, "recipient", setv("[2]", b"\x00" * 40),
                 relaxed=True)
        hdr_case("an untagged envelope", s.value, "rogatory-envelope", lambda v: None,
                 relaxed=True)
        hdr_case("a 63-byte signature", s, "rogatory-envelope",
                 lambda v: v.value.__setitem__(3, b"\x00" * 63), relaxed=True)
        hdr_case("a COSE_Encrypt0 (tag 16) as payload", enc, "encrypted-layer",
                 lambda v: setattr(v, "tag", 16), relaxed=True)


def _pop(key):
    def f(v):
        v.pop(key, None)

    return f


# ---------------------------------------------------------------------------------------------
# Per-type cases on the vector of messages.json: (description, mutation, expected valid?).


def _service_only(v):
    for m in v["assistance"]:
        m["kind"] = "service-of-documents"
    v["summary_of_facts"] = ""


def _victim_with(field, value):
    def f(v):
        i = next(i for i, p in enumerate(v["persons"]) if p["role"] == "victim")
        v["persons"][i][field] = value

    return f


def _first_item(transfer):
    def f(v):
        v["items"][0]["transfer"] = transfer

    return f


MESSAGE_CASES = {
    "mla-request": [
        ("a null legal_basis.kind", setv("legal_basis.kind", None), False),
        ("a treaty basis without the instrument", delete("legal_basis.instrument"), False),
        ("reciprocity without an instrument",
         chain(setv("legal_basis.kind", "reciprocity"), delete("legal_basis.instrument")), True),
        ("an unknown legal basis kind", setv("legal_basis.kind", "comity"), False),
        ("a null proceedings.kind", setv("proceedings.kind", None), False),
        ("proceedings without a subject", delete("proceedings.subject"), False),
        ("an empty summary of facts", setv("summary_of_facts", ""), False),
        ("an empty summary of facts when every measure is service of documents",
         _service_only, True),
        ("no offence", setv("offences", []), False),
        ("an offence without its legal classification",
         delete("offences[0].legal_classification"), False),
        ("no measure of assistance", setv("assistance", []), False),
        ("a null measure kind", setv("assistance[0].kind", None), False),
        ("a measure without targets", setv("assistance[0].targets", []), False),
        ("a null target kind", setv("assistance[0].targets[0].kind", None), False),
        ("a target with an empty identifier", setv("assistance[0].targets[0].identifier", ""),
         False),
        ("a target with an unknown key", setv("assistance[0].targets[0].owner", "x"), False),
        ("a measure period that is not a date", setv("assistance[0].from", "2026-3-1"), False),
        ("a measure with month 13", setv("assistance[0].until", "2026-13-01"), False),
        ("a null person role", setv("persons[0].role", None), False),
        ("a person without nationalities", delete("persons[0].nationalities"), False),
        ("a nationality that is not an ISO code", setv("persons[0].nationalities", ["xb"]), False),
        ("a victim with a name", _victim_with("name", "Jane Doe"), False),
        ("a victim with a date of birth", _victim_with("date_of_birth", "2017-01-01"), False),
        ("a victim with a location", _victim_with("location", "XB"), False),
        ("a victim with a nationality", _victim_with("nationalities", ["XB"]), False),
        ("a victim with an identifier", _victim_with("identifiers", ["passport 1"]), False),
        ("a victim without a pseudonym",
         lambda v: [p.pop("pseudonym") for p in v["persons"] if p["role"] == "victim"], False),
        ("a victim without an age band",
         lambda v: [p.pop("age_band") for p in v["persons"] if p["role"] == "victim"], False),
        ("a victim with an age band not in the list",
         _victim_with("age_band", "10-12"), False),
        ("a victim with the age band `unknown`", _victim_with("age_band", "unknown"), True),
        ("a victim with a gender not in the list", _victim_with("gender", "f"), False),
        ("a victim without a gender", lambda v: [p.pop("gender") for p in v["persons"] if p["role"] == "victim"], True),
        ("an ICCS class (6 digits)", setv("offences[0].iccs", "030221"), True),
        ("an ICCS code of section 12", setv("offences[0].iccs", "1201"), False),
        ("an ICCS code of 3 digits", setv("offences[0].iccs", "030"), False),
        ("an empty purpose", setv("purpose", ""), False),
        ("an urgent request without a reason", delete("urgency.reason"), False),
        ("a routine request without a reason",
         chain(setv("urgency.level", "routine"), delete("urgency.reason")), True),
        ("a deadline that is a time", setv("urgency.deadline", "2026-12-15T00:00:00Z"), False),
        ("confidentiality without do_not_inform_subject",
         delete("confidentiality.do_not_inform_subject"), False),
        ("a text `confidential`", setv("confidentiality.confidential", "yes"), False),
        ("an attachment with a null sha256", setv("attachments[0].sha256", None), False),
        ("an attachment with a 31-byte sha256", setv("attachments[0].sha256", b"\x00" * 31), False),
        ("an attachment with a hex sha256", setv("attachments[0].sha256", "00" * 32), False),
        ("an attachment with a negative size", setv("attachments[0].size", -1), False),
        ("an attachment with a float size", setv("attachments[0].size", 48213.0), False),
        ("a related request with a 15-byte case id",
         setv("related_requests[0].case_id", b"\x00" * 15), False),
        ("a related request with a 16-byte case id",
         setv("related_requests[0].case_id", b"\x00" * 16), True),
        ("a null optional field (procedures)", setv("procedures", None), False),
        ("an authority with a lower-case country", setv("requesting_authority.country", "xa"),
         False),
        ("an authority with a malformed agency id",
         setv("requesting_authority.agency", "XA.moj"), False),
        ("a contact with neither e-mail nor telephone",
         lambda v: [v["requesting_authority"]["contacts"][0].pop(k) for k in ("email", "phone")],
         False),
        ("a contact with a telephone number only",
         lambda v: v["requesting_authority"]["contacts"][0].pop("email"), True),
        ("a contact with an unknown key",
         setv("requesting_authority.contacts[0].fax", "+000"), False),
        ("an empty language", setv("language", ""), False),
    ],
    "mla-status": [
        ("a null status", setv("status", None), False),
        ("an unknown status", setv("status", "lost"), False),
        ("`registered` without the reference", delete("reference"), False),
        ("`refused` without grounds", setv("status", "refused"), False),
        ("`refused` with grounds", chain(setv("status", "refused"), setv("grounds", ["dual criminality"])),
         True),
        ("grounds with a status other than `refused`", setv("grounds", ["dual criminality"]), False),
        ("`refused` with classified grounds",
         chain(setv("status", "refused"), setv("grounds", ["not an offence in XB"]),
               setv("refusal_grounds", ["dual-criminality", "ne-bis-in-idem"])), True),
        ("`refused` with a ground not in the list",
         chain(setv("status", "refused"), setv("grounds", ["secrecy"]),
               setv("refusal_grounds", ["bank-secrecy"])), False),
        ("classified grounds with a status other than `refused`",
         setv("refusal_grounds", ["dual-criminality"]), False),
        ("`postponed` without `until`",
         chain(setv("status", "postponed"), setv("reason", "pending domestic trial")), False),
        ("`postponed` with a reason and `until`",
         chain(setv("status", "postponed"), setv("reason", "pending domestic trial"),
               setv("until", "2027-03-01")), True),
        ("`returned-deficient` without items", setv("status", "returned-deficient"), False),
        ("`more-information-requested` with items",
         chain(setv("status", "more-information-requested"), setv("items", ["Which account?"])),
         True),
        ("`closed` without a reference", chain(setv("status", "closed"), delete("reference")),
         True),
        ("effective_at without the Z", setv("effective_at", "2026-11-30T09:15:00"), False),
        ("effective_at with an offset", setv("effective_at", "2026-11-30T10:15:00+01:00"), False),
        ("effective_at at hour 24", setv("effective_at", "2026-11-30T24:00:00Z"), False),
        ("effective_at as a date", setv("effective_at", "2026-11-30"), False),
        ("effective_at as a number", setv("effective_at", 1790000000), False),
        ("a 16-byte request id", setv("request", b"\x01" * 16), True),
        ("a request id as a UUID string", setv("request", "01a0c451-2f50-7717-9717-171717171717"),
         False),
        ("a confirmation (`confirms`: a 16-byte message id)", setv("confirms", b"\x02" * 16), True),
        ("a `confirms` of 8 bytes", setv("confirms", b"\x02" * 8), False),
    ],
    "evidence-manifest": [
        ("no item", setv("items", []), False),
        ("an item with a null sha256", setv("items[0].sha256", None), False),
        ("an item without sha256", delete("items[0].sha256"), False),
        ("an item with a null transfer mode", setv("items[0].transfer", None), False),
        ("an item with an unknown transfer mode", setv("items[0].transfer", "courier"), False),
        ("an item without custody", delete("items[0].custody"), False),
        ("an item without perceptual_hashes", delete("items[0].perceptual_hashes"), False),
        ("an item without acquisition", delete("items[0].acquisition"), False),
        ("an item with an empty acquisition method", setv("items[0].acquisition.method", ""),
         False),
        ("a custody entry with a malformed time", setv("items[0].custody[0].at", "yesterday"),
         False),
        ("a custody entry with an unknown key", setv("items[0].custody[0].signature", "x"),
         False),
        ("a `send` item with a 32-byte content key", setv("items[0].content_key", b"\x07" * 32),
         True),
        ("a `send` item with a 16-byte content key", setv("items[0].content_key", b"\x07" * 16),
         False),
        ("a `hash-only` item with a content key", setv("items[1].content_key", b"\x07" * 32),
         False),
        ("a `hash-only` item with delivery details",
         setv("items[1].out_of_band", {"carrier": "courier"}), False),
        ("an `out-of-band` item without delivery details", _first_item("out-of-band"), False),
        ("an `out-of-band` item with delivery details",
         chain(_first_item("out-of-band"), setv("items[0].out_of_band", {"carrier": "courier",
                                                                          "reference": "S-1"})),
         True),
        ("a `send` item with delivery details",
         setv("items[0].out_of_band", {"carrier": "courier"}), False),
        ("handling codes out of order", setv("items[1].handling.codes", ["H3", "H2"]), False),
        ("H3 without restrictions", delete("items[1].handling.restrictions"), False),
        ("a perceptual hash without its algorithm",
         delete("items[1].perceptual_hashes[0].algorithm"), False),
    ],
    "extradition-status": [
        ("a confirmation (`confirms`: a 16-byte message id)", setv("confirms", b"\x02" * 16), True),
        ("a `confirms` as a UUID string",
         setv("confirms", "01a0c451-2f50-7717-9717-171717171717"), False),
        ("a null stage", setv("stage", None), False),
        ("an unknown stage", setv("stage", "escaped"), False),
        ("a decision stage without the decision", setv("stage", "judicial-decision"), False),
        ("a decision stage with the decision",
         chain(setv("stage", "judicial-decision"), setv("decision", "granted")), True),
        ("a decision on a stage that carries none", setv("decision", "refused"), False),
        ("an unknown decision",
         chain(setv("stage", "appeal-decided"), setv("decision", "adjourned")), False),
        ("a scheduled stage without the date", setv("stage", "surrender-scheduled"), False),
        ("a scheduled stage with the date",
         chain(setv("stage", "hearing-scheduled"), setv("scheduled_for", "2026-12-10")), True),
        ("an empty person reference", setv("person_reference", ""), False),
        ("an effective date with a time", setv("effective_date", "2026-11-28T00:00:00Z"), False),
        ("an effective date before 1900", setv("effective_date", "1899-12-31"), False),
    ],
    "liaison": [
        ("an empty subject", setv("subject", ""), False),
        ("no handling code", setv("handling.codes", []), False),
        ("handling codes out of order", setv("handling.codes", ["H2", "H0"]), False),
        ("a handling code twice", setv("handling.codes", ["H0", "H0", "H2"]), False),
        ("an unknown handling code", setv("handling.codes", ["H4"]), False),
        ("a lower-case handling code", setv("handling.codes", ["h0", "h2"]), False),
        ("H0 without the purpose", delete("handling.purpose"), False),
        ("H3 without restrictions", setv("handling.codes", ["H0", "H2", "H3"]), False),
        ("H3 with restrictions",
         chain(setv("handling.codes", ["H3"]), setv("handling.restrictions", "no copies")), True),
        ("H1 and H2 with no texts",
         chain(setv("handling.codes", ["H1", "H2"]), delete("handling.purpose")), True),
        ("an urgent message without a reason", delete("priority_reason"), False),
        ("a routine message without a reason",
         chain(setv("priority", "routine"), delete("priority_reason")), True),
        ("an unknown priority", setv("priority", "flash"), False),
        ("an attachment without sha256",
         setv("attachments", [{"name": "a.pdf", "media_type": "application/pdf", "size": 1}]),
         False),
        ("an attachment with sha256",
         setv("attachments", [{"name": "a.pdf", "media_type": "application/pdf", "size": 1,
                               "sha256": b"\x00" * 32}]), True),
        ("a reply to a 16-byte message id", setv("in_reply_to", b"\x02" * 16), True),
    ],
    "evidence-status": [
        ("no item", setv("items", []), False),
        ("an item without custody entries", setv("items[0].custody", []), False),
        ("an item without sha256", delete("items[0].sha256"), False),
        ("an unknown state", setv("items[0].state", "lost"), False),
        ("a null state", setv("items[0].state", None), False),
        ("a verified item with a problem", setv("items[0].problem", "x"), False),
        ("a quarantined item without the problem", setv("items[0].state", "quarantined"), False),
        ("a quarantined item with the problem",
         chain(setv("items[0].state", "quarantined"), setv("items[0].problem", "chunk 2")), True),
        ("an exported item", setv("items[0].state", "exported"), True),
        ("a custody entry with a malformed time", setv("items[0].custody[0].at", "now"), False),
        ("an item with an unknown key", setv("items[0].manifest", b"\x01" * 16), False),
    ],
    "preservation-request": [
        ("intends_mla_request false (Art. 29(2)(f))", setv("intends_mla_request", False), False),
        ("a preservation period of 59 days (Art. 29(7))", setv("period_days", 59), False),
        ("a preservation period of 60 days", setv("period_days", 60), True),
        ("a period beyond u32", setv("period_days", 2**32), False),
        ("no data to preserve", setv("data", []), False),
        ("data without its relationship to the offence",
         delete("data[0].relationship_to_offence"), False),
        ("data without a target", delete("data[0].target"), False),
        ("data whose target kind is null", setv("data[0].target.kind", None), False),
        ("an empty necessity", setv("necessity", ""), False),
        ("no offence", setv("offences", []), False),
        ("an emergency without a reason", delete("urgency.reason"), False),
        ("an authority without a country", delete("requesting_authority.country"), False),
    ],
}


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve()
    default_repo = here.parents[2] if len(here.parents) > 2 else Path.cwd()
    ap = argparse.ArgumentParser(
        description="Validate spec/vectors against the CDDL schemas in spec/cddl with pycddl, "
                    "including negative checks. Exit status 0 only if every check passes.",
        epilog="Example: /tmp/pyvenv/bin/python tests/interop/check_cddl.py -v",
    )
    ap.add_argument("--repo", type=Path, default=default_repo,
                    help="repository root (default: two levels above this script: %(default)s)")
    ap.add_argument("--cddl-dir", type=Path, help="schema directory (default: REPO/spec/cddl)")
    ap.add_argument("--vectors-dir", type=Path,
                    help="test vector directory (default: REPO/spec/vectors)")
    ap.add_argument("--no-decrypt", action="store_true",
                    help="skip decrypting the envelope vectors to cross-check the KDF context")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show the validator's message for expected refusals too")
    args = ap.parse_args(argv)

    try:
        import cbor2  # noqa: F401, PLC0415
        import pycddl  # noqa: F401, PLC0415
    except ImportError as e:
        print(f"FAIL this checker needs pycddl and cbor2: {e}", file=sys.stderr)
        return 2

    cddl_dir = args.cddl_dir or args.repo / "spec" / "cddl"
    vectors_dir = args.vectors_dir or args.repo / "spec" / "vectors"
    ck = Checker(cddl_dir, vectors_dir, args.verbose, not args.no_decrypt)
    sections = [
        ("schemas", ck.check_schema_files),
        ("messages", None),
        ("receipts", ck.check_receipts),
        ("agency cards", ck.check_cards),
        ("key statements", ck.check_key_statements),
        ("envelopes", None),
    ]
    bodies: dict[str, bytes] = {}
    for title, fn in sections:
        print(f"# {title}")
        try:
            if title == "messages":
                bodies = ck.check_messages()
            elif title == "envelopes":
                ck.check_envelopes(bodies)
            else:
                fn()
        except Exception as e:  # noqa: BLE001 - report and carry on with the next section
            import traceback  # noqa: PLC0415

            ck.fail(f"{title}: the checker itself failed", traceback.format_exc() or str(e))
    total = ck.passed + ck.failed
    print(f"# {ck.passed}/{total} checks passed" + (f", {ck.failed} FAILED" if ck.failed else ""))
    return 0 if ck.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
