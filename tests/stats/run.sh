#!/usr/bin/env bash
# Statistics check (spec/STATS.md), with three real nodes on loopback:
#
# 1. workload.py sends a seeded workload through the nodes' local APIs (300 cases of mixed
#    kinds, offences, measures, outcomes, refusals, emergencies, victims and extradition
#    deadlines), and logs what it sent; then exports every case's bundle of every node with its
#    content disclosed to a statistics office's key.
# 2. For each agency, three computations of the same figures must be equal:
#    `rogatory stats` on its node; `rogatory-verify --stats` over its bundles; and
#    recompute.py, which shares no code with Rogatory (the generator's log for the content,
#    the bundles' clear envelope headers for who sent what when).
# 3. No output (JSON, CSV, SDMX-CSV, HTML) shows a victim count from 1 to the threshold − 1,
#    and no suppressed count is recovered from the row and column totals.
# 4. `rogatory stats --html` renders in headless Chromium with its charts.
#
# Usage: tests/stats/run.sh [PATH-TO-rogatory [PATH-TO-rogatory-verify]]
# ROGATORY_STATS_CASES sets the number of cases (default 300); ROGATORY_STATS_KEEP=DIR keeps
# the figures, reports and the generator's log there. The Python packages go into the
# virtualenv at $ROGATORY_VENV (default: .venv in the repository).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/debug/rogatory}
verify=${2:-$root/target/debug/rogatory-verify}
venv=${ROGATORY_VENV:-$root/.venv}
cases=${ROGATORY_STATS_CASES:-300}
for b in "$bin" "$verify"; do
    [ -x "$b" ] || { echo "stats: $b not found; build with: cargo build --workspace --bins" >&2; exit 1; }
done
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
verify=$(cd "$(dirname "$verify")" && pwd)/$(basename "$verify")
# shellcheck source=tests/interop/node.sh
. "$root/tests/interop/node.sh"
venv_ready 'import cbor2' cbor2==5.9.0
py="$venv/bin/python"

scratch
cd "$work"

export ROGATORY_PASSPHRASE="statistics check passphrase"
agencies=(xa:XA.MOJ-CA xb:XB.DOJ-CA xc:XC.MOJ-CA)
for a in "${agencies[@]}"; do
    dir=${a%%:*}; id=${a#*:}
    "$bin" init --agency "$id" --name "$id" --data-dir "$dir" --listen "/ip4/127.0.0.1/tcp/$(port)" >/dev/null 2>&1
    "$bin" card export --data-dir "$dir" --out "$dir.card" >/dev/null 2>&1
done
for a in "${agencies[@]}"; do
    for b in "${agencies[@]}"; do
        [ "$a" = "$b" ] && continue
        "$bin" peer add "${b%%:*}.card" --fingerprint "$(fingerprint "${b%%:*}.card")" --data-dir "${a%%:*}" >/dev/null
    done
done
nodes=()
for a in "${agencies[@]}"; do
    start_node "${a%%:*}" || { echo "FAIL: the node ${a%%:*} did not start" >&2; exit 1; }
    pids+=("$node_pid")
    nodes+=(--node "${a#*:}=$work/${a%%:*}")
done
"$bin" keygen --agency XZ.STATS --name "Statistics office" --out office >/dev/null

started=$(date +%s)
"$py" "$root/tests/stats/workload.py" generate "${nodes[@]}" --cases "$cases" --seed 19 --log gen.jsonl
echo "ok: workload of $cases cases sent and delivered in $(( $(date +%s) - started )) s"
until=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"$py" "$root/tests/stats/workload.py" export "${nodes[@]}" --auditor-card office/card.cose --out bundles

fail=0
for a in "${agencies[@]}"; do
    dir=${a%%:*}; id=${a#*:}
    ms() { date +%s%3N; }
    t0=$(ms)
    "$bin" stats --data-dir "$dir" --until "$until" --json > "node-$id.json"
    t1=$(ms)
    "$verify" --stats --key office --until "$until" --json bundles/"$id"/*.bundle > "verify-$id.json"
    t2=$(ms)
    "$py" "$root/tests/stats/recompute.py" --log gen.jsonl --agency "$id" --until "$until" bundles/"$id"/*.bundle > "python-$id.json"
    t3=$(ms)
    echo "$id: rogatory stats $((t1 - t0)) ms, rogatory-verify --stats $((t2 - t1)) ms (verifying every bundle), recompute.py $((t3 - t2)) ms"
    if "$py" - "node-$id.json" "verify-$id.json" "python-$id.json" <<'EOF'
import json, sys
node, verify, python = (json.load(open(p)) for p in sys.argv[1:])
def diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from diff(a.get(k), b.get(k), f"{path}.{k}")
    elif a != b:
        yield f"{path}: {a!r} != {b!r}"
bad = list(diff(node, verify)) + [f"python{d}" for d in diff(node, python)]
if bad:
    print("\n".join(bad[:40]))
    sys.exit(1)
c, v = node["cases"], node["victims"]
print(f"ok: {node['agency']}: rogatory stats, rogatory-verify --stats over {c['total']} bundles and the independent recomputation agree: "
      f"{c['total']} cases ({json.dumps(c['by_kind'], sort_keys=True)}), {node['messages']['total']} messages, "
      f"outcomes {json.dumps(c['by_outcome'], sort_keys=True)}, refusal grounds {json.dumps(c['by_refusal_ground'], sort_keys=True)}, "
      f"extradition deadlines {json.dumps(node['extradition_deadlines'], sort_keys=True)}, "
      f"time to registration median {node['durations']['registration']['median']} s, "
      f"victims {v['total']} ({v['suppressed']} table entries suppressed)")
EOF
    then :; else echo "FAIL: $id: the three computations differ"; fail=1; fi
    "$py" "$root/tests/stats/recompute.py" --check-suppression "node-$id.json" | sed "s/^/$id: /"
    "$bin" stats --data-dir "$dir" --until "$until" --format csv > "$id.csv"
    "$bin" stats --data-dir "$dir" --until "$until" --format sdmx > "$id.sdmx.csv"
    "$bin" stats --data-dir "$dir" --until "$until" --html "$work/$id.html" > "$id.txt" 2>/dev/null
    "$py" - "$id.csv" "$id.sdmx.csv" "$id.txt" <<'EOF'
import csv, sys
small = []
for row in csv.DictReader(open(sys.argv[1])):
    if row["figure"] == "victims" and row["value"] and 0 < int(row["value"]) < 5:
        small.append(row)
for row in csv.DictReader(open(sys.argv[2])):
    assert row["DATAFLOW"].startswith("ROGATORY:"), row
    if row["INDICATOR"] == "VICTIMS" and row["OBS_VALUE"] and 0 < int(row["OBS_VALUE"]) < 5:
        small.append(row)
    if row["CONF_STATUS"] == "C":
        assert row["OBS_VALUE"] == "", row
lines = open(sys.argv[3]).read().split("Victims by age band")[1].split("MLA requests")[0].split("\n")[2:]
for line in lines:
    for cell in line.split()[1:]:
        if cell.isdigit() and 0 < int(cell) < 5:
            small.append(line)
if small:
    print("FAIL: a victim count below the threshold is shown:", small[:5])
    sys.exit(1)
print("ok: the CSV, SDMX-CSV and table outputs show no victim count from 1 to 4")
EOF
done

# The HTML report in a real browser: parsed, its charts drawn, nothing fetched.
html="$work/XA.MOJ-CA.html"
chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$html" > dom.html 2>/dev/null
chromium --headless --no-sandbox --disable-gpu --window-size=1200,3000 --screenshot="$work/stats.png" "file://$html" >/dev/null 2>&1
"$py" - dom.html "$work/stats.png" <<'EOF'
import re, sys
dom = open(sys.argv[1]).read()
svgs = len(re.findall(r"<svg\b", dom))
bars = len(re.findall(r'<rect class="bar"', dom))
assert "<script" not in dom, "the report has a script"
assert not re.search(r'(src|href)="(https?:)?//', dom), "the report refers to something outside"
assert svgs >= 10 and bars >= 30, f"only {svgs} charts and {bars} bars in the rendered page"
png = open(sys.argv[2], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000, "no screenshot"
print(f"ok: headless Chromium rendered the statistics report: {svgs} SVG charts, {bars} bars, no script, nothing from outside; screenshot {len(png)} bytes")
EOF

if [ -n "${ROGATORY_STATS_KEEP:-}" ]; then
    mkdir -p "$ROGATORY_STATS_KEEP"
    cp ./*.json ./*.csv ./*.html ./*.txt stats.png gen.jsonl "$ROGATORY_STATS_KEEP"/
    echo "outputs kept in $ROGATORY_STATS_KEEP"
fi
exit "$fail"
