#!/usr/bin/env bash
# Three agencies in containers (compose.yaml): set up, pinned to each other, started, and an MLA
# request from XA to XB delivered with its signed receipt. Needs docker (with compose) or podman
# (with podman-compose); run from anywhere: ./deploy/compose/exchange.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
engine="${CONTAINER_ENGINE:-$(command -v docker || command -v podman || true)}"
[ -n "$engine" ] || { echo "no docker or podman on this machine" >&2; exit 1; }
image="${ROGATORY_IMAGE:-rogatory:0.1}"
export ROGATORY_IMAGE="$image"
compose() { "$engine" compose -f "$here/compose.yaml" "$@"; }

if ! "$engine" image inspect "$image" >/dev/null 2>&1; then
    if [ "$(basename "$engine")" = podman ]; then
        "$engine" build -f "$top/deploy/container/Containerfile" \
            --ignorefile "$top/deploy/container/Containerfile.dockerignore" -t "$image" "$top"
    else
        "$engine" build -f "$top/deploy/container/Containerfile" -t "$image" "$top"
    fi
fi

# A passphrase per agency, as a secret file (never an environment variable). The directory is
# closed to the machine's other users; the files are readable by the node's user in the
# container (uid 65532), to which compose hands them as they are.
mkdir -p "$here/secrets" && chmod 700 "$here/secrets"
for a in xa xb xc; do
    [ -s "$here/secrets/$a-passphrase" ] || head -c 24 /dev/urandom | base64 > "$here/secrets/$a-passphrase"
    chmod 644 "$here/secrets/$a-passphrase"
done

# `rogatory …` in a one-shot container on agency $1's volume, with its passphrase.
run() {
    local a="$1"; shift
    "$engine" run --rm -v "rogatory-three_$a-data:/data" \
        -v "$here/secrets/$a-passphrase:/run/secrets/passphrase:ro" \
        -v "$here/cards:/cards" --entrypoint /usr/local/bin/rogatory \
        "$image" "$@" --passphrase-file /run/secrets/passphrase
}

# Cards are public: the one-shot containers (uid 65532) write them here for the others.
mkdir -p "$here/cards" && chmod 1777 "$here/cards"
cp "$top/spec/examples/mla-request.json" "$here/cards/"
declare -A ids=([xa]=XA.MOJ-CA [xb]=XB.DOJ-CA [xc]=XC.POLICE)
declare -A ips=([xa]=172.28.0.11 [xb]=172.28.0.12 [xc]=172.28.0.13)
for a in xa xb xc; do
    run "$a" init --agency "${ids[$a]}" --name "${ids[$a]} (fictional)" --data-dir /data \
        --listen "/ip4/${ips[$a]}/tcp/4100" --listen "/ip4/${ips[$a]}/udp/4100/quic-v1"
    run "$a" card export --data-dir /data --out "/cards/$a.card"
done
# Each pins the other two. Here the fingerprints are read from the cards themselves; between
# real agencies they are read out over another channel (docs/operating.md).
for a in xa xb xc; do
    for b in xa xb xc; do
        [ "$a" = "$b" ] && continue
        fp="$(run "$a" card show "/cards/$b.card" --json | grep -o '"fingerprint": *"[^"]*"' | head -1 | cut -d'"' -f4)"
        run "$a" peer add "/cards/$b.card" --fingerprint "$fp" --data-dir /data
    done
done
# (Each volume was filled from the image's /data on first use: owned by uid 65532, mode 0700.)

compose up -d
sleep 5
compose exec -T xa rogatory send --to XB.DOJ-CA --case new --type mla-request \
    --body /cards/mla-request.json --data-dir /data
for _ in $(seq 60); do
    if compose exec -T xa rogatory outbox --data-dir /data | grep -q delivered; then
        compose exec -T xa rogatory outbox --data-dir /data
        compose exec -T xb rogatory inbox --data-dir /data
        echo "ok: XA's request reached XB and XB's signed receipt is recorded at XA"
        exit 0
    fi
    sleep 2
done
echo "the request was not delivered within 120 s" >&2
compose logs >&2
exit 1
