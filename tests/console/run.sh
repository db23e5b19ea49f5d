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
# shellcheck source=tests/interop/node.sh
. "$root/tests/interop/node.sh"
venv_ready 'import selenium' -r "$root/tests/console/requirements.txt"

scratch
cd "$work"

export ROGATORY_PASSPHRASE="console check passphrase"
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
