#!/usr/bin/env python3
"""A seeded workload for the statistics check (spec/STATS.md): cases of mixed kinds between
real running nodes, sent through their local APIs, and a log of what was sent.

    workload.py generate --node ID=DIR ... --cases 300 --seed 19 --log gen.jsonl
    workload.py export --node ID=DIR ... --auditor-card CARD --out DIR

`generate` opens the cases in rounds: the first message of every case, then, once every
node's outbox has settled (every envelope delivered, and the confirmations the nodes send by
themselves delivered too), each case's next step, and so on. Every message is valid for its
case's state; a refused envelope stops the run. The log has one JSON line per case: its kind,
its two agencies, and each message the generator sent with its envelope id and the facts the
statistics count (offences, measures, victims, urgency, statuses, stages and their dates).

`export` writes every case's bundle of every node, its content disclosed to the auditor's card,
as OUT/<agency id>/<case id>.bundle.

Only the Python standard library is used.
"""

import argparse
import datetime
import http.client
import json
import os
import random
import sys

AGE_BANDS = ["0-5", "6-11", "12-15", "16-17", "adult", "unknown"]
GENDERS = ["female", "male", "other", "unknown"]
OFFENCES = [
    ("Sexual exploitation of a child by livestreaming", "030221"),
    ("Production of child sexual abuse material", "030222"),
    ("Distribution of child sexual abuse material", "03022"),
    ("Sexual exploitation of children", "0302"),
    ("Grooming of a child online", "030229"),
    ("Trafficking in persons for sexual exploitation", "020221"),
    ("Fraud by computer", "0701"),
    ("Extortion by threat to publish images", "0204"),
    ("An offence not yet classified", None),
]
MEASURES = [
    "preserve", "subscriber-data", "traffic-data", "content-data", "search-and-seizure",
    "witness-hearing", "videoconference-hearing", "bank-records", "freezing-of-assets",
]
GROUNDS = [
    "dual-criminality", "measure-not-available", "fundamental-rights", "ne-bis-in-idem",
    "formal-non-conformity", "national-security",
]


class Node:
    """A running node's local API, over its loopback address with its token."""

    def __init__(self, agency, directory):
        self.agency = agency
        self.dir = directory
        with open(os.path.join(directory, "api.addr")) as f:
            addr = f.read().strip()
        with open(os.path.join(directory, "api-token")) as f:
            self.token = f.read().strip()
        host, port = addr.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=330)
            headers = {"Authorization": "Bearer " + self.token, "x-rogatory-user": "workload"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
            except (http.client.HTTPException, OSError):
                # The node closes idle connections: open a new one.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if r.status != 200:
                raise SystemExit(f"{self.agency}: {method} {path}: {r.status} {raw.decode(errors='replace')}")
            return json.loads(raw)

    def send(self, to, case, kind, body):
        return self.call("POST", "/v1/send", {"to": [to], "case": case, "type": kind, "body": body})


def authority(agency):
    country = agency.split(".")[0]
    return {
        "agency": agency,
        "name": f"Central authority of {country}",
        "country": country,
        "contacts": [{"name": "Duty officer", "email": f"desk@{country.lower()}.example"}],
        "languages": ["en"],
    }


def urgency(rng):
    x = rng.random()
    if x < 0.12:
        return {"level": "emergency", "reason": "risk to a child's safety"}
    if x < 0.4:
        return {"level": "urgent", "reason": "the data may be deleted"}
    return {"level": "routine"}


def mla_request(rng, q, r, n):
    offences = rng.sample(OFFENCES, rng.choice([1, 1, 2]))
    measures = rng.sample(MEASURES, rng.choice([1, 2, 3]))
    victims = []
    for k in range(rng.choice([0, 1, 1, 2, 3])):
        band = rng.choice(["6-11", "6-11", "12-15", "12-15", "0-5", "16-17", "adult", "unknown"])
        gender = rng.choice(["female", "female", "male", "other", "unknown", None])
        victims.append([band, gender, f"Child {n}-{k}"])
    persons = [{"role": "suspect", "pseudonym": f"Suspect {n}"}]
    for band, gender, name in victims:
        p = {"role": "victim", "pseudonym": name, "age_band": band}
        if gender is not None:
            p["gender"] = gender
        persons.append(p)
    u = urgency(rng)
    body = {
        "requesting_authority": authority(q),
        "requested_authority": authority(r),
        "legal_basis": {"kind": "treaty", "instrument": "UNTOC", "articles": "Art. 18"},
        "proceedings": {"kind": "investigation", "subject": f"Online child sexual exploitation, file {n}"},
        "summary_of_facts": "Accounts held in the requested state were used to share abuse material.",
        "offences": [
            dict({"description": d, "legal_classification": "Criminal Code, s. 1"}, **({"iccs": c} if c else {}))
            for d, c in offences
        ],
        "persons": persons,
        "assistance": [
            {"kind": m, "description": f"{m} of the account", "targets": [{"kind": "account", "identifier": f"user{n}@mail.example"}]}
            for m in measures
        ],
        "purpose": "To identify the suspect and the children",
        "urgency": u,
        "language": "en",
    }
    facts = {
        "offences": [c for _, c in offences],
        "measures": measures,
        "victims": victims,
        "emergency": u["level"] == "emergency",
    }
    return body, facts


def preservation_request(rng, q, n):
    offence = rng.choice(OFFENCES)
    u = urgency(rng)
    body = {
        "requesting_authority": authority(q),
        "offences": [dict({"description": offence[0], "legal_classification": "Criminal Code, s. 2"},
                          **({"iccs": offence[1]} if offence[1] else {}))],
        "summary_of_facts": "Abuse material was shared from an online storage account.",
        "data": [{
            "description": "Stored files and access logs",
            "target": {"kind": "account", "identifier": f"storage-{n}"},
            "relationship_to_offence": "The files were shared from this account",
        }],
        "necessity": "The provider deletes logs after 30 days",
        "intends_mla_request": True,
        "period_days": 90,
        "urgency": u,
        "do_not_inform_subject": True,
    }
    return body, {"offences": [offence[1]], "measures": ["preserve"], "victims": [], "emergency": u["level"] == "emergency"}


def liaison(rng, n):
    u = urgency(rng)
    body = {
        "subject": f"Account linked to file {n}",
        "body": "Is this account known to your service?",
        "handling": {"codes": ["H0"], "purpose": "identification"},
        "priority": u["level"],
        "attachments": [],
        "language": "en",
    }
    if u["level"] != "routine":
        body["priority_reason"] = u["reason"]
    return body, {"emergency": u["level"] == "emergency"}


def now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(rng, s):
    body = {"status": s, "effective_at": now_text(), "grounds": [], "items": []}
    facts = {"status": s}
    if s == "registered":
        body["reference"] = f"REF-{rng.randrange(10**6)}"
    if s == "refused":
        body["grounds"] = ["the conduct is not an offence here"]
        codes = rng.sample(GROUNDS, rng.choice([0, 1, 1, 2]))
        if codes:
            body["refusal_grounds"] = codes
        facts["refusal_grounds"] = codes
    if s in ("more-information-requested", "returned-deficient"):
        body["items"] = ["the dates of the logins"]
    return body, facts


MLA_PATHS = [
    [("R", "registered"), ("R", "accepted"), ("R", "executing"), ("R", "executed"), ("R", "closed")],
    [("R", "registered"), ("R", "executing"), ("R", "executed")],
    [("R", "registered"), ("R", "executing"), ("R", "partially-executed"), ("R", "closed")],
    [("R", "registered"), ("R", "under-review"), ("R", "refused")],
    [("R", "registered"), ("R", "under-review"), ("R", "refused"), ("R", "closed")],
    [("R", "refused")],
    [("R", "registered"), ("R", "more-information-requested"), ("Q", "information-provided"),
     ("R", "accepted"), ("R", "executing"), ("R", "executed")],
    [("R", "registered"), ("Q", "withdrawn"), ("R", "closed")],
    [("R", "registered")],
    [],
]


def extradition_plan(rng, today):
    """Stages (side, stage, day offset, extra) from a first date."""
    d0 = datetime.date(2026, 8, 1) + datetime.timedelta(days=rng.randrange(31))
    kind = rng.randrange(6)
    if kind == 0:
        k = rng.choice([10, 25, 45])
        plan = [("Q", "provisional-arrest-requested", 0, {}), ("R", "arrested", 1, {}),
                ("R", "formal-request-received", 1 + k, {})]
    elif kind == 1:
        s = rng.choice([3, 20])
        plan = [("Q", "formal-request-received", 0, {}),
                ("R", "hearing-scheduled", 3, {"scheduled_for": 20}), ("R", "hearing-held", 20, {}),
                ("R", "judicial-decision", 25, {"decision": "granted"}),
                ("R", "surrender-scheduled", 26, {"scheduled_for": 30}), ("R", "surrendered", 30 + s, {})]
    elif kind == 2:
        c = rng.choice([10, 30])
        plan = [("Q", "formal-request-received", 0, {}), ("R", "consent-given", 2, {}),
                ("R", "executive-decision", 2 + c, {"decision": "granted"})]
    elif kind == 3:
        plan = [("Q", "formal-request-received", 0, {}),
                ("R", "hearing-scheduled", 5, {"scheduled_for": 15}), ("R", "hearing-held", 15, {}),
                ("R", "judicial-decision", 20, {"decision": "refused"}), ("R", "discharged", 21, {})]
    elif kind == 4:
        # Recent: its deadlines are still open.
        d0 = today - datetime.timedelta(days=3)
        plan = [("Q", "provisional-arrest-requested", 0, {}), ("R", "arrested", 1, {})]
    else:
        plan = [("Q", "formal-request-received", 0, {}), ("R", "consent-given", 1, {})]
    out = []
    for side, stage, off, extra in plan:
        day = d0 + datetime.timedelta(days=off)
        body = {"stage": stage, "person_reference": "EXT-%d" % rng.randrange(10**6),
                "effective_date": day.isoformat(), "treaty": "European Convention on Extradition"}
        if "scheduled_for" in extra:
            body["scheduled_for"] = (d0 + datetime.timedelta(days=extra["scheduled_for"])).isoformat()
        if "decision" in extra:
            body["decision"] = extra["decision"]
        facts = {k: body[k] for k in ("stage", "effective_date") }
        facts["decision"] = body.get("decision")
        facts["scheduled_for"] = body.get("scheduled_for")
        out.append((side, "extradition-status", body, facts))
    return out


def plan_case(rng, n, today):
    """The steps of case n: (side, type, body, facts), side Q (requesting) or R (requested)."""
    x = rng.random()
    if x < 0.55 or 0.65 <= x < 0.70:
        kind = "mla"
    elif x < 0.65:
        kind = "preservation"
    elif x < 0.85:
        kind = "extradition"
    else:
        kind = "liaison"
    steps = []
    if kind == "preservation":
        body, facts = preservation_request(rng, "XX.PLACEHOLDER", n)  # its authority is set when sent
        steps.append(("Q", "preservation-request", body, facts))
        if rng.random() < 0.5:
            kind = "mla"
    if kind == "mla":
        steps.append(("Q", "mla-request", None, None))
        for side, s in rng.choice(MLA_PATHS):
            steps.append((side, "mla-status", s, None))
    elif kind == "extradition":
        steps.extend(extradition_plan(rng, today))
    elif kind == "liaison":
        for side in ["Q", "R", "Q"][: rng.choice([1, 2, 3])]:
            steps.append((side, "liaison", None, None))
    return steps


def settle(nodes):
    """Waits until every node's outbox has settled: every envelope delivered (the node answers
    `?settled=N&wait=` once N are). A node seals a confirmation in the transaction that applies
    a partner's proposal, before its receipt goes back: once the proposal is delivered, the
    confirmation is in the other node's outbox. So passes are repeated until one finds no new
    envelope anywhere. A rejected envelope stops the run."""
    counts = {}
    while True:
        changed = False
        for node in nodes.values():
            n = len(node.call("GET", "/v1/outbox"))
            rows = node.call("GET", f"/v1/outbox?settled={n}&wait=120")
            for row in rows:
                if row["state"] == "rejected":
                    raise SystemExit(f"{node.agency}: envelope {row['envelope_id']} was rejected: {row}")
            if sum(r["state"] == "delivered" for r in rows) < n:
                raise SystemExit(f"{node.agency}: its envelopes were not all delivered within 120 s")
            if counts.get(node.agency) != len(rows):
                changed = True
            counts[node.agency] = len(rows)
        if not changed:
            return


def generate(a, nodes):
    rng = random.Random(a.seed)
    ids = sorted(nodes)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    cases = []
    for n in range(a.cases):
        q, r = rng.sample(ids, 2)
        cases.append({"n": n, "q": q, "r": r, "steps": plan_case(rng, n, today), "case": None, "messages": []})
    rounds = max(len(c["steps"]) for c in cases)
    for i in range(rounds):
        sent = 0
        for c in cases:
            if i >= len(c["steps"]):
                continue
            side, kind, body, facts = c["steps"][i]
            frm, to = (c["q"], c["r"]) if side == "Q" else (c["r"], c["q"])
            if kind == "mla-request":
                body, facts = mla_request(rng, c["q"], c["r"], c["n"])
            elif kind == "mla-status":
                body, facts = status(rng, body)
            elif kind == "liaison":
                body, facts = liaison(rng, c["n"])
            elif kind == "preservation-request":
                body["requesting_authority"] = authority(c["q"])
            answer = nodes[frm].send(to, c["case"] or "new", kind, body)
            if c["case"] is None:
                c["case"] = answer["case_id"]
            (q,) = answer["queued"]
            c["messages"].append(dict({"envelope": q["envelope_id"], "from": frm, "to": to,
                                       "type": kind, "side": side}, **facts))
            sent += 1
        settle(nodes)
        print(f"round {i + 1} of {rounds}: {sent} messages sent and delivered", file=sys.stderr)
    with open(a.log, "w") as f:
        for c in cases:
            kind = next((m["type"] for m in c["messages"] if m["type"] == "mla-request"), c["messages"][0]["type"])
            f.write(json.dumps({"case": c["case"], "requesting": c["q"], "requested": c["r"],
                                "first": kind, "messages": c["messages"]}) + "\n")
    print(f"{len(cases)} cases, {sum(len(c['messages']) for c in cases)} messages; log in {a.log}", file=sys.stderr)


def export(a, nodes):
    card = os.path.abspath(a.auditor_card)
    total = 0
    for agency, node in nodes.items():
        out = os.path.abspath(os.path.join(a.out, agency))
        os.makedirs(out, exist_ok=True)
        for case in node.call("GET", "/v1/cases"):
            cid = case["case_id"]
            node.call("POST", f"/v1/cases/{cid}/export",
                      {"out": os.path.join(out, cid + ".bundle"), "for_auditor": card})
            total += 1
    print(f"{total} bundles exported under {a.out}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["generate", "export"])
    p.add_argument("--node", action="append", required=True, help="AGENCY=DATA-DIR of a running node")
    p.add_argument("--cases", type=int, default=300)
    p.add_argument("--seed", type=int, default=19)
    p.add_argument("--log", default="gen.jsonl")
    p.add_argument("--auditor-card")
    p.add_argument("--out")
    a = p.parse_args()
    nodes = {}
    for spec in a.node:
        agency, d = spec.split("=", 1)
        nodes[agency] = Node(agency, d)
    if a.command == "generate":
        generate(a, nodes)
    else:
        export(a, nodes)


if __name__ == "__main__":
    main()
