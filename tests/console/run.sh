#!/usr/bin/env bash
# The console in a real browser: two real nodes on loopback, headless Chromium driven over
# WebDriver (chromedriver, Selenium) by tests/console/browser.py. See that file for what it checks.
#
# Usage: tests/console/run.sh [PATH-TO-rogatory]   (default: target/debug/rogatory)
# ROGATORY_CONSOLE_SHOTS=DIR keeps screenshots of a few pages there, for a person to look at.
# Needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver); Selenium goes
# into the virtualenv at $ROGATORY_VENV (default: .venv in the repository).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/debug/rogatory}
venv=${ROGATORY_VENV:-$root/.venv}
[ -x "$bin" ] || { echo "console: $bin not found; build it with: cargo build -p rogatory-node" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
for b in chromium chromedriver; do
    command -v "$b" >/dev/null || { echo "console: $b is missing (apt-get install chromium chromium-driver)" >&2; exit 1; }
done
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/console/requirements.txt"
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

export ROGATORY_PASSPHRASE="console check passphrase"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fingerprint() { "$bin" card show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])'; }
for a in xa:XA.MOJ-CA xb:XB.DOJ-CA; do
    dir=${a%%:*}; id=${a#*:}
    "$bin" init --agency "$id" --name "$id" --data-dir "$dir" --listen "/ip4/127.0.0.1/tcp/$(port)" >/dev/null 2>&1
    "$bin" card export --data-dir "$dir" --out "$dir.card" >/dev/null 2>&1
done
"$bin" peer add xb.card --fingerprint "$(fingerprint xb.card)" --data-dir xa >/dev/null
"$bin" peer add xa.card --fingerprint "$(fingerprint xa.card)" --data-dir xb >/dev/null
# XA has officials' accounts: a clerk, who may only draft an MLA request, and a prosecutor, who
# approves it. XB has none: its console is signed in with the node's own token.
"$bin" user add ana --role clerk --data-dir xa --token-out ana.token >/dev/null
"$bin" user add pablo --role issuing-authority --data-dir xa --token-out pablo.token >/dev/null
"$bin" user add vera --role auditor --data-dir xa --token-out vera.token >/dev/null
"$bin" keygen --agency XZ.AUDIT --name "Court-appointed auditor" --out auditor >/dev/null
# shellcheck source=tests/interop/node.sh
. "$root/tests/interop/node.sh"
urls=()
for dir in xa xb; do
    start_node "$dir" || { echo "FAIL: the node $dir did not start" >&2; exit 1; }
    pids+=("$node_pid")
    grep -q "^console on http://$node_api/" "$dir.log" || { echo "FAIL: $dir did not say where its console is" >&2; cat "$dir.log" >&2; exit 1; }
    urls+=("http://$node_api")
done
"$bin" console --data-dir xa --no-open > console.out
grep -q "^console on ${urls[0]}/$" console.out
echo "ok: rogatory run and rogatory console say where the console is: ${urls[0]}/"
"$venv/bin/python" "$root/tests/console/browser.py" "${urls[0]}" "${urls[1]}" \
    "$(cat ana.token)" "$(cat pablo.token)" "$(cat xb/api-token)" "$(cat vera.token)" "$work/auditor/card.cose"
