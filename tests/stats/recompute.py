#!/usr/bin/env python3
"""An independent recomputation of an agency's statistics (spec/STATS.md), sharing no code
with Rogatory: the facts of each message come from the workload generator's log (what was
sent), and when and between whom each message travelled from the agency's export bundles
(the clear outer header of every envelope: sender, addressee, sent-at, sequence; its id is the
SHA-256 of its bytes), and the order the agency sent and received them from its audit log in
the bundle (the `envelope-sent` and `envelope-received` entries). The figures follow the rules of spec/STATS.md §4 and §5, written again
here from the spec, and are printed as the same JSON as `rogatory stats --json`.

    recompute.py --log gen.jsonl --agency XA.MOJ-CA --until T [--from F] [--threshold 5] BUNDLE...

Then `--check-suppression FIGURES.json` tries to recover every suppressed victim count of a
figures file from what it shows (row and column totals): exit 1 if any can be.
"""

import argparse
import datetime
import hashlib
import json
import sys

import cbor2

AGE_BANDS = ["0-5", "6-11", "12-15", "16-17", "adult", "unknown"]
GENDERS = ["female", "male", "other", "unknown"]
DURATIONS = ["acknowledgement", "registration", "execution", "closing"]
FROM, TO, SENT_AT, SEQUENCE = -65538, -65539, -65541, -65544


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def bound(s, end):
    if "T" in s:
        return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp())
    d = datetime.date.fromisoformat(s)
    t = (d - datetime.date(1970, 1, 1)).days * 86400
    return t + 86399 if end else t


def outer(envelope):
    """The outer COSE_Sign1's protected header (spec/PROTOCOL.md §3.2)."""
    tagged = cbor2.loads(envelope)
    assert isinstance(tagged, cbor2.CBORTag) and tagged.tag == 18, "an envelope is a tagged COSE_Sign1"
    return cbor2.loads(tagged.value[0])


def messages_of(bundle_path, log):
    with open(bundle_path, "rb") as f:
        b = cbor2.load(f)
    assert b["format"] == "rogatory-bundle/1"
    case = str(__import__("uuid").UUID(bytes=b["case_id"]))
    record = log[case]
    sent = {m["envelope"]: m for m in record["messages"]}
    proposals = [m for m in record["messages"] if m["side"] == "Q" and m["type"] in ("mla-status", "extradition-status")]
    logged = {}
    for raw in b["entries"]:
        e = cbor2.loads(bytes(raw))
        if e["event"] in ("envelope-sent", "envelope-received") and "envelope_id" in e:
            logged.setdefault(bytes(e["envelope_id"]).hex(), e["seq"])
    out, unknown = [], []
    for rec in b["envelopes"]:
        env = bytes(rec["envelope"])
        h = outer(env)
        m = {"from": h[FROM], "to": h[TO], "sent_at": h[SENT_AT], "sequence": h[SEQUENCE],
             "position": logged[hashlib.sha256(env).hexdigest()]}
        facts = sent.get(hashlib.sha256(env).hexdigest())
        if facts is None:
            unknown.append(m)
        else:
            out.append(dict(facts, **m))
    # The generator sent every message but the requested side's confirmations of the
    # requesting side's proposals (spec/CASES.md §4.1): the k-th of them confirms the k-th.
    unknown.sort(key=lambda m: m["position"])
    assert len(unknown) == len(proposals), f"case {case}: {len(unknown)} unknown envelopes, {len(proposals)} proposals"
    for m, p in zip(unknown, proposals):
        assert m["from"] == record["requested"]
        out.append(dict(p, **m))
    return case, out


def lower_median(v):
    return v[(len(v) - 1) // 2]


def p90(v):
    return v[-(-9 * len(v) // 10) - 1]


def suppress(counts, threshold):
    """spec/STATS.md §5, written again: primary, then secondary until no hidden entry is a
    bridge of the graph of hidden entries (rows and columns of the extended table)."""
    rows = [r + [sum(r)] for r in counts]
    rows.append([sum(r[j] for r in rows) for j in range(len(rows[0]))])
    nr, nc = len(rows), len(rows[0])
    hidden = [[0 < v < threshold for v in r] for r in rows]

    def bridge(r, c):
        seen, stack = {("r", r)}, [("r", r)]
        while stack:
            kind, v = stack.pop()
            if kind == "r":
                nxt = [("c", j) for j in range(nc) if hidden[v][j] and (v, j) != (r, c)]
            else:
                nxt = [("r", i) for i in range(nr) if hidden[i][v] and (i, v) != (r, c)]
            for w in nxt:
                if w not in seen:
                    seen.add(w)
                    stack.append(w)
        return ("c", c) not in seen

    while True:
        found = next(((r, c) for r in range(nr) for c in range(nc) if hidden[r][c] and bridge(r, c)), None)
        if found is None:
            found = exposed(rows, hidden)
        if found is None:
            break
        r, c = found
        cands = [(rows[i][j], i, j) for (i, j) in [(r, j) for j in range(nc)] + [(i, c) for i in range(nr)]
                 if not hidden[i][j] and rows[i][j] > 0]
        if not cands:
            hidden = [[hidden[i][j] or rows[i][j] > 0 for j in range(nc)] for i in range(nr)]
            break
        _, i, j = min(cands)
        hidden[i][j] = True
    show = lambda i, j: None if hidden[i][j] else rows[i][j]
    R, C = len(counts), len(counts[0])
    return {
        "rows": AGE_BANDS, "columns": GENDERS,
        "cells": [[show(i, j) for j in range(C)] for i in range(R)],
        "row_totals": [show(i, C) for i in range(R)],
        "column_totals": [show(R, j) for j in range(C)],
        "total": show(R, C),
        "suppressed": sum(h for r in hidden for h in r),
    }


def exposed(m, hidden):
    """spec/STATS.md §5: the first hidden entry (row-major) that each line's equation narrows to
    one value, every hidden entry being at least 1 and unbounded above; None if there is none."""
    nr, nc = len(m), len(m[0])
    lo = [[1] * nc for _ in range(nr)]
    hi = [[None] * nc for _ in range(nr)]
    lines = [[(r, c) for c in range(nc)] for r in range(nr)] + [[(r, c) for r in range(nr)] for c in range(nc)]
    for _ in range(1000):
        changed = False
        for line in lines:
            coef = lambda i: -1 if i == len(line) - 1 else 1
            shown = sum(coef(i) * m[r][c] for i, (r, c) in enumerate(line) if not hidden[r][c])
            for i, (r, c) in enumerate(line):
                if not hidden[r][c]:
                    continue
                tmin, tmax = 0, 0
                for j, (q, d) in enumerate(line):
                    if j == i or not hidden[q][d]:
                        continue
                    if coef(j) > 0:
                        a, b = lo[q][d], hi[q][d]
                    else:
                        a, b = (None if hi[q][d] is None else -hi[q][d]), -lo[q][d]
                    tmin = None if tmin is None or a is None else tmin + a
                    tmax = None if tmax is None or b is None else tmax + b
                s = -shown
                if coef(i) > 0:
                    low, high = (None if tmax is None else s - tmax), (None if tmin is None else s - tmin)
                else:
                    low, high = (None if tmin is None else tmin - s), (None if tmax is None else tmax - s)
                if low is not None and low > lo[r][c]:
                    lo[r][c] = low
                    changed = True
                if high is not None and (hi[r][c] is None or high < hi[r][c]):
                    hi[r][c] = high
                    changed = True
        if not changed:
            break
    return next(((r, c) for r in range(nr) for c in range(nc) if hidden[r][c] and hi[r][c] == lo[r][c]), None)


def ece_deadlines(history, today):
    """The ECE deadline rules of spec/CASES.md §3 over an extradition's stages (date order)."""
    rules = [
        ("formal-request-18", "arrested", False, True, 18, {"formal-request-received", "consent-given", "released", "withdrawn"}),
        ("formal-request-40", "arrested", False, True, 40, {"formal-request-received", "consent-given", "released", "withdrawn"}),
        ("consent-decision-20", "consent-given", False, False, 20, {"executive-decision", "surrender-scheduled", "released", "withdrawn"}),
        ("surrender-15", "surrender-scheduled", True, False, 15, {"surrendered", "surrender-scheduled", "released", "withdrawn"}),
        ("surrender-30", "surrender-scheduled", True, False, 30, {"surrendered", "surrender-scheduled", "released", "withdrawn"}),
    ]
    provisional = bool(history) and history[0]["stage"] == "provisional-arrest-requested"
    out = []
    for i, u in enumerate(history):
        for name, starts, from_scheduled, after_prov, days, met_by in rules:
            if u["stage"] != starts or (after_prov and not provisional):
                continue
            if from_scheduled:
                if not u.get("scheduled_for"):
                    continue
                started = datetime.date.fromisoformat(u["scheduled_for"])
            else:
                started = datetime.date.fromisoformat(u["effective_date"])
            out = [d for d in out if d["name"] != name or d["met"] is not None]
            met = next((datetime.date.fromisoformat(l["effective_date"]) for l in history[i + 1:] if l["stage"] in met_by), None)
            out.append({"name": name, "due": started + datetime.timedelta(days=days), "met": met})
    states = []
    for d in out:
        if d["met"] is not None:
            states.append("met" if d["met"] <= d["due"] else "missed")
        else:
            states.append("missed" if today > d["due"] else "open")
    return states


def compute(cases, agency, start, until, threshold):
    inside = lambda t: start <= t <= until
    c = {k: {} for k in ["by_direction", "by_partner", "by_kind", "by_offence", "by_measure", "by_emergency", "by_outcome", "by_refusal_ground"]}
    c["total"] = 0
    m = {"total": 0, "by_direction": {}, "by_partner": {}, "by_type": {}}
    victims = [[0] * len(GENDERS) for _ in AGE_BANDS]
    durations = {d: [] for d in DURATIONS}
    deadlines = {"met": 0, "missed": 0, "open": 0}

    def bump(d, k):
        d[k] = d.get(k, 0) + 1

    for msgs in cases:
        for x in msgs:
            if inside(x["sent_at"]):
                m["total"] += 1
                sent = x["from"] == agency
                bump(m["by_direction"], "sent" if sent else "received")
                bump(m["by_partner"], x["to"] if sent else x["from"])
                bump(m["by_type"], x["type"])
        first = min(msgs, key=lambda x: x["position"])
        if not inside(first["sent_at"]):
            continue
        requested = first["to"]
        history = sorted((x for x in msgs if x["from"] == requested and x["type"] in ("mla-status", "extradition-status")),
                         key=lambda x: x["position"])
        types = {x["type"] for x in msgs}
        kind = ("mla" if "mla-request" in types else "extradition" if "extradition-status" in types
                else "preservation" if "preservation-request" in types else "liaison" if "liaison" in types else "evidence")
        c["total"] += 1
        out = first["from"] == agency
        bump(c["by_direction"], "outgoing" if out else "incoming")
        bump(c["by_partner"], first["to"] if out else first["from"])
        bump(c["by_kind"], kind)
        bump(c["by_emergency"], "emergency" if any(x.get("emergency") for x in msgs) else "routine")
        offences, measures, seen = set(), set(), set()
        for x in msgs:
            if x["sent_at"] > until or x["type"] not in ("mla-request", "preservation-request"):
                continue
            offences.update(o or "unclassified" for o in x["offences"])
            measures.update(x["measures"])
            for band, gender, name in x["victims"]:
                if name in seen:
                    continue
                seen.add(name)
                victims[AGE_BANDS.index(band)][GENDERS.index(gender or "unknown")] += 1
        for o in offences:
            bump(c["by_offence"], o)
        for x in measures:
            bump(c["by_measure"], x)
        statuses = [(x, x["status"]) for x in history if x["type"] == "mla-status"]
        if kind == "mla":
            decisive = [s for _, s in statuses if s in ("executed", "partially-executed", "refused", "withdrawn")]
            outcome = decisive[-1] if decisive else ("closed" if any(s == "closed" for _, s in statuses) else "open")
            if outcome == "refused":
                grounds = set()
                for x, s in statuses:
                    if s == "refused":
                        grounds.update(x.get("refusal_grounds", []))
                for g in grounds or {"not-classified"}:
                    bump(c["by_refusal_ground"], g)
            bump(c["by_outcome"], "mla:" + outcome)
            request = min(x["sent_at"] for x in msgs if x["type"] == "mla-request")
            if request <= until:
                def first_where(f):
                    return next((x["sent_at"] - request for x, s in statuses if x["sent_at"] <= until and f(s)), None)
                events = [first_where(lambda s: True), first_where(lambda s: s == "registered"),
                          first_where(lambda s: s in ("executed", "partially-executed")), first_where(lambda s: s == "closed")]
                for name, e in zip(DURATIONS, events):
                    if e is not None:
                        durations[name].append(max(e, 0))
        elif kind == "extradition":
            outcome = "open"
            for x in history:
                s, d = x["stage"], x.get("decision")
                if s in ("surrendered", "released", "discharged", "withdrawn"):
                    outcome = s
                elif s in ("judicial-decision", "executive-decision", "appeal-decided") and d:
                    outcome = "refused" if d == "refused" else "granted"
            bump(c["by_outcome"], "extradition:" + outcome)
            ups = sorted((x for x in history if x["sent_at"] <= until),
                         key=lambda x: (x["effective_date"], x["position"]))
            today = datetime.datetime.fromtimestamp(until, datetime.timezone.utc).date()
            for st in ece_deadlines(ups, today):
                deadlines[st] += 1

    def dist(v):
        v = sorted(v)
        if not v:
            return {"count": 0, "median": None, "p90": None, "max": None}
        return {"count": len(v), "median": lower_median(v), "p90": p90(v), "max": v[-1]}

    return {
        "format": "rogatory-stats/1", "agency": agency, "from": utc(start), "until": utc(until),
        "threshold": threshold, "cases": c, "messages": m,
        "victims": suppress(victims, threshold),
        "durations": {d: dist(v) for d, v in durations.items()},
        "extradition_deadlines": deadlines,
    }


def recoverable(table):
    """The classical attack: a line (row or column of the extended table, totals included) with
    exactly one unknown entry gives it away; solve, and repeat."""
    m = [r + [t] for r, t in zip(table["cells"], table["row_totals"])]
    m.append(table["column_totals"] + [table["total"]])
    m = [list(r) for r in m]
    nr, nc = len(m), len(m[0])
    hidden = {(i, j) for i in range(nr) for j in range(nc) if m[i][j] is None}
    found = []
    progress = True
    while progress:
        progress = False
        lines = [[(i, j) for j in range(nc)] for i in range(nr)] + [[(i, j) for i in range(nr)] for j in range(nc)]
        for line in lines:
            unknown = [p for p in line if m[p[0]][p[1]] is None]
            if len(unknown) != 1:
                continue
            (i, j), total = unknown[0], line[-1]
            if (i, j) == total:
                m[i][j] = sum(m[a][b] for a, b in line[:-1])
            else:
                m[i][j] = m[total[0]][total[1]] - sum(m[a][b] for a, b in line[:-1] if (a, b) != (i, j))
            found.append(((i, j), m[i][j]))
            progress = True
    return [f for f in found if f[0] in hidden]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log")
    p.add_argument("--agency")
    p.add_argument("--from", dest="start", default=None)
    p.add_argument("--until")
    p.add_argument("--threshold", type=int, default=5)
    p.add_argument("--check-suppression", metavar="FIGURES")
    p.add_argument("bundles", nargs="*")
    a = p.parse_args()
    if a.check_suppression:
        with open(a.check_suppression) as f:
            fig = json.load(f)
        t = fig["victims"]
        shown = [v for r in t["cells"] for v in r] + t["row_totals"] + t["column_totals"] + [t["total"]]
        small = [v for v in shown if v is not None and 0 < v < fig["threshold"]]
        got = recoverable(t)
        m = [[0 if v is None else v for v in r] for r in [r + [x] for r, x in zip(t["cells"], t["row_totals"])] + [t["column_totals"] + [t["total"]]]]
        hid = [[v is None for v in r] for r in [r + [x] for r, x in zip(t["cells"], t["row_totals"])] + [t["column_totals"] + [t["total"]]]]
        if exposed(m, hid) is not None:
            got.append(("interval attack", exposed(m, hid)))
        if small or got:
            print(f"FAIL: shown below the threshold: {small}; recovered: {got}")
            sys.exit(1)
        print(f"ok: {t['suppressed']} suppressed entries, none shown below {fig['threshold']}, none recovered from the totals")
        return
    with open(a.log) as f:
        log = {r["case"]: r for r in map(json.loads, f)}
    cases = [messages_of(b, log)[1] for b in a.bundles]
    start = bound(a.start, False) if a.start else 0
    print(json.dumps(compute(cases, a.agency, start, bound(a.until, True), a.threshold), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
