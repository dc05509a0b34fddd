"""Turns bench/run.sh's JSON results into docs/benchmarks/README.md and chart.svg.

usage: report.py RESULTS_DIR OUT_DIR   (python stdlib only)
"""

import glob
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone

res_dir, out_dir = sys.argv[1], sys.argv[2]


def load(name):
    with open(os.path.join(res_dir, name + ".json")) as f:
        return json.load(f)


run = load("run")  # the run's sizes and length; not a name to reuse below
# When the measuring ended (run.json is the run's last result), not when this
# report was made: a report regenerated later still dates its figures.
run_ended = datetime.fromtimestamp(os.path.getmtime(os.path.join(res_dir, "run.json")), timezone.utc)
big_n, grow_n, small_journal = run["big_n"], run["grow_n"], run["small_journal"]
again_n = run.get("again_n", 100)


def repeats(prefix):
    """The results prefix-1, prefix-2, … in order."""
    paths = glob.glob(os.path.join(res_dir, prefix + "-*.json"))
    numbered = sorted(paths, key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))
    return [json.load(open(p)) for p in numbered]


def sh(cmd):
    try:
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - description only
        return "?"


def spread(values, fmt="{:.2f}"):
    """min / median / max, or the one value."""
    if len(values) < 2:
        return "one run"
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values))) \
        + f" ({len(values)})"


class Row:
    """One figure: ratio is ours against the anchor, judged against target
    (lower_is_better: ratio ≤ target, else ratio ≥ target)."""

    def __init__(self, key, figure, ours, anchor, ratio, target, lower, met=True, noise="one run",
                 goal=None):
        self.key, self.figure, self.ours, self.anchor = key, figure, ours, anchor
        self.ratio, self.target, self.lower, self.noise = ratio, target, lower, noise
        within = ratio <= target if lower else ratio >= target
        self.met = within and met
        self.goal = goal or f"{'≤' if lower else '≥'} {target:g}×"

    @property
    def ratio_text(self):
        return f"{self.ratio:.3f}×" if self.ratio < 0.1 else f"{self.ratio:.2f}×"


names = {
    "photo-1080p.jpg": "1080p JPEG (1920×1080)",
    "photo-12mp.jpg": "12 MP JPEG (4000×3000)",
    "alpha-2048.png": "2048² PNG with alpha",
}
short = {"photo-1080p.jpg": "1080p", "photo-12mp.jpg": "12 MP", "alpha-2048.png": "PNG"}

# libvips' pipeline per picture: the better of one thread and its default pool.
vips_best = {}
for f in names:
    vips = [load(f"a-vips{c}-{f}") for c in ("1", "default")]
    best = min(vips, key=lambda v: v["cpu_ms"])
    vips_best[f] = (best, "1 thread" if best is vips[0] else "default pool")

# ---------------------------------------------------------------- headline (issue 15)
head = []
goals_insitu = {"photo-1080p.jpg": 0.35, "photo-12mp.jpg": 0.6, "alpha-2048.png": 0.25}
insitu = {f: load(f"insitu-{f}") for f in names}
for n, (f, label) in enumerate(names.items(), start=1):
    measured = insitu[f]
    ours = measured["full_render_median_ms"]
    # Each round's renders against libvips timed right after them (the better
    # of its two configurations in that round).
    anchor = statistics.median(measured["vips_anchor_cpu_ms"])
    head.append(Row(
        str(n), f"server CPU per updateHeadImg, {label}",
        f"{ours:.1f} ms",
        f"{anchor:.1f} ms (libvips pipeline, timed in each round)",
        measured["vips_ratio_median"], goals_insitu[f], True,
        noise=spread(measured["vips_ratio_per_round"])))

worst = max(names, key=lambda f: insitu[f]["ratio_median"])
head.append(Row(
    "4", "a picture sent again (same bytes): server CPU per updateHeadImg",
    ", ".join(f"{short[f]} {insitu[f]['sent_again_median_ms']:.2f} ms "
              f"({insitu[f]['ratio_median']:.3f}×)" for f in names)
    + "; from a server sending no ETag (downloaded and hashed): "
    + ", ".join(f"{short[f]} {insitu[f]['sent_again_no_etag_median_ms']:.2f} ms "
                f"({insitu[f]['ratio_no_etag_median']:.3f}×)" for f in names),
    ", ".join(f"{short[f]} {insitu[f]['full_render_median_ms']:.1f} ms" for f in names)
    + " (its full render, rows 1–3)",
    insitu[worst]["ratio_median"], 0.05, True,
    noise=f"{short[worst]}: " + spread(insitu[worst]["ratio_per_round"], "{:.3f}")))

mm = list(zip(repeats("mmhead-gewe"), repeats("mmhead-nginx")))
mm_ratios = [g["rps"] / x["rps"] for g, x in mm]
head.append(Row(
    "5", "`GET /mmhead/<id>/132` req/s, wrk 64 connections",
    f"{statistics.median(g['rps'] for g, _ in mm):.0f}/s "
    f"(p99 {statistics.median(g['p99_ms'] for g, _ in mm):.2f} ms)",
    f"{statistics.median(x['rps'] for _, x in mm):.0f}/s (nginx, same file, "
    f"p99 {statistics.median(x['p99_ms'] for _, x in mm):.2f} ms)",
    statistics.median(mm_ratios), 1.0, False,
    met=all(g["failed"] == 0 for g, _ in mm), noise=spread(mm_ratios)))

rss = repeats("rss")
peaks = [r["peak_rss_kib"] / 1024 for r in rss]
head.append(Row(
    "6", "peak RSS, 32 concurrent 12 MP updates",
    f"{statistics.median(peaks):.0f} MiB ({min(r['ok'] for r in rss)}/32 ok, "
    f"{statistics.median(float(r['secs']) for r in rss):.1f} s)",
    "128 MiB (the budget)", statistics.median(peaks) / 128, 1.0, True,
    met=all(r["ok"] == r["of"] for r in rss), noise=spread(peaks, "{:.0f} MiB"),
    goal="≤ 128 MiB"))

cb = load("callbacks")
windows = cb["window_rates"] or [cb["delivery_rate"]]
head.append(Row(
    "7a", f"callbacks delivered, injected at {cb['target_rate']:.0f}/s for {cb['seconds']:.0f} s",
    f"{min(windows):.0f}/s in the slowest {cb['window_s']:g} s window ({cb['delivery_rate']:.0f}/s "
    f"overall), {cb['delivered']}/{cb['injected']} delivered, {cb['lost']} lost, "
    f"{cb['duplicated']} duplicated",
    "500/s (absolute)", min(windows) / 500, 0.98, False,
    met=cb["lost"] == 0 and cb["inject_errors"] == 0 and cb["seconds"] >= 60,
    noise=spread(windows, "{:.0f}/s"),
    goal=f"≥ 500/s for 60 s (each {cb['window_s']:g} s window ≥ 490/s), 0 lost"))
lat = cb["latency_ms"]
head.append(Row(
    "7b", "callbacks: commit → receiver latency, p99",
    f"{lat['p99']} ms (p50 {lat['p50']}, max {lat['max']})",
    "50 ms (absolute)", (lat["p99"] or float("inf")) / 50, 1.0, True, goal="≤ 50 ms"))

for key, kind, label, budget in (("8a", "cached", "cards rendered before", 5),
                                 ("8b", "uncached", "accounts asking for the first time", 30)):
    runs = repeats(f"qr-{kind}")
    p99 = statistics.median(r["p99_ms"] for r in runs)
    head.append(Row(
        key, f"personal/getQrCode p99, {kind} ({label}), 4 connections",
        f"{p99:.2f} ms (p50 {statistics.median(r['p50_ms'] for r in runs):.2f} ms, "
        f"{statistics.median(r['rps'] for r in runs):.0f}/s)",
        f"{budget} ms (absolute)", p99 / budget, 1.0, True,
        met=all(r["failed"] == 0 and r["socket_errors"] == 0 for r in runs),
        noise="p99: " + spread([r["p99_ms"] for r in runs], "{:.2f} ms"), goal=f"≤ {budget} ms"))

console = load("console")
slowest = max(console, key=lambda page: console[page]["p99_ms"])
head.append(Row(
    "9", "`/console` accounts grid, 1 000 accounts: time per page (loopback client, keep-alive)",
    "; ".join(f"{page} ({c['answered']} tiles): p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms"
              for page, c in console.items()),
    "50 ms (absolute)", console[slowest]["p99_ms"] / 50, 1.0, True, goal="p99 ≤ 50 ms",
    noise=f"{slowest} p50: " + spread(console[slowest]["repeat_p50_ms"], "{:.1f} ms")))

empty, full = load("outbox-empty"), load("outbox-full")
head.append(Row(
    "10a", f"growth: callback delivery rate with {grow_n:,} delivered events in the outbox "
    "(time per event)",
    f"{full['delivery_rate']:.0f}/s (p99 {full['latency_ms']['p99']} ms, {full['lost']} lost)",
    f"{empty['delivery_rate']:.0f}/s with an empty outbox (p99 {empty['latency_ms']['p99']} ms)",
    empty["delivery_rate"] / max(full["delivery_rate"], 1e-9), 1.2, True,
    met=full["lost"] == 0 and empty["lost"] == 0,
    noise="windows, full vs empty median: " + spread(
        [statistics.median(empty["window_rates"] or [empty["delivery_rate"]]) / max(w, 1e-9)
         for w in (full["window_rates"] or [full["delivery_rate"]])])))

journal = load("journal")
small, big = journal["anchor"], journal["ours"]
ratios = {q: big[q]["p50_ms"] / small[q]["p50_ms"] for q in big}
worst_q = max(ratios, key=ratios.get)
head.append(Row(
    "10b", f"growth: `/operator/journal` queries with {grow_n:,} rows (p50, worst query)",
    f"{worst_q}: {big[worst_q]['p50_ms']:.2f} ms; every query: "
    + ", ".join(f"{q} {ratios[q]:.2f}×" for q in big),
    f"{small[worst_q]['p50_ms']:.2f} ms with {small_journal:,} rows",
    ratios[worst_q], 1.2, True,
    met=all(big[q]["answered"] == small[q]["answered"] for q in big),
    noise=f"{worst_q}, ratio of each repeat's p50s: " + spread(
        [b / s for b, s in zip(big[worst_q]["repeat_p50_ms"], small[worst_q]["repeat_p50_ms"])])))

# ---------------------------------------------------------------- issue 6
older = []
sizes = []
for f, label in names.items():
    ours = load(f"a-ours-{f}")
    vips, which = vips_best[f]
    older.append(Row(
        f"a {short[f]}", f"pipeline CPU per picture in a loop, {label}",
        f"{ours['cpu_ms']:.1f} ms", f"{vips['cpu_ms']:.1f} ms (libvips, {which})",
        ours["cpu_ms"] / vips["cpu_ms"], 0.5, True,
        noise=spread([ms / vips["cpu_ms"] for ms in ours.get("rounds_cpu_ms", [])])))
    sizes.append((label, ours["bytes"], vips["bytes"],
                  load(f"a-vips1-{f}")["cpu_ms"], load(f"a-vipsdefault-{f}")["cpu_ms"]))

bound, server = load("b-bound"), load("b-server")
ok = server["requests"] - server["failed"]
ok_rps = ok / server["duration_s"]
# CPU per update, not wall-clock rates: the machine is shared, and wall rates
# follow other people's load.
server_cpu_ms = load("b-cpu")["server_cpu_s"] * 1e3 / max(ok, 1)
cores = os.cpu_count()
older.append(Row(
    "b", "updateHeadImg, 8 clients, 1080p (new bytes each time): capacity (CPU per update)",
    f"{server_cpu_ms:.1f} ms CPU/update = {cores * 1e3 / server_cpu_ms:.0f}/s on {cores} cores "
    f"(measured {ok_rps:.1f}/s, {server['failed']} failed, p99 {server['p99_ms']:.0f} ms)",
    f"{bound['cpu_ms_per_picture']:.1f} ms CPU/picture = "
    f"{cores * 1e3 / bound['cpu_ms_per_picture']:.0f}/s (pipeline alone; measured "
    f"{bound['pictures_per_s']:.1f}/s)",
    bound["cpu_ms_per_picture"] / server_cpu_ms, 0.8, False, met=server["failed"] == 0))

e_small, e_big = load("e-1000"), load(f"e-{big_n}")
older.append(Row(
    "e", f"getProfile p99, {big_n:,} vs 1,000 accounts, 8 connections",
    f"{e_big['p99_ms']:.2f} ms ({e_big['rps']:.0f}/s)",
    f"{e_small['p99_ms']:.2f} ms ({e_small['rps']:.0f}/s)",
    e_big["p99_ms"] / e_small["p99_ms"], 1.2, True, met=e_big["failed"] == 0))

os.makedirs(out_dir, exist_ok=True)

# ---------------------------------------------------------------- chart
W, row_h, left, bar_w = 900, 30, 250, 560
scale_max = max(2.0, *(min(r.ratio, 10) * 1.05 for r in head))
H = 60 + row_h * len(head) + 40
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       '<text x="10" y="22" font-size="15" font-weight="bold">issue 15: ours vs anchor '
       '(ratio; green = goal met; black tick = goal)</text>']
labels = {"1": "CPU/update 1080p", "2": "CPU/update 12 MP", "3": "CPU/update PNG",
          "4": "sent again vs full", "5": "/mmhead vs nginx", "6": "peak RSS vs 128 MiB",
          "7a": "callbacks/s vs 500", "7b": "callback p99 vs 50 ms", "8a": "QR cached p99 vs 5 ms",
          "8b": "QR uncached p99 vs 30 ms", "9": "console p99 vs 50 ms",
          "10a": "outbox 1 M vs empty", "10b": "journal 1 M vs small"}
for i, row in enumerate(head):
    y = 44 + i * row_h
    svg.append(f'<text x="10" y="{y + 16}">({row.key}) {labels[row.key]}</text>')
    w = bar_w * min(row.ratio, scale_max) / scale_max
    colour = "#2e9d4a" if row.met else "#d0453a"
    svg.append(f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row_h - 10}" fill="{colour}"/>')
    tx = left + bar_w * row.target / scale_max
    svg.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y}" y2="{y + row_h - 2}" stroke="black" stroke-width="2"/>')
    arrow = "lower is better" if row.lower else "higher is better"
    svg.append(f'<text x="{left + w + 6:.1f}" y="{y + 16}">{row.ratio_text} ({arrow})</text>')
axis_y = 44 + len(head) * row_h + 6
svg.append(f'<line x1="{left}" x2="{left + bar_w}" y1="{axis_y}" y2="{axis_y}" stroke="#888"/>')
step = 0.5 if scale_max <= 3 else 1.0 if scale_max <= 6 else 2.0
v = 0.0
while v <= scale_max + 1e-9:
    x = left + bar_w * v / scale_max
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


def table(rows):
    out = ["| # | figure | ours | anchor | ratio | goal | met | min / median / max of repeats |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.key} | {r.figure} | {r.ours} | {r.anchor} | {r.ratio_text} | {r.goal} "
                   f"| {'yes' if r.met else '**no**'} | {r.noise} |")
    return out


lines = ["# Benchmarks", ""]
if run["quick"]:
    lines += ["**A quick run (`BENCH_QUICK=1`): a smoke test of the harness, not results.**", ""]
lines += [
    "Issue 15's goals, each measured against its anchor in the same run of "
    "[`bench/run.sh`](../../bench/run.sh) on the same machine. Absolute numbers depend "
    "on the machine and its load; the ratios are the result. Rows 7–9 are absolute, "
    "bench-only figures: their anchor is the goal itself.",
    "",
    "![ratios](chart.svg)",
    "",
    *table(head),
    "",
    "The last column is the spread of the ratio (or of the figure named) over the "
    "repeats of that measurement in this run, with their count; \"one run\" where the "
    "figure comes from one run. For the absolute rows the ratio is ours over the goal.",
    "",
    "## Issue 6's figures that still matter",
    "",
    *table(older),
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
vips12 = vips_best["photo-12mp.jpg"][0]["cpu_ms"]
ours12 = load("a-ours-photo-12mp.jpg")["cpu_ms"]
insitu12 = insitu["photo-12mp.jpg"]["full_render_median_ms"]
insitu12_ratio = insitu["photo-12mp.jpg"]["vips_ratio_median"]
vips_1080p_rounds = insitu["photo-1080p.jpg"]["vips_anchor_cpu_ms"]
lines += [
    "",
    "## What bounds the 12 MP JPEG",
    "",
    f"libjpeg-turbo alone, decoding this file at 1/8 scale (`jpegload shrink=8`: almost "
    f"nothing but Huffman decoding, one thread), costs **{floor:.1f} ms** of CPU — "
    f"{floor / vips12:.2f}× of the whole libvips pipeline ({vips12:.1f} ms). A baseline "
    f"JPEG has to be entropy-decoded in full whatever the output size. Ours is decoded by "
    f"a decoder of our own ([`src/imaging/reduced_jpeg/`](../../src/imaging/reduced_jpeg/mod.rs): "
    f"one pass over the scan with a 64-bit bit buffer and one table lookup per "
    f"coefficient, keeping only each block's 2×2 low-frequency corner, and transforming "
    f"only the blocks around the centre square) instead of "
    f"jpeg-decoder's scaled decode, which costs about 1.6 times as much and spawns a "
    f"thread per colour component for every picture. It is safe Rust; no C parses "
    f"untrusted bytes. Its fuzz target checks it differentially against jpeg-decoder "
    f"when reduced and zune-jpeg at full size "
    f"(`fuzz/README.md`), and its unit tests cut, corrupt and mutate files. In this run our "
    f"pipeline in a loop costs {ours12:.1f} ms ({ours12 / vips12:.2f}×) and the running "
    f"server {insitu12:.1f} ms per update ({insitu12_ratio:.2f}× of libvips timed "
    f"beside it, row 2): "
    f"{insitu12 - ours12:.1f} ms ({(insitu12 - ours12) / insitu12:.0%} of an update) is "
    f"spent outside the pipeline loop — the request, the download from loopback, "
    f"SHA-256 of the source bytes (3 ms for these 4.4 MB), the blob writes, the commit, "
    f"and the thread hand-offs between them (tokio, the blocking pool, SQLite's worker).",
    "",
    "## Where a 1080p update goes, and why rows 1–3 cost more in the server",
    "",
    "Profiled on this machine while working on it (perf, CPU clock), the 1080p pipeline "
    "in a loop before the planes render below: Huffman decoding about 8 ms; the inverse DCT of the "
    "blocks around the centre square about 2 ms, chroma upsampling and colour conversion "
    "about 1 ms; the 1080→640 Lanczos pass on RGB about 2.6 ms; the five JPEG encodes "
    "about 3.4 ms (the 640 is nine tenths of it; its RGB→YCbCr conversion and chroma "
    "averaging about 1 ms). libvips does the same work with libjpeg-turbo on both ends and "
    "no shrink-on-load (1080/640 is below 2).",
    "",
    "The planes render: a 4:2:0 JPEG (what cameras and phones write) whose centre square is at "
    "least 640 px never becomes RGB. Our decoder hands over its luma and chroma planes; "
    "luma is cut and resized to 640, each chroma plane from its own half-size samples "
    "straight to 320 (the same rectangle at half the scale), the small sizes likewise from "
    "box-halved planes, and the encoder takes the planes as they are "
    "([`src/imaging/variants.rs`](../../src/imaging/variants.rs) `render_planes`). Gone: "
    "chroma upsampling, the colour conversion to RGB and back, the encoder's chroma "
    "averaging; and the resizer reads half the samples. The 1080p loop went from about "
    "19 ms to 16 ms, the server's CPU per 1080p update from about 26 ms to 22 ms when "
    "measured alone (earlier today, when this machine ran everything about 40% slower "
    "than in some runs: libvips' 1080p pipeline has taken 48 to 77 ms here), and peak memory of 32 concurrent 12 MP updates from 93 MiB to about "
    "70 MiB (no full-size RGB copy of the square). Resampling is linear, so this is the "
    "RGB path's result up to rounding and the clamping of out-of-range RGB; measured "
    "against a float Lanczos of the fully decoded picture (pyvips), the bench photos' 640s "
    "are as close or closer than before (mean error 1080p 3.18 levels vs 3.25, 12 MP 5.42 "
    "vs 6.00; libvips' own 3.25 and 6.13), the small sizes within ±0.2 either way: chroma "
    "is resampled once instead of upsampled, resampled and averaged again. Other "
    "pictures (PNG, grey, other samplings, squares below 640) keep the RGB path. Earlier "
    "rounds: our own JPEG encoder for the variants "
    "([`src/imaging/baseline_encoder.rs`](../../src/imaging/baseline_encoder.rs): libjpeg's "
    "colour conversion, 2×2 averaging and quality scaling, its float AAN forward DCT on "
    "eight columns at a time, the Annex K Huffman tables; it only sees pixels the pipeline "
    "made, never a client's bytes), our own decoder for every baseline JPEG, transforming "
    "only the MCUs around the centre square, a float AAN inverse DCT on eight lanes, "
    "Lanczos weights from a table, RGBA composited onto white at 640 px, the small sizes "
    "from box-filtered halves of the 640, buffers and resizers kept between updates.",
    "",
    "What an update costs outside the pipeline: sqlx no longer pings a pooled SQLite "
    "connection on every checkout (a round trip to SQLite's worker thread), an online "
    "route reads its device and account in one statement, and updateHeadImg checks "
    "ownership once. The same picture sent again (row 4) costs three reads, each a "
    "round trip to SQLite's worker thread (the token, the device with its account, the "
    "ETag its URL answered last time), and a conditional GET. The 304 names the avatar "
    "the account already has, so nothing is written: the update read the account "
    "before fetching, and the answer is unchanged as of that read. Earlier it "
    "went on to BEGIN, an UPDATE of the pointer that matched nothing, an ownership read "
    "and COMMIT; measured alone (six alternating rounds of 300, old and new binary), "
    "0.82 ms and 27 thread switches per update then, 0.62 ms and 16 now. A real change "
    "that needs no render (back to a picture the server has made before) is now one "
    "UPDATE outside any transaction, because the database appends the history row "
    "itself, by a trigger on the pointer (migration 0012): 7 round trips became 4, "
    "1.20 ms became 1.03 ms for a switch between two known pictures. Before these changes "
    "about 60% of this path's CPU samples were the kernel switching threads. With one tokio worker instead of two the "
    "update made fewer switches and cost 0.25 ms less (the second worker is woken to "
    "look for work it rarely finds). Requests are now served on single-threaded "
    "connection threads (see `/mmhead` below), where no second worker is woken: a "
    "1080p picture sent again took 0.78–0.80 ms against 0.87–1.03 ms before (two "
    "alternating runs of four rounds of 300 on each binary). Tried and not kept, each unchanged within noise: a download driven in the "
    "fetch's own task instead of hyper-util's spawned connection task, and reading the "
    "source's ETag alongside the device check instead of after it. The 10 ms CPU ticks "
    f"make this figure coarse: {again_n} updates a round resolve {10 / again_n:.2f} ms.",
    "",
    "Part of the server's extra over the loop is not work but cold caches. The loop "
    "renders the same picture back to back; the server renders after a pause (the "
    "client's request, the download). Measured here with a sleep added between the loop's "
    "renders (on an earlier decoder): 21.5 ms per 1080p render back to back, 24.8 ms "
    "with 5 ms sleeps, 31 ms with "
    "30 ms sleeps. An arithmetic loop that fits in L1 is unaffected by the same sleeps, "
    "and an 8 MB memory walk slows by 40%: after an idle spell this virtual machine's "
    "caches hold other work's data. libvips' anchor runs back to back, like our loop.",
    "",
    "The rest of the server's extra is mostly thread hand-offs. A 1080p update makes "
    "about 80 voluntary context switches (measured alone: tokio's workers and blocking "
    "pool about 58, SQLite's worker thread 19, one per statement answered), and on this "
    "virtual machine waking a thread on the other core is expensive: `perf bench sched "
    "pipe` takes 35 µs per round trip across the two cores and 3.9 µs on one. The five "
    "blobs of an avatar are now written at once, so the blocking pool takes them in one "
    "go instead of being woken for each (tokio's switches 68 → 58 per update, about "
    "0.3 ms of CPU). Pinning the server to one core did not change its CPU per update, "
    "though. The rest is "
    "SHA-256 of the source (0.5 ms for 1080p, 3.3 ms for 12 MP, 8 ms for the 11 MB PNG; "
    "SHA-NI: 1.27 GB/s, where `openssl speed sha256` gives 1.39 GB/s on this machine; "
    "about a tenth of a PNG update, profiled). BLAKE3 would take a third of that, but the source hash is what keeps an "
    "avatar's id when a picture is sent again after the renderer changed (as it did "
    "here): changing the hash would give every picture already seen a new id once.",
    "",
    "## What a `GET /mmhead` costs beside nginx",
    "",
    "Requests are served on connection threads (`src/startup/connection_threads.rs`, "
    "`GEWE_HTTP_THREADS`, one per core): each runs a single-threaded tokio runtime with "
    "its own epoll, and the accept loop hands each new connection to the thread "
    "serving the fewest, where it stays, as with nginx's workers. Before, on tokio's "
    "work-stealing runtime, one worker at a time waited on the sockets and woke the "
    "other to share what it found: under this load the machine sat 2–4% idle with "
    "ours and about 0% with nginx, and row 5 was at parity (0.92–1.02× in six "
    "alternating 6 s turns, median 0.98×). Now, A/B under the same wrk load in 6 s "
    "turns (old binary, new binary and nginx in turn, four rounds): the new binary "
    "served 11–23% more than the old in every round, 0.95–1.19× nginx; the machine "
    "was 0.1–0.3% idle (old: 1.7–4.3%). CPU per request from `/proc`: ours 7.8–8.4 µs "
    "(user 2.6–3.3, system 5.0–5.6), the old binary 8.8–9.9 µs (user 3.2–3.5), nginx "
    "7.7–10.2 µs (user 2.0–2.8, system 5.7–7.4). The current-thread scheduler is "
    "lighter as well: no work-stealing queues, and `futex` calls fell from about 0.1 "
    "per request to 0.014.",
    "",
    "Handing each request from its connection thread back to the work-stealing "
    "runtime was tried first, so that the application would keep one runtime: it "
    "cost two thread wake-ups a request, and in a full run getQrCode (cached) served "
    "5047/s instead of 8209/s, getProfile 10045/s instead of 13386/s, and the outbox "
    "delivered half as many callbacks. So handlers run where their connection is; "
    "decoding and rendering go to the blocking pool, as before, so a long request "
    "does not hold up the other connections of its thread. An update's CPU did not "
    "change with this: under (b)'s load (8 clients, 15 s a turn, three turns each, old "
    "and new binary in turn) the old binary took 22.8–24.9 ms per update and the new "
    "one 22.9–24.6 ms. Row (b) is a single 15 s run and sits on its goal's line: 0.81× "
    "in the last full run before this change, 0.74× and 0.79× in the two after it.",
    "",
    "Per request on a keep-alive connection we make one `recvfrom` and one `writev`, "
    "and a share of `epoll_wait` (about 0.26 per request over 8 connections); nginx "
    "makes a `recvfrom`, a `writev`, a `sendfile` and two `setsockopt` (`tcp_nopush` "
    "corks and uncorks) (strace, 8 connections). Most of either side's CPU is the "
    "kernel's loopback TCP, which includes waking the client. Earlier work on user "
    "space: off came hyper-util's `GracefulShutdown` (a lock every connection took on "
    "every poll), the `metrics` recorder on every request (now tallied per thread and "
    "added up at scrape), the store's large futures copied through every layer (now "
    "boxed on the way to the store only), `fmt` for the ETag and ids, a future built, "
    "moved and polled through the panic guard and span for an avatar from memory (it "
    "now gets its request context around a plain call, its request id built on the "
    "stack), and hyper's watch for a hang-up while each request is in flight, a read "
    "into a fresh 8 KiB buffer (the listener allows half-closed connections). What "
    "stays, by choice: the request context itself (request id in the log line and the "
    "`X-Request-Id` header, panic guard, metrics; a build without any of it measured "
    "7.0–7.4 µs against 8.0–8.5 with the old one, while dropping any one part alone "
    "moved nothing beyond the noise), and hyper's header-read deadline, which re-arms "
    "a timer for every request (about 0.2 µs by profile) and is what closes a slowloris "
    "connection. One pair of turns still ranges over ±10% on this machine, so row 5 "
    "takes the median of nine pairs.",
    "",
    "## How each figure is measured",
    "",
    "- **1–3** [`bench/insitu.sh`](../../bench/insitu.sh): a fresh `gewe serve`, one "
    "account per picture, the pictures served by a loopback HTTP server. After two "
    "warm-up updates, rounds of 20 updates with bytes the server has never seen (the "
    "picture plus a few distinct bytes after its JPEG end-of-image marker or PNG IEND "
    "chunk, served by [`bench/pictures.py`](../../bench/pictures.py), so every update is "
    "a full render of the same pixels; the server's download limit is raised to 16 MiB "
    "for the 11 MB PNG). Ours = the server "
    "process's user + system CPU from `/proc/<pid>/stat` (10 ms ticks) per update, "
    "median of the rounds. Anchor = libvips' pipeline CPU per picture "
    "([`bench/vips_pipeline.py`](../../bench/vips_pipeline.py), the better of one "
    "thread and the default pool), timed in every round right after its 20 updates "
    "(at least 0.8 s of renders per configuration); the ratio is the median of the "
    "rounds' ratios. Timed minutes apart, as in earlier runs, the two saw this "
    "machine in different states: its speed drifts by tens of percent within a run.",
    f"- **4** the same script, each round: {again_n} updates alternating between the two "
    "warm-up pictures (bytes the server already rendered: two copies of the same "
    "pixels, so one avatar, the account's) against that round's full renders; ratio of "
    "the medians, the worst picture shown. The picture server sends a strong ETag and "
    "answers 304 to a matching If-None-Match, as nginx does for a static file: the "
    "server asks with the ETag it kept, and the 304 names the avatar the account "
    f"already has, so nothing is written. Then {again_n} "
    "more from URLs of the same bytes that send no ETag (`/plain/…`): download, "
    "SHA-256, one lookup, the commit of the URL's source.",
    "- **5** wrk, 2 threads, 64 connections, the same 132 px file: `GET /mmhead/<id>/132` "
    "vs nginx (`sendfile`, `open_file_cache`, `access_log off`, one worker per core) "
    "serving `avatars/<id>/132.jpg` from the blob folder, in turn, several times (ours "
    "first, then nginx first, and so on, so that a drift in the machine's speed does not "
    "favour one side); our "
    "request log is off too (`RUST_LOG=warn`); its request ids, metrics and panic guard "
    "stay on (`GET /mmhead` is answered ahead of the router, in the same request "
    "context). Ratio = median of the per-turn ratios.",
    "- **6** a freshly started server each repeat; 32 curl clients post updateHeadImg "
    "at once, each with a distinct copy of the 12 MP JPEG (`bench/pictures.py`), so all "
    "32 are full renders; peak = the server's `VmHWM`.",
    "- **7** [`bench/callbacks.py`](../../bench/callbacks.py): messages injected through "
    "`/operator/injectMessage` at 500/s by 8 keep-alive clients (2 processes) over 16 "
    "devices; the server POSTs them to a receiver on loopback (a process of its own: in "
    "one Python process the harness's interpreter lock capped injection at ~400/s). Rate = deliveries per 5 s window "
    "(the slowest window counts); latency from the inject call's answer (after the "
    "commit) to the receiver reading the callback; lost = injected but not received "
    "within 60 s of the end.",
    "- **8** wrk, 2 threads, 4 connections, `personal/getQrCode` (the account's contact "
    "card: its QR code with the avatar in the centre, a JPEG): cached = eight accounts "
    "whose cards were rendered once before, asking in turn; uncached = accounts drawn "
    "at random among the (e) data dir's million, each rendering its card for the first "
    "time. p99 latency, median of the repeats.",
    "- **9** [`bench/probe.py`](../../bench/probe.py) `console`: 1 000 accounts of one "
    "token (sqlite3 bulk insert), signed in through the sign-in form like a browser; the "
    "first and the last page of the grid (48 tiles a page) asked in turn, one request "
    "at a time on a keep-alive loopback connection (the server's time plus a loopback "
    "round trip; the tiles' pictures are not fetched).",
    f"- **10a** `bench/callbacks.py --data-dir`: a data dir the server created and "
    f"seeded (`--prepare`), then {grow_n:,} delivered events of that token inserted with "
    f"sqlite3 (finished over the last day, inside the 7-day pruning window), then the "
    f"server restarted on it; injection driven past what the server takes (5000/s "
    f"asked) so the delivery rate is its capacity; the same on a prepared dir with an "
    f"empty outbox. Ratio = empty rate / full rate (time per event).",
    f"- **10b** `bench/probe.py journal`: 100 tokens; the first 1 % of rows belong to "
    f"a token that went quiet, the rest to 99 busy tokens in turn (198 appIds, 7 "
    f"routes, a call every 10 ms), inserted with sqlite3; `/operator/journal` asked "
    f"with each filter it has — none, a busy token, the quiet token, a route, an appId, "
    f"`since` the newest 2 s, and a poll `afterId` the newest id (nothing new) — each "
    f"with limit 20, one at a time on a keep-alive connection. Anchor: the same "
    f"queries on {small_journal:,} rows laid out alike, the smallest journal in which "
    f"every query answers the same entries (an empty journal answers none, so its "
    f"figures would leave out the answer itself), served by a second server at the "
    f"same time with the same tokens: each query goes to one and right after to the "
    f"other, so both see the machine in the same state (one after the other, the "
    f"ratio moved between 0.7× and 1.4× from run to run). Ratio = p50 with "
    f"{grow_n:,} rows / p50 with {small_journal:,}, the worst query shown.",
    "- **(a)** `examples/bench_pipeline.rs cpu` vs `bench/vips_pipeline.py`, same input "
    "bytes, same outputs (five square JPEGs, Q85, no metadata). CPU time = user + system "
    "of all threads of the process, per picture, median of rounds of ≥ 0.8 s each after "
    "a warm-up. libvips: `thumbnail_buffer` to 640×640 `crop=centre` (shrink-on-load), "
    "flatten onto white, `copy_memory`, smaller sizes resized from the 640, "
    "`jpegsave_buffer(Q=85, strip=True)`, operation cache off.",
    "- **(b)** wrk, 8 connections, POST updateHeadImg round-robin over 8 accounts, a "
    "distinct copy of the 1080p picture each time ([`bench/pictures.py`](../../bench/pictures.py) "
    "on loopback: the server reuses the avatar of bytes it has seen, so the same file "
    "again would measure row 4); only `\"ret\":200` answers count. "
    "Anchor: `bench_pipeline throughput` with one thread per core rendering the same "
    "picture. Judged on CPU per update (server, `/proc/<pid>/stat`) vs per picture.",
    f"- **(e)** wrk, 8 connections, getProfile of random accounts among 1,000 and among "
    f"{big_n:,} (rows inserted in bulk with sqlite3, all sharing one avatar); p99 latency.",
    "",
    "## Machine",
    "",
    f"- CPU: {cpu}, {cores} cores (shared with other work while measuring); memory "
    f"{mem_gib:.0f} GiB",
    f"- kernel: {platform.system()} {platform.release()}; {platform.platform()}",
    f"- {sh('rustc --version')}; libvips {sh('pkg-config --modversion vips')}; "
    f"{sh('nginx -v')}; {sh('wrk -v')}; SQLite {sh('sqlite3 --version').split(' ')[0]}; "
    f"Python {platform.python_version()}",
    f"- run: {run_ended.strftime('%Y-%m-%d %H:%M UTC')}, "
    f"{run['seconds'] / 60:.0f} min of measuring",
    "- how noisy: libvips' 1080p pipeline (the same work every time) took "
    f"{min(vips_1080p_rounds):.1f}–{max(vips_1080p_rounds):.1f} ms in the rounds of rows "
    f"1–3 and {vips_best['photo-1080p.jpg'][0]['cpu_ms']:.1f} ms in (a) a few minutes "
    "earlier; on other runs on this machine it has taken 47 to 80 ms.",
    "",
    "## Rerun",
    "",
    "```sh",
    "bench/run.sh            # as root on Debian; installs nginx, wrk, libvips, sqlite3, pyvips (venv in target/bench)",
    "BENCH_QUICK=1 bench/run.sh   # a few minutes: a smoke test of the harness",
    "cargo bench --bench pipeline   # criterion, pipeline only",
    "```",
    "",
]
with open(os.path.join(out_dir, "README.md"), "w") as f:
    f.write("\n".join(lines))
print("\n".join(lines))
