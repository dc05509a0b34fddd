#!/usr/bin/env bash
# Issue 15's headline rows 1–4, measured in situ: the running `gewe serve`'s own
# CPU time (user + system of all its threads, /proc/<pid>/stat) per
# updateHeadImg, for each picture given,
#   - a full render: bytes the server has never seen (the picture with a few
#     distinct bytes after its end — after a JPEG's end-of-image marker, after a
#     PNG's IEND chunk — so every copy hashes differently but decodes to the
#     same pixels), and
#   - the same bytes again: the two copies it already rendered (the two warm-up
#     updates; same pixels, so one avatar, the account's), sent in turn, each
#     needing no render: from their URLs, whose server answers 304 to the ETag
#     it gave (as nginx does; nothing to write either), and from URLs of the
#     same bytes that send no ETag (downloaded and hashed each time, the URL's
#     source recorded),
# each fetched from a loopback HTTP server (bench/pictures.py), after two
# warm-up updates, in ROUNDS rounds (min/median/max reported). One server, one
# account per picture; the full-render figure of a picture is the anchor of its
# "sent again" figure. With BENCH_VIPS_PYTHON (a Python with pyvips), every
# round also times libvips' pipeline on the picture right after the round's
# full renders (bench/vips_pipeline.py, one thread and its default pool, one
# round of BENCH_MIN_MS each), so each round's ratio compares the two in the
# same state of the machine, whose speed drifts by tens of percent here.
#
# usage: bench/insitu.sh GEWE_BINARY OUT_DIR PICTURE...
#        writes OUT_DIR/insitu-<picture file name>.json
# env:   BENCH_ROUNDS (5), BENCH_FULL_N (20 renders a round), BENCH_AGAIN_N (100),
#        BENCH_VIPS_PYTHON (unset: no libvips rounds), BENCH_MIN_MS (800)
# Loopback only; needs curl and python3.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
GEWE=$1 OUT_DIR=$2
shift 2
ROUNDS=${BENCH_ROUNDS:-5}
FULL_N=${BENCH_FULL_N:-20}
AGAIN_N=${BENCH_AGAIN_N:-100}
VIPS_PYTHON=${BENCH_VIPS_PYTHON:-}
MIN_MS=${BENCH_MIN_MS:-800}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gewe-insitu.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$WORK/pics"
for picture in "$@"; do ln -s "$(realpath "$picture")" "$WORK/pics/"; done
python3 "$BENCH/pictures.py" "$WORK/pics" >"$WORK/pictures.port" &
PIDS+=($!)
for _ in $(seq 50); do
  PIC_PORT=$(cat "$WORK/pictures.port" 2>/dev/null || true)
  [ -n "$PIC_PORT" ] && break
  sleep 0.1
done

DATA=$WORK/data
TOKEN=$("$GEWE" token create --label bench --data-dir "$DATA")
PORT=$(free_port)
# Downloads up to 16 MiB: the 2048² PNG with alpha is 11 MB, past the default 10 MiB.
RUST_LOG=warn GEWE_FETCH_ALLOW_NETS=127.0.0.0/8 GEWE_FETCH_MAX_BYTES=$((16 << 20)) \
  "$GEWE" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" 2>>"$WORK/gewe.log" &
GEWE_PID=$!
PIDS+=("$GEWE_PID")
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done

update() { # app_id url
  local answer
  answer=$(curl -fs --max-time 60 "http://127.0.0.1:$PORT/gewe/v2/api/personal/updateHeadImg" \
    -H "X-GEWE-TOKEN: $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"appId\":\"$1\",\"headImgUrl\":\"$2\"}")
  case $answer in
    *'"ret":200'*) ;;
    *) echo "updateHeadImg $2 failed: $answer" >&2; exit 1 ;;
  esac
}
cpu_ms() { awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / t }' "/proc/$GEWE_PID/stat"; }

vips_ms() { # concurrency (1 or default): libvips' CPU ms per picture, one round
  env $([ "$1" = 1 ] && echo VIPS_CONCURRENCY=1) "$VIPS_PYTHON" "$BENCH/vips_pipeline.py" \
    "$picture" --rounds 1 --min-ms "$MIN_MS" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["cpu_ms"])'
}

url() { echo "http://127.0.0.1:$PIC_PORT/$1/${picture##*/}"; } # copy number, of $picture
plain_url() { echo "http://127.0.0.1:$PIC_PORT/plain/$1/${picture##*/}"; } # the same, no ETag

for picture in "$@"; do
  app_id=$(GEWE_TOKEN=$TOKEN "$GEWE" account create --data-dir "$DATA")
  # Warm-up: two full renders; these two are the pictures sent again below.
  update "$app_id" "$(url 1)"
  update "$app_id" "$(url 2)"
  next=3
  full=() again=() plain=() vips1=() vipsdefault=()
  for _ in $(seq "$ROUNDS"); do
    c0=$(cpu_ms)
    for _ in $(seq "$FULL_N"); do update "$app_id" "$(url "$next")"; next=$((next + 1)); done
    c1=$(cpu_ms)
    if [ -n "$VIPS_PYTHON" ]; then
      vips1+=("$(vips_ms 1)")
      vipsdefault+=("$(vips_ms default)")
      c1=$(cpu_ms)
    fi
    for i in $(seq "$AGAIN_N"); do update "$app_id" "$(url $(( 1 + i % 2 )))"; done
    c2=$(cpu_ms)
    for i in $(seq "$AGAIN_N"); do update "$app_id" "$(plain_url $(( 1 + i % 2 )))"; done
    c3=$(cpu_ms)
    full+=("$(awk "BEGIN { print ($c1 - $c0) / $FULL_N }")")
    again+=("$(awk "BEGIN { print ($c2 - $c1) / $AGAIN_N }")")
    plain+=("$(awk "BEGIN { print ($c3 - $c2) / $AGAIN_N }")")
  done
  python3 - "$OUT_DIR/insitu-${picture##*/}.json" "$picture" "${full[*]}" "${again[*]}" \
    "${plain[*]}" "${vips1[*]}" "${vipsdefault[*]}" <<'PY'
import json, statistics, sys
out, picture = sys.argv[1], sys.argv[2]
full, again, plain, vips1, vipsdefault = (
    [float(x) for x in arg.split()] for arg in sys.argv[3:8])
result = {
    "picture": picture,
    "full_render_cpu_ms": full,
    "sent_again_cpu_ms": again,
    "sent_again_no_etag_cpu_ms": plain,
    "ratio_per_round": [a / f for a, f in zip(again, full)],
    "ratio_no_etag_per_round": [p / f for p, f in zip(plain, full)],
    "full_render_median_ms": statistics.median(full),
    "sent_again_median_ms": statistics.median(again),
    "sent_again_no_etag_median_ms": statistics.median(plain),
    "ratio_median": statistics.median(again) / statistics.median(full),
    "ratio_no_etag_median": statistics.median(plain) / statistics.median(full),
}
if vips1:
    # Each round's anchor: the better of libvips' two configurations in that round.
    anchor = [min(one, pool) for one, pool in zip(vips1, vipsdefault)]
    result.update({
        "vips1_cpu_ms": vips1,
        "vipsdefault_cpu_ms": vipsdefault,
        "vips_anchor_cpu_ms": anchor,
        "vips_ratio_per_round": [f / a for f, a in zip(full, anchor)],
        "vips_ratio_median": statistics.median(f / a for f, a in zip(full, anchor)),
    })
with open(out, "w") as f:
    json.dump(result, f, indent=1)
print(json.dumps(result))
PY
done
