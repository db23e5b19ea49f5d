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

# shellcheck source=tests/interop/node.sh
. "$root/tests/interop/node.sh"
venv_ready 'import pycose, cwt, cbor2, cryptography, pycddl, libp2p' -r "$root/tests/interop/requirements.txt"
py="$venv/bin/python"

scratch
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

# Key histories (an agency's offline root and the statements it signs), checked by independent
# Python code written from the format (tests/interop/verify_keys.py): an agency made, rotated and
# with its signing key revoked by the CLI; then histories extended, forged or damaged by Python
# code (tests/interop/forge_keys.py), which the independent code and the binary must both accept
# or both refuse, and k-of-n roots, which the CLI cannot make.
keys_py="$root/tests/interop/verify_keys.py"
forge_py="$root/tests/interop/forge_keys.py"
# A refusal by verify_keys.py: exit status 1 and a FAIL line naming the reason (not a crash).
refused_for() {
    local reason=$1 status=0
    shift
    "$@" >"$work/refusal.log" 2>&1 || status=$?
    cat "$work/refusal.log"
    [ "$status" -eq 1 ] && grep -q -- "FAIL: .*$reason" "$work/refusal.log"
}
# Both implementations refuse the history FILE.
both_refuse() {
    local reason=$1 file=$2
    refused_for "$reason" "$py" "$keys_py" "$file" || return 1
    if "$bin" card show "$file"; then echo "rogatory card show accepted $file"; return 1; fi
}
# Both accept FILE, agree on its fingerprint, root and every key, and verify_keys.py's
# expectations (the further arguments) hold.
both_accept() {
    local file=$1
    shift
    "$bin" card show "$file" --json >"$file.json" &&
        "$py" "$keys_py" "$file" --compare-card-show "$file.json" "$@"
}
json_get() { "$py" -c 'import json, sys; print(eval(sys.argv[1], {}, {"d": json.load(sys.stdin)}))' "$1"; }

check "the key history vectors (spec/vectors/keys.json) replay in independent code to what they say, the refused ones are refused, and the key log checkpoint, freshness note and witness cosignatures verify" \
    "$py" "$keys_py" --vectors "$root/spec/vectors/keys.json"
"$bin" init --agency XD.MOJ-CA --name "Central Authority of XD" --data-dir xd --insecure-plaintext-keys \
    --listen /ip4/127.0.0.1/tcp/0 >/dev/null 2>&1
"$bin" card export --data-dir xd --out xd0.keys 2>/dev/null
xd_fp=$(fp xd0.keys)
check "a genesis-only key history made by the CLI verifies in independent code, with the fingerprint card show prints" \
    "$py" "$keys_py" xd0.keys --fingerprint "$xd_fp" --expect-statements 1
check "a bare card (no history) verifies as its own root, with its fingerprint" \
    "$py" "$keys_py" xa/card.cose --fingerprint "$(fp xa/card.cose)" --expect-statements 0
"$bin" keys rotate --data-dir xd >/dev/null
"$bin" keys revoke signing --reason compromised --data-dir xd >/dev/null
"$bin" card export --data-dir xd --out xd.keys 2>/dev/null
revoked=$("$bin" keys history --data-dir xd --json | json_get '[k["key_id"] for k in d["keys"] if k["state"] == "revoked"][0]')
current=$("$bin" card show xd.keys --json | json_get 'd["signing_key"]["key_id"]')
check "after a rotation and the revocation of the new signing key (which rotates again), the history verifies with the SAME fingerprint; the revoked key is revoked, the newest current" \
    "$py" "$keys_py" xd.keys --fingerprint "$xd_fp" --expect-statements 4 \
    --expect-revoked "$revoked:compromised" --expect-current-signing "$current"
check "the independent replay agrees with rogatory card show on the root and every key's window, state and revocation" \
    both_accept xd.keys
check "the rotated history is refused under another agency's fingerprint" \
    refused_for "root fingerprint" "$py" "$keys_py" xd.keys --fingerprint "$(fp xa/card.cose)"
check "the revoked key is not reported current" \
    refused_for "not $revoked" "$py" "$keys_py" xd.keys --expect-current-signing "$revoked"
"$py" "$forge_py" flip-signature xd.keys flipped.keys
check "a history with one flipped bit in a signature is refused (independent code and rogatory)" \
    both_refuse "does not verify" flipped.keys
"$py" "$forge_py" drop xd.keys dropped.keys --statement 1
check "a history with statement 1 dropped is refused: statement 2's prev does not chain" \
    both_refuse "prev .* is not SHA-256 of statement 0's payload" dropped.keys
"$py" "$forge_py" extend xd.keys --online-keys xd/secret-keys.cose --out forged.keys >/dev/null
check "a rotation forged with the node's online key alone (no root signature) is refused" \
    both_refuse "signed by 0 root key" forged.keys
new=$("$py" "$forge_py" extend xd.keys --online-keys xd/secret-keys.cose --root-key xd/root-key.cose --out extended.keys)
check "the same rotation built in Python and signed by the root too is accepted by both, its key current, the fingerprint unchanged" \
    both_accept extended.keys --fingerprint "$xd_fp" --expect-current-signing "$new" --expect-statements 5
"$py" "$forge_py" extend xd.keys --root-key xd/root-key.cose --prev-of bytes --out prev-bytes.keys >/dev/null
check "a root-signed statement whose prev hashes the previous statement's bytes, not its payload, is refused" \
    both_refuse "is not SHA-256 of statement 3's payload" prev-bytes.keys
"$py" "$forge_py" extend xd.keys --root-key xd/root-key.cose --at-delta -1 --out backwards.keys >/dev/null
check "a root-signed statement taking effect before the previous one is refused" \
    both_refuse "before the previous one" backwards.keys
old_enc=$("$py" "$keys_py" xd0.keys --json | json_get 'd["current"]["encryption_key"]')
"$py" "$forge_py" extend xd.keys --root-key xd/root-key.cose --reuse-encryption-key "$old_enc" \
    --out brought-back.keys >/dev/null
check "a root-signed card bringing back a replaced key is refused" \
    both_refuse "brings back key" brought-back.keys
"$py" "$forge_py" extend xd.keys --root-key xd/root-key.cose --agency XF.OTHER --out other.keys >/dev/null
check "a root-signed card of another agency is refused" both_refuse "certifies a card of XF.OTHER" other.keys
"$py" "$forge_py" extend xd.keys --online-keys xd/secret-keys.cose --revoke signing --out self-revoke.keys >/dev/null
check "a revocation signed by the online key instead of the root is refused" \
    both_refuse "may not sign it" self-revoke.keys
"$py" "$forge_py" extend xd.keys --root-key xd/root-key.cose --revoke "$revoked" --reason retired \
    --out revoked-twice.keys >/dev/null
check "a second revocation of the revoked key is refused" both_refuse "already revoked" revoked-twice.keys
first=$("$py" "$keys_py" xd0.keys --json | json_get 'd["current"]["signing_key"]')
"$py" "$forge_py" extend xd.keys --root-key xd/root-key.cose --revoke "$first" --reason superseded \
    --out revoked-replaced.keys >/dev/null
check "a root-signed revocation of a replaced key built in Python is accepted by both" \
    both_accept revoked-replaced.keys --expect-revoked "$first:superseded" --expect-revoked "$revoked:compromised"
"$bin" user add ivan --role issuing-authority --token-out ivan.token --data-dir xd >/dev/null
"$bin" user certify ivan --days 30 --data-dir xd >/dev/null
"$bin" card export --data-dir xd --out xd-officer.keys 2>/dev/null
check "an official's key certified by the root (user certify): the independent replay agrees with card show on every key and official" \
    both_accept xd-officer.keys --fingerprint "$xd_fp" --expect-statements 5
ivan=$("$bin" card show xd-officer.keys --json | json_get 'd["officers"][0]["key_id"]')
"$bin" keys revoke "${ivan:0:16}" --reason retired --data-dir xd >/dev/null
"$bin" card export --data-dir xd --out xd-officer-revoked.keys 2>/dev/null
check "the official's key revoked (keys revoke): both agree it is revoked, as retired" \
    both_accept xd-officer-revoked.keys --fingerprint "$xd_fp" --expect-statements 6
new=$("$py" "$forge_py" synth --out k-of-n.keys --threshold 2 --root-keys 3)
check "a 2-of-3 root built in Python (rotation, revocation, a new 1-of-1 root, rotation): both accept it and compute the same root fingerprint" \
    both_accept k-of-n.keys --expect-current-signing "$new" --expect-statements 5
"$py" "$forge_py" synth --out k-of-n-3-5.keys --threshold 3 --root-keys 5 >/dev/null
check "a 3-of-5 root: both compute the same fingerprint" both_accept k-of-n-3-5.keys
for fault in genesis-below-threshold:"signed by 1 root key" card-below-threshold:"signed by 1 root key" \
    root-change-without-new-key:"0 key(s) of the new root" old-root-after-change:"may not sign it" \
    revoked-key-endorses:"may not sign it" stranger-signs:"may not sign it"; do
    "$py" "$forge_py" synth --out "k-of-n-${fault%%:*}.keys" --fault "${fault%%:*}" >/dev/null
    check "2-of-3 root, ${fault%%:*}: refused by both" both_refuse "${fault#*:}" "k-of-n-${fault%%:*}.keys"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
