#!/usr/bin/env bash
# A real exchange between three fictional agencies on this machine, with the `rogatory` CLI:
# keys and cards, a request checked and sealed for two addressees, opened by each, inspected
# by an outsider without keys, and refused when it reaches the wrong agency or is altered.
#
# Usage: deploy/demo/envelope-round-trip.sh [WORK-DIR]   (default: a new temporary directory)
# Needs only the Rust toolchain; builds the binary on first use.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d -t rogatory-demo.XXXXXX)}
mkdir -p "$work"
cd "$root"
cargo build --quiet -p rogatory-node --bin rogatory
bin="$root/target/debug/rogatory"
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ rogatory %s\n' "$*" >&2; "$bin" "$@"; }
# The top-level fields of `envelope open` output, and the start of the summary of facts.
summary() { grep -E '^  "(from|to|case_id|message_type)"|"summary_of_facts"' | cut -c1-110; }

step "1. Three agencies create their keys and signed agency cards"
for a in "XA.MOJ-CA|Central Authority of XA|central-authority" \
         "XB.DOJ-CA|Central Authority of XB|central-authority" \
         "XC.POLICE-CYBER|Cybercrime Police of XC|police-liaison"; do
    IFS='|' read -r id name role <<<"$a"
    dir=$(echo "$id" | tr 'A-Z.' 'a-z-')
    [ -e "$dir/secret-keys.cose" ] || run keygen --agency "$id" --name "$name" --role "$role" --out "$dir" | sed -n '1p;4p'
done

step "2. XB checks the card it received from XA (the fingerprint is compared by telephone)"
run card show xa-moj-ca/card.cose

step "3. XA's clerk checks an incomplete draft, then the finished request"
cat > draft.json <<'JSON'
{ "requesting_authority": { "name": "Central Authority of XA", "country": "XA" },
  "assistance": [ { "kind": "subscriber-data", "description": "Subscriber data of the account" } ] }
JSON
run request validate draft.json || true
run request validate "$root/spec/examples/mla-request.json"

step "4. XA seals the request for XB, with a copy for XC: one envelope per addressee"
run envelope seal --key xa-moj-ca --to xb-doj-ca/card.cose --to xc-police-cyber/card.cose \
    --case new --type mla-request --body "$root/spec/examples/mla-request.json" --out outbox 2> seal.err
cat seal.err >&2
case_id=$(sed -n 's/^new case id: //p' seal.err)

step "5. Anyone with XA's card can verify origin and routing without reading the content"
run envelope inspect --trust xa-moj-ca/card.cose outbox/XB.DOJ-CA.cose

step "6. XB opens its envelope: both signatures verified, content decrypted"
run envelope open --key xb-doj-ca --trust xa-moj-ca/card.cose outbox/XB.DOJ-CA.cose | summary

step "7. XC opens its own copy"
run envelope open --key xc-police-cyber --trust xa-moj-ca/card.cose outbox/XC.POLICE-CYBER.cose | summary

step "8. XC cannot open XB's envelope"
run envelope open --key xc-police-cyber --trust xa-moj-ca/card.cose outbox/XB.DOJ-CA.cose || true

step "9. One altered byte and the envelope is refused"
cp outbox/XB.DOJ-CA.cose altered.cose
printf '\x00' | dd of=altered.cose bs=1 seek=200 conv=notrunc status=none
run envelope open --key xb-doj-ca --trust xa-moj-ca/card.cose altered.cose || true

step "10. Each agency's audit log of the case: commitments only, with a signed checkpoint"
run audit log "$case_id" --data-dir xa-moj-ca
run audit log "$case_id" --data-dir xb-doj-ca

step "11. A proof that XB logged the receipt of the request, checked offline with XB's verifier key"
vkey=$("$bin" card show xb-doj-ca --json | sed -n 's/.*"note_verifier_key": "\(.*\)".*/\1/p')
run audit prove "$case_id" --data-dir xb-doj-ca --index 0 > proof.tlog-proof
cat proof.tlog-proof
run audit verify-proof proof.tlog-proof --vkey "$vkey"
run audit verify-store --data-dir xb-doj-ca

printf '\nDone. Files are in %s\n' "$work"
