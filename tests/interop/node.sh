# Sourced by the interop, statistics and console scripts (they set $bin to the rogatory binary,
# and $venv to the virtualenv).

# venv_ready CHECK PIP-ARGS…: creates the virtualenv $venv if it is missing, and installs
# PIP-ARGS into it unless `python -c CHECK` already succeeds there.
venv_ready() {
    local check=$1
    shift
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -c "$check" 2>/dev/null ||
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

# scratch: a temporary directory, $work, removed at exit once the processes in $pids are
# stopped.
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
scratch() {
    work=$(mktemp -d)
    trap cleanup EXIT
}

# port: a free TCP port on 127.0.0.1. fingerprint CARD: a card's fingerprint.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fingerprint() { "$bin" card show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])'; }
#
# start_node DIR [listening]: starts `rogatory run --data-dir DIR` in the background, its output
# in DIR.log, and waits for the lines a node prints once it is up — each within 60 s — reading
# them as they come (a FIFO, no polling): `api on ADDR`, `… running as peer ID`, and with
# `listening`, its first `listening on MULTIADDR`. Sets node_pid, node_api, node_peer and
# node_addr; on failure stops the node, prints its log and returns 1.
start_node() {
    local dir=$1 want_addr=${2:-} line fd
    node_api= node_peer= node_addr=
    rm -f "$dir.out"
    mkfifo "$dir.out"
    "$bin" run --data-dir "$dir" > "$dir.out" 2>&1 &
    node_pid=$!
    exec {fd}<"$dir.out"
    while IFS= read -r -t 60 line <&"$fd"; do
        printf '%s\n' "$line" >> "$dir.log"
        case $line in
            "api on "*) node_api=${line#api on } ;;
            *" running as peer "*) node_peer=${line##* } ;;
            "listening on "*) [ -n "$node_addr" ] || node_addr=${line#listening on } ;;
        esac
        if [ -n "$node_api" ] && [ -n "$node_peer" ] && { [ -z "$want_addr" ] || [ -n "$node_addr" ]; }; then
            break
        fi
    done
    # The rest of its output keeps flowing to the log, so the node never blocks on the pipe.
    cat <&"$fd" >> "$dir.log" &
    exec {fd}<&-
    if [ -z "$node_api" ] || [ -z "$node_peer" ] || { [ -n "$want_addr" ] && [ -z "$node_addr" ]; }; then
        kill "$node_pid" 2>/dev/null || true
        echo "the node $dir did not start:" >&2
        cat "$dir.log" >&2
        return 1
    fi
}
