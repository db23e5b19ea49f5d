#!/usr/bin/env bash
# A short run of every fuzz target (cargo-fuzz, libFuzzer, on the stable toolchain), each seeded
# from spec/vectors/ (and verify_bundle from the bundles in SEED_DIR, if given). Fails if any
# target finds a crash. docs/development.md, "Fuzzing".
#
# Usage: fuzz/smoke.sh [SECONDS-PER-TARGET] [SEED_DIR]     (default 10 s; no bundle seeds)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-10}
seed_dir=${2:-}
export RUSTC_BOOTSTRAP=1

# Seeds: the vectors' envelopes, messages, receipts, cards and notes, as the bytes each target reads.
python3 - "$seed_dir" <<'PY'
import glob, json, os, sys
root = os.path.join("..", "spec", "vectors")
def put(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
for path in glob.glob(os.path.join(root, "envelope-*.json")):
    v = json.load(open(path))
    for i, e in enumerate(v.get("envelopes", [])):
        put("open_envelope", f"{os.path.basename(path)}-{i}", bytes.fromhex(e["envelope"]))
    for a in v.get("agencies", []):
        put("decode_card_receipt_keys", f"card-{a['id']}", bytes.fromhex(a["card"]))
msgs = json.load(open(os.path.join(root, "messages.json")))["messages"]
for kind, m in msgs.items():
    put("decode_message", kind, bytes.fromhex(m["cbor"]))
rec = json.load(open(os.path.join(root, "receipts.json")))
for i, r in enumerate(rec["receipts"]):
    put("decode_card_receipt_keys", f"receipt-{i}", bytes.fromhex(r["bytes"]))
    for k in ("carried_checkpoint", "checkpoint_text"):
        if k in r:
            put("decode_audit", f"{k}-{i}", r[k].encode())
put("decode_audit", "consistency", b"old 1\n" + b"A" * 43 + b"=\n\nrogatory.XA.MOJ-CA/case/x\n2\n" + b"A" * 43 + b"=\n")
keys = json.load(open(os.path.join(root, "keys.json")))
for i, h in enumerate(keys["histories"]):
    put("decode_key_history", f"history-{i}", bytes.fromhex(h["history"]["file"]))
    for s in h["history"]["statements"]:
        put("decode_key_history", f"statement-{i}-{s['seq']}", bytes.fromhex(s["bytes"]))
put("decode_audit", "policy", b"log rogatory.XA.MOJ-CA+00000000+AQ==\nquorum none\n")
if sys.argv[1]:
    for i, b in enumerate(glob.glob(os.path.join(sys.argv[1], "**", "*.bundle"), recursive=True)):
        put("verify_bundle", f"bundle-{i}", open(b, "rb").read())
PY

mkdir -p artifacts
if ! cargo fuzz build > artifacts/build.log 2>&1; then
    tail -50 artifacts/build.log >&2
    exit 1
fi
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    echo "fuzz: $target for ${seconds}s"
    log="artifacts/$target.log"
    mkdir -p artifacts
    if ! cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1 > "$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $target failed; its input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" | tr '\n' ' '
    echo
done
echo "ok: every fuzz target ran ${seconds}s with no crash"
