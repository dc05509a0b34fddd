#!/usr/bin/env bash
# Issue 15, "a picture sent again (same bytes) ≤ 0.05× of a full render",
# measured in situ: the running `gewe serve`'s own CPU time (user + system of
# all its threads, /proc/<pid>/stat) per updateHeadImg of
#   - a full render: bytes the server has never seen (the picture with a few
#     distinct bytes after its end-of-image marker, so every copy hashes
#     differently but decodes to the same pixels), and
#   - the same bytes again: pictures it already rendered (two of them, sent in
#     turn, so every update is a real change that appends history),
# each fetched from a loopback HTTP server, after two warm-up updates, in
# ROUNDS rounds (min/median/max reported).
#
# usage: bench/resend.sh GEWE_BINARY PICTURE OUT_JSON
# env:   BENCH_ROUNDS (5), BENCH_FULL_N (20 renders a round), BENCH_AGAIN_N (100)
# Loopback only; needs curl and python3 (http.server).
set -euo pipefail
GEWE=$1 PICTURE=$2 OUT=$3
ROUNDS=${BENCH_ROUNDS:-5}
FULL_N=${BENCH_FULL_N:-20}
AGAIN_N=${BENCH_AGAIN_N:-100}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gewe-resend.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Distinct copies: the picture, then "#<n>" after its last byte.
mkdir -p "$WORK/pics"
copies=$(( 2 + ROUNDS * FULL_N + 2 ))
for n in $(seq "$copies"); do
  { cat "$PICTURE"; printf '#%08d' "$n"; } >"$WORK/pics/$n.jpg"
done
PIC_PORT=$(free_port)
python3 -m http.server "$PIC_PORT" --bind 127.0.0.1 --directory "$WORK/pics" \
  >/dev/null 2>&1 &
PIDS+=($!)

DATA=$WORK/data
TOKEN=$("$GEWE" --data-dir "$DATA" token create --label bench)
APPID=$("$GEWE" --data-dir "$DATA" account create --token "$TOKEN")
PORT=$(free_port)
RUST_LOG=warn GEWE_FETCH_ALLOW_NETS=127.0.0.0/8 "$GEWE" --data-dir "$DATA" serve \
  --listen "127.0.0.1:$PORT" 2>>"$WORK/gewe.log" &
GEWE_PID=$!
PIDS+=("$GEWE_PID")
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$PIC_PORT/1.jpg" -o /dev/null && break
  sleep 0.1
done

update() { # copy number
  local answer
  answer=$(curl -fs --max-time 60 "http://127.0.0.1:$PORT/gewe/v2/api/personal/updateHeadImg" \
    -H "X-GEWE-TOKEN: $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"appId\":\"$APPID\",\"headImgUrl\":\"http://127.0.0.1:$PIC_PORT/$1.jpg\"}")
  case $answer in
    *'"ret":200'*) ;;
    *) echo "updateHeadImg $1.jpg failed: $answer" >&2; exit 1 ;;
  esac
}
cpu_ms() { awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / t }' "/proc/$GEWE_PID/stat"; }

# Warm-up: two full renders; these two are the pictures sent again below.
update 1
update 2
next=3
full=() again=()
for _ in $(seq "$ROUNDS"); do
  c0=$(cpu_ms)
  for _ in $(seq "$FULL_N"); do update "$next"; next=$((next + 1)); done
  c1=$(cpu_ms)
  for i in $(seq "$AGAIN_N"); do update $(( 1 + i % 2 )); done
  c2=$(cpu_ms)
  full+=("$(awk "BEGIN { print ($c1 - $c0) / $FULL_N }")")
  again+=("$(awk "BEGIN { print ($c2 - $c1) / $AGAIN_N }")")
done

python3 - "$OUT" "$PICTURE" "${full[*]}" "${again[*]}" <<'PY'
import json, statistics, sys
out, picture, full, again = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
full = [float(x) for x in full.split()]
again = [float(x) for x in again.split()]
ratios = [a / f for a, f in zip(again, full)]
result = {
    "picture": picture,
    "full_render_cpu_ms": full,
    "sent_again_cpu_ms": again,
    "ratio_per_round": ratios,
    "full_render_median_ms": statistics.median(full),
    "sent_again_median_ms": statistics.median(again),
    "ratio_median": statistics.median(again) / statistics.median(full),
}
with open(out, "w") as f:
    json.dump(result, f, indent=1)
print(json.dumps(result))
PY
