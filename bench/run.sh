#!/usr/bin/env bash
# Side-by-side benchmarks of issue 6, every figure against its anchor in one run:
#   (a) pipeline CPU time per picture      vs libvips (pyvips, best recipe)
#   (b) updateHeadImg throughput, 8 clients vs the bound the pipeline alone sets
#   (c) GET /mmhead/<id>/132 rps, 64 conns vs nginx serving the same files
#   (d) peak RSS, 32 × 12 MP updates at once vs 256 MiB
#   (e) getProfile p99 with 1 M accounts    vs with 1 k accounts
#   (f) server CPU per updateHeadImg of bytes already rendered vs a full render
#   (g) callbacks: injected messages delivered to a loopback receiver, 500/s
#       (absolute figures: rate, lost, commit → receiver latency; goal ≥ 500/s, p99 ≤ 50 ms)
# Writes docs/benchmarks/README.md and docs/benchmarks/chart.svg.
#
# Usage (root on Debian/Ubuntu; installs nginx, wrk, libvips, sqlite3 and a
# pyvips venv under target/bench/.venv):  bench/run.sh
# BENCH_QUICK=1 shortens every run (a smoke test of the script, not results).
# Loopback only; every load run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/target/bench
RESULTS=$WORK/results
QUICK=${BENCH_QUICK:-0}
GEWE_PORT=${BENCH_GEWE_PORT:-38531}
NGINX_PORT=${BENCH_NGINX_PORT:-38080}
if [ "$QUICK" = 1 ]; then
  ROUNDS=2 MIN_MS=200 LOAD_S=3 BIG_N=20000
else
  ROUNDS=5 MIN_MS=800 LOAD_S=15 BIG_N=1000000
fi
log() { printf '\n== %s\n' "$*" >&2; }

# ------------------------------------------------------------------ tools
need_apt=()
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
command -v curl >/dev/null || need_apt+=(curl)
pkg-config --exists vips 2>/dev/null || need_apt+=(libvips-dev)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
VENV=$WORK/.venv
if ! "$VENV/bin/python" -c 'import pyvips' 2>/dev/null; then
  log "pyvips venv"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r bench/requirements.txt
fi
command -v cargo >/dev/null || { echo "cargo (Rust toolchain) is required" >&2; exit 1; }

log "cargo build --release"
cargo build --release --locked --bin gewe --example bench_pipeline --example bench_inputs
GEWE=$ROOT/target/release/gewe
PIPE=$ROOT/target/release/examples/bench_pipeline

rm -rf "$RESULTS" "$WORK/data" "$WORK/nginx"
mkdir -p "$RESULTS" "$WORK/nginx/logs"

log "inputs"
"$ROOT/target/release/examples/bench_inputs" "$WORK/inputs" >&2
INPUTS=(photo-1080p.jpg photo-12mp.jpg alpha-2048.png)

# ------------------------------------------------------------------ (a)
for f in "${INPUTS[@]}"; do
  log "(a) $f: ours"
  "$PIPE" cpu "$WORK/inputs/$f" --rounds "$ROUNDS" --min-ms "$MIN_MS" \
    --out "$WORK/outputs/ours/$f" | tee "$RESULTS/a-ours-$f.json"
  # libvips' best: one thread (no pool hand-offs) and its default pool; the
  # lower CPU time is the anchor.
  for conc in 1 default; do
    log "(a) $f: libvips, concurrency $conc"
    env $([ "$conc" = 1 ] && echo VIPS_CONCURRENCY=1) "$VENV/bin/python" bench/vips_pipeline.py \
      "$WORK/inputs/$f" --rounds "$ROUNDS" --min-ms "$MIN_MS" --out "$WORK/outputs/vips/$f" \
      | tee "$RESULTS/a-vips$conc-$f.json"
  done
done

log "(a) floor: libjpeg-turbo entropy decoding of the 12 MP JPEG (jpegload shrink=8)"
VIPS_CONCURRENCY=1 "$VENV/bin/python" bench/vips_pipeline.py "$WORK/inputs/photo-12mp.jpg" \
  --rounds "$ROUNDS" --min-ms "$MIN_MS" --decode-only 8 | tee "$RESULTS/a-floor.json"

# ------------------------------------------------------------------ servers
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

DATA=$WORK/data
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 60s;
  types { image/jpeg jpg; image/png png; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /inputs/  { root $WORK; }
    location /avatars/ { root $DATA/blobs; }
  }
}
EOF
log "nginx on 127.0.0.1:$NGINX_PORT"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# A data dir with a token, one real (default) avatar and N accounts inserted in
# bulk straight into SQLite, all pointing at that avatar.
seed() { # dir count
  local dir=$1 n=$2
  rm -rf "$dir"
  "$GEWE" token create --label bench --data-dir "$dir" >"$dir.token"
  GEWE_TOKEN="$(cat "$dir.token")" "$GEWE" account create --data-dir "$dir" >/dev/null
  sqlite3 "$dir/gewe.db" <<SQL
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $n)
INSERT INTO accounts (app_id, token_id, wxid, nick_name, alias, mobile, uin, sex, province,
  city, signature, country, reg_country, sns_bg_img, avatar_id, created_at, updated_at)
SELECT printf('wx_bench%013d', i), (SELECT id FROM tokens LIMIT 1), printf('wxid_bench%013d', i),
  printf('用户%d', i), '', '', i, i % 3, 'Guangdong', 'Shenzhen', '', 'CN', 'CN', '',
  (SELECT avatar_id FROM accounts LIMIT 1), 1700000000, 1700000000 FROM n;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
}

GEWE_PID=
start_gewe() { # dir
  # Request logging off, as nginx's access_log: both sides serve, neither writes logs.
  RUST_LOG=warn GEWE_FETCH_ALLOW_NETS=127.0.0.0/8 "$GEWE" serve --data-dir "$1" \
    --listen "127.0.0.1:$GEWE_PORT" 2>>"$WORK/gewe.log" &
  GEWE_PID=$!
  PIDS+=("$GEWE_PID")
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$GEWE_PORT/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "gewe did not start" >&2
  exit 1
}
stop_gewe() {
  kill "$GEWE_PID"
  wait "$GEWE_PID" 2>/dev/null || true
}

for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$NGINX_PORT/inputs/photo-1080p.jpg" -o /dev/null && break
  sleep 0.1
done

export BENCH_LUA_DIR=$ROOT/bench/wrk
wrk_post() { # out path pattern count round_robin body check conns secs
  BENCH_APPID_PATTERN=$3 BENCH_APPID_COUNT=$4 BENCH_ROUND_ROBIN=$5 BENCH_BODY=$6 \
    BENCH_CHECK_RET=$7 BENCH_TOKEN=$TOKEN \
    wrk -t2 -c"$8" -d"$9"s --timeout 30s -s bench/wrk/post.lua \
    "http://127.0.0.1:$GEWE_PORT$2" | tail -n 1 | tee "$RESULTS/$1.json"
}

# ------------------------------------------------------------------ (b)
seed "$DATA" 32
TOKEN=$(cat "$DATA.token")
start_gewe "$DATA"
PIC=http://127.0.0.1:$NGINX_PORT/inputs/photo-1080p.jpg
log "(b) pipeline alone: 2 threads (= decode slots = cores), 1080p"
"$PIPE" throughput "$WORK/inputs/photo-1080p.jpg" --threads "$(nproc)" --secs "$LOAD_S" \
  | tee "$RESULTS/b-bound.json"
log "(b) updateHeadImg, 8 clients, picture from nginx"
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) / t }' "/proc/$GEWE_PID/stat"; }
cpu0=$(cpu_s)
wrk_post b-server /gewe/v2/api/personal/updateHeadImg 'wx_bench%013d' 8 1 \
  "{\"appId\":\"%s\",\"headImgUrl\":\"$PIC\"}" 1 8 "$LOAD_S"
echo "{\"server_cpu_s\": $(awk "BEGIN { print $(cpu_s) - $cpu0 }")}" | tee "$RESULTS/b-cpu.json"

# ------------------------------------------------------------------ (c)
AVATAR=$(sqlite3 "$DATA/gewe.db" "SELECT avatar_id FROM accounts WHERE app_id = 'wx_bench0000000000001'")
curl -fs "http://127.0.0.1:$GEWE_PORT/mmhead/$AVATAR/132" -o "$WORK/ours-132.jpg"
curl -fs "http://127.0.0.1:$NGINX_PORT/avatars/$AVATAR/132.jpg" -o "$WORK/nginx-132.jpg"
cmp "$WORK/ours-132.jpg" "$WORK/nginx-132.jpg"
for side in gewe nginx; do
  if [ $side = gewe ]; then url=http://127.0.0.1:$GEWE_PORT/mmhead/$AVATAR/132
  else url=http://127.0.0.1:$NGINX_PORT/avatars/$AVATAR/132.jpg; fi
  log "(c) $side: GET $url, 64 connections"
  BENCH_CHECK_RET=0 wrk -t2 -c64 -d"$LOAD_S"s -s bench/wrk/report.lua "$url" | tail -n 1 \
    | tee "$RESULTS/c-$side.json"
done
stop_gewe

# ------------------------------------------------------------------ (d)
log "(d) 32 updates of a 12 MP picture at once, fresh server"
start_gewe "$DATA"
sleep 0.5
rss_kib() { awk "/^$1:/ {print \$2}" "/proc/$GEWE_PID/status"; }
BASE=$(rss_kib VmRSS)
PIC=http://127.0.0.1:$NGINX_PORT/inputs/photo-12mp.jpg
rm -f "$WORK"/d-*.json
started=$EPOCHREALTIME
CURLS=()
for i in $(seq 32); do
  curl -fs --max-time 60 "http://127.0.0.1:$GEWE_PORT/gewe/v2/api/personal/updateHeadImg" \
    -H "X-GEWE-TOKEN: $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"appId\":\"$(printf 'wx_bench%013d' "$i")\",\"headImgUrl\":\"$PIC\"}" \
    -o "$WORK/d-$i.json" &
  CURLS+=($!)
done
wait "${CURLS[@]}" || true
secs=$(awk "BEGIN { print $EPOCHREALTIME - $started }")
ok=$(grep -l '"ret":200' "$WORK"/d-*.json 2>/dev/null | wc -l)
echo "{\"peak_rss_kib\": $(rss_kib VmHWM), \"idle_rss_kib\": $BASE, \"ok\": $ok, \"of\": 32, \"secs\": $secs}" \
  | tee "$RESULTS/d.json"
stop_gewe

# ------------------------------------------------------------------ (e)
for n in 1000 "$BIG_N"; do
  log "(e) getProfile p99 with $n accounts"
  seed "$WORK/data-$n" "$n"
  TOKEN=$(cat "$WORK/data-$n.token")
  start_gewe "$WORK/data-$n"
  wrk_post "e-$n" /gewe/v2/api/personal/getProfile 'wx_bench%013d' "$n" 0 \
    '{"appId":"%s"}' 1 8 "$LOAD_S"
  stop_gewe
done

# ------------------------------------------------------------------ (f)
for f in photo-1080p.jpg photo-12mp.jpg; do
  log "(f) $f: updateHeadImg of bytes already rendered vs a full render (server CPU)"
  BENCH_ROUNDS=$ROUNDS bench/resend.sh "$GEWE" "$WORK/inputs/$f" "$RESULTS/f-$f.json"
done

# ------------------------------------------------------------------ (g)
log "(g) callbacks: messages injected at 500/s, delivered to a loopback receiver"
/usr/bin/python3 bench/callbacks.py "$GEWE" --rate 500 --seconds "$([ "$QUICK" = 1 ] && echo 5 || echo 60)" \
  | tee "$RESULTS/g-callbacks.json"

# ------------------------------------------------------------------ report
log "report"
BENCH_BIG_N=$BIG_N "$VENV/bin/python" bench/report.py "$RESULTS" docs/benchmarks
