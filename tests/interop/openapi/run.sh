#!/usr/bin/env bash
# An independent client of the local API: openapi-python-client generates a Python client from
# spec/openapi.json (and that file must be what the binary serves), and client_check.py uses it
# against two real nodes on loopback: opens a case, sends a message, lists the cases.
#
# Usage: tests/interop/openapi/run.sh [PATH-TO-rogatory]   (default: target/debug/rogatory)
# The Python packages go into the virtualenv at $ROGATORY_VENV (default: .venv in the repository).
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
bin=${1:-$root/target/debug/rogatory}
venv=${ROGATORY_VENV:-$root/.venv}
[ -x "$bin" ] || { echo "openapi: $bin not found; build it with: cargo build -p rogatory-node" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# shellcheck source=tests/interop/node.sh
. "$root/tests/interop/node.sh"
venv_ready 'import openapi_python_client, prometheus_client' -r "$root/tests/interop/openapi/requirements.txt"

scratch

# The checked-in document is the one the binary generates (the test suite checks the served one).
"$bin" openapi > "$work/openapi.json"
if ! cmp -s "$work/openapi.json" "$root/spec/openapi.json"; then
    echo "FAIL: spec/openapi.json differs from \`rogatory openapi\`; regenerate it with: target/debug/rogatory openapi > spec/openapi.json" >&2
    diff "$root/spec/openapi.json" "$work/openapi.json" | head -20 >&2
    exit 1
fi
echo "ok: spec/openapi.json is the document the binary serves"

printf 'post_hooks: []\n' > "$work/generator.yaml"
"$venv/bin/openapi-python-client" generate --path "$root/spec/openapi.json" \
    --output-path "$work/pkg/rogatory_client" --meta none --config "$work/generator.yaml" >/dev/null
echo "ok: openapi-python-client generated a client ($(ls "$work/pkg/rogatory_client/api" | wc -l) route groups)"

export ROGATORY_PASSPHRASE="openapi check passphrase"
cd "$work"
for a in xa:XA.MOJ-CA xb:XB.DOJ-CA; do
    dir=${a%%:*}; id=${a#*:}
    "$bin" init --agency "$id" --name "$id" --data-dir "$dir" --listen "/ip4/127.0.0.1/tcp/$(port)" >/dev/null 2>&1
    "$bin" card export --data-dir "$dir" --out "$dir.card" >/dev/null 2>&1
done
"$bin" peer add xb.card --fingerprint "$(fingerprint xb.card)" --data-dir xa >/dev/null
"$bin" peer add xa.card --fingerprint "$(fingerprint xa.card)" --data-dir xb >/dev/null
for dir in xa xb; do
    start_node "$dir" || { echo "FAIL: the node $dir did not start" >&2; exit 1; }
    pids+=("$node_pid")
done

"$venv/bin/python" "$root/tests/interop/openapi/client_check.py" "$work/pkg" \
    "$(cat xa/api.addr)" "$(cat xa/api-token)" XB.DOJ-CA "$root/spec/examples/mla-request.json"

"$venv/bin/python" "$root/tests/interop/openapi/metrics_check.py" \
    "$(cat xa/api.addr)" "$(cat xa/api-token)" XB.DOJ-CA
