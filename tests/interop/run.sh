#!/usr/bin/env bash
# Independent-implementation interoperability check (spec/PROTOCOL.md §7).
#
# Seals a real MLA request with the `rogatory` binary, then verifies both signatures and decrypts
# it with Python's pycose and python-cwt, which share no code with Rogatory; checks that a third
# agency's keys cannot read it; checks the spec/vectors envelopes the same way; and validates the
# CBOR of the examples, receipts, cards and envelopes against the CDDL schemas in spec/cddl/.
#
# Then seals envelopes with independent Python code (seal_envelope.py), has the binary open one and
# a running node accept three over libp2p (two handed to `rogatory deliver`, the third sent by
# py-libp2p, an independent libp2p stack), and checks the node's receipts and cosignature in Python.
#
# Usage: tests/interop/run.sh [PATH-TO-rogatory]   (default: target/debug/rogatory)
# The Python packages go into a virtualenv at $ROGATORY_VENV (default: .venv in the repository).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/debug/rogatory}
venv=${ROGATORY_VENV:-$root/.venv}
[ -x "$bin" ] || { echo "interop: $bin not found; build it with: cargo build -p rogatory-node" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pycose, cwt, cbor2, cryptography, pycddl, libp2p' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/interop/requirements.txt"
fi
py="$venv/bin/python"
# shellcheck source=tests/interop/node.sh
. "$root/tests/interop/node.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

pass=0
fail=0
check() {
    local name=$1
    shift
    if "$@" >"$work/out.log" 2>&1; then
        pass=$((pass + 1))
        echo "ok: $name"
    else
        fail=$((fail + 1))
        echo "FAIL: $name"
        sed 's/^/    /' "$work/out.log"
    fi
}
refused() { ! "$@"; }

"$bin" keygen --agency XA.MOJ-CA --name "Central Authority of XA" --out xa >/dev/null
"$bin" keygen --agency XB.DOJ-CA --name "Central Authority of XB" --out xb >/dev/null
"$bin" keygen --agency XC.POLICE --name "Police of XC" --out xc >/dev/null
"$bin" envelope seal --key xa --to xb/card.cose --to xc/card.cose --case new --type mla-request \
    --body "$root/spec/examples/mla-request.json" --out sealed 2>/dev/null >/dev/null
"$bin" envelope seal --key xa --to xb/card.cose --case new --type liaison \
    --body "$root/spec/examples/liaison.json" --out liaison.cose 2>/dev/null >/dev/null

check "pycose + python-cwt verify and decrypt an MLA request sealed by the rogatory CLI (XB's copy)" \
    "$py" "$root/tests/interop/verify_envelope.py" --envelope sealed/XB.DOJ-CA.cose \
    --sender-card xa/card.cose --recipient-card xb/card.cose --recipient-keys xb/secret-keys.cose \
    --expect-json "$root/spec/examples/mla-request.json"
check "the same for the second addressee's envelope (XC's copy)" \
    "$py" "$root/tests/interop/verify_envelope.py" --envelope sealed/XC.POLICE.cose \
    --sender-card xa/card.cose --recipient-card xc/card.cose --recipient-keys xc/secret-keys.cose \
    --expect-json "$root/spec/examples/mla-request.json"
check "a liaison message sealed by the CLI" \
    "$py" "$root/tests/interop/verify_envelope.py" --envelope liaison.cose \
    --sender-card xa/card.cose --recipient-card xb/card.cose --recipient-keys xb/secret-keys.cose \
    --expect-json "$root/spec/examples/liaison.json"
check "XC's keys cannot open XB's envelope in the independent implementation" \
    refused "$py" "$root/tests/interop/verify_envelope.py" --envelope sealed/XB.DOJ-CA.cose \
    --sender-card xa/card.cose --recipient-card xc/card.cose --recipient-keys xc/secret-keys.cose
for v in "$root"/spec/vectors/envelope-*.json; do
    check "test vector $(basename "$v")" "$py" "$root/tests/interop/verify_envelope.py" --vector "$v"
done
# Audit checkpoints and proofs, checked with code written from the C2SP texts and RFC 9162.
case_id=01a22522-d4f2-73cd-be4f-be9050503898
"$bin" envelope seal --key xa --to xb/card.cose --case "$case_id" --type liaison \
    --body "$root/spec/examples/liaison.json" --out c1.cose 2>/dev/null >/dev/null
"$bin" envelope seal --key xa --to xb/card.cose --case "$case_id" --type liaison --sequence 2 \
    --previous "$(sha256sum c1.cose | cut -d' ' -f1)" --body "$root/spec/examples/liaison.json" --out c2.cose 2>/dev/null >/dev/null
vkey=$("$bin" card show xa --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["note_verifier_key"])')
"$bin" audit checkpoint "$case_id" --data-dir xa > checkpoint.txt
"$bin" audit prove "$case_id" --data-dir xa --index 0 > proof.tlog-proof
check "an audit checkpoint verifies as a C2SP signed note with the agency's verifier key" \
    "$py" "$root/tests/interop/verify_note.py" --vkey "$vkey" --note checkpoint.txt
check "an audit tlog-proof verifies (signature and RFC 9162 inclusion) in independent code" \
    "$py" "$root/tests/interop/verify_note.py" --vkey "$vkey" --proof proof.tlog-proof
check "the audit entry carried by the proof matches spec/cddl/audit-entry.cddl" \
    "$py" -c 'import base64, sys, pycddl
entry = base64.b64decode(open(sys.argv[1]).read().split("\n")[1][len("extra "):])
pycddl.Schema(open(sys.argv[2]).read()).validate_cbor(entry)' proof.tlog-proof "$root/spec/cddl/audit-entry.cddl"
xb_vkey=$("$bin" card show xb --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["note_verifier_key"])')
check "the checkpoint does not verify with another agency's key" \
    refused "$py" "$root/tests/interop/verify_note.py" --vkey "$xb_vkey" --note checkpoint.txt
# An envelope sealed by independent Python code (tests/interop/seal_envelope.py, from the spec
# alone): opened by the rogatory binary, then delivered over libp2p to a running node, whose
# receipts and cosignature the Python code checks.
seal_py="$root/tests/interop/seal_envelope.py"
liaison_cbor=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages"]["liaison"]["cbor"])' "$root/spec/vectors/messages.json")
py_case=01a22522-d4f2-73cd-be4f-be9050503899
"$py" "$seal_py" seal --sender-keys xa/secret-keys.cose --sender-card xa/card.cose \
    --recipient-card xb/card.cose --case "$py_case" --type liaison --message-cbor "$liaison_cbor" \
    --out py-offline.cose >/dev/null
check "an envelope sealed by independent Python code opens with the rogatory binary" \
    "$bin" envelope open --key xb --trust xa/card.cose py-offline.cose
export ROGATORY_PASSPHRASE="interop passphrase, not a secret"
"$bin" init --agency XB.DOJ-CA --name "Central Authority of XB" --data-dir xbn \
    --listen /ip4/127.0.0.1/tcp/0 >/dev/null 2>&1
fp() { "$bin" card show "$1" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])'; }
"$bin" peer add xa/card.cose --fingerprint "$(fp xa/card.cose)" --data-dir xbn >/dev/null
"$bin" peer add xbn/card.cose --fingerprint "$(fp xbn/card.cose)" --data-dir xa >/dev/null
start_node xbn listening
trap 'kill "$node_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
addr=$node_addr
peer=$node_peer
"$py" "$seal_py" seal --sender-keys xa/secret-keys.cose --sender-card xa/card.cose \
    --recipient-card xbn/card.cose --case "$py_case" --type liaison --message-cbor "$liaison_cbor" \
    --out py1.cose >/dev/null
check "a running node accepts it over libp2p (rogatory deliver)" \
    "$bin" deliver py1.cose --to XB.DOJ-CA --data-dir xa --addr "$addr"
check "the independent code verifies the node's receipt (pycose) for exactly that envelope" \
    "$py" "$seal_py" check-receipt --receipt py1.receipt --envelope py1.cose --issuer-card xbn/card.cose
"$py" "$seal_py" seal --sender-keys xa/secret-keys.cose --sender-card xa/card.cose \
    --recipient-card xbn/card.cose --case "$py_case" --type liaison --message-cbor "$liaison_cbor" \
    --out py2.cose --sequence 2 --previous "$(sha256sum py1.cose | cut -d' ' -f1)" --checkpoint >/dev/null
check "the second, carrying a checkpoint the Python code signed, is accepted next in its chain" \
    "$bin" deliver py2.cose --to XB.DOJ-CA --data-dir xa --addr "$addr"
check "the independent code verifies the node's cosignature of that checkpoint, byte for byte" \
    "$py" "$seal_py" check-receipt --receipt py2.receipt --envelope py2.cose \
    --issuer-card xbn/card.cose --checkpoint-body py2.cose.checkpoint-body
check "a receipt is not taken for another envelope" \
    refused "$py" "$seal_py" check-receipt --receipt py2.receipt --envelope py1.cose --issuer-card xbn/card.cose
"$py" "$seal_py" seal --sender-keys xa/secret-keys.cose --sender-card xa/card.cose \
    --recipient-card xbn/card.cose --case "$py_case" --type liaison --message-cbor "$liaison_cbor" \
    --out py3.cose --sequence 3 --previous "$(sha256sum py2.cose | cut -d' ' -f1)" --checkpoint >/dev/null
check "an independent libp2p stack (py-libp2p: TCP, Noise, Yamux) delivers the third, with the sender's key as identity" \
    "$py" "$root/tests/interop/libp2p_deliver.py" --sender-keys xa/secret-keys.cose \
    --addr "$addr/p2p/$peer" --envelope py3.cose --out py3.receipt
check "the node's receipt for it, and its cosignature of the carried checkpoint, verify in the independent code" \
    "$py" "$seal_py" check-receipt --receipt py3.receipt --envelope py3.cose --issuer-card xbn/card.cose \
    --checkpoint-body py3.cose.checkpoint-body
kill "$node_pid" 2>/dev/null || true
wait "$node_pid" 2>/dev/null || true
unset ROGATORY_PASSPHRASE
check "the receipt vector's cosignature (spec/PROTOCOL.md §6.4) verifies in independent code" \
    "$py" "$root/tests/interop/verify_note.py" --receipt-vectors "$root/spec/vectors/receipts.json"
check "CDDL schemas (spec/cddl) accept every vector and refuse mutilated messages" \
    "$py" "$root/tests/interop/check_cddl.py"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
