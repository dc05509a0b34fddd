"""The libvips anchor: the same five square JPEGs (640/132/96/64/46, Q85, no
metadata) with libvips' fastest recipe, timed like `bench_pipeline cpu`.

Recipe: `thumbnail_buffer` straight to 640×640 with crop="centre" (shrink-on-load
for JPEG, EXIF auto-rotate), flatten alpha onto white, keep the 640 in memory,
resize the small sizes from it, `jpegsave_buffer` Q85 with metadata stripped.
The operation cache is off, or repeated renders of one file would be free.

usage: vips_pipeline.py FILE [--rounds N] [--min-ms MS] [--out DIR] [--decode-only SHRINK]
With --decode-only, times only `jpegload_buffer(shrink=SHRINK)` into memory: at
shrink 8 libjpeg-turbo does little but entropy decoding, so this is the floor
that any decoder of that file pays (see docs/benchmarks).
Prints one JSON object: cpu_ms (median round, process CPU time of all threads).
"""

import json
import os
import statistics
import sys
import time

import pyvips

pyvips.cache_set_max(0)

SMALL = (132, 96, 64, 46)


def render(buf):
    big = pyvips.Image.thumbnail_buffer(buf, 640, height=640, crop="centre", size="down")
    if big.hasalpha():
        big = big.flatten(background=[255, 255, 255])
    big = big.copy_memory()
    out = [big.jpegsave_buffer(Q=85, strip=True)]
    for side in SMALL:
        small = big.resize(side / big.width, vscale=side / big.height)
        out.append(small.jpegsave_buffer(Q=85, strip=True))
    return big.width, out


def main():
    args = sys.argv[1:]
    path = args[0]

    def opt(name, default):
        return args[args.index(name) + 1] if name in args else default

    rounds = int(opt("--rounds", 5))
    min_s = int(opt("--min-ms", 600)) / 1000
    buf = open(path, "rb").read()
    decode_only = opt("--decode-only", None)
    if decode_only:
        shrink = int(decode_only)
        loaded = pyvips.Image.jpegload_buffer(buf, shrink=shrink).copy_memory()
        side, outs = loaded.width, []

        def work(buf):
            return pyvips.Image.jpegload_buffer(buf, shrink=shrink).copy_memory()
    else:
        work = render
        side, outs = render(buf)  # warm-up
    out_dir = opt("--out", None)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for label, data in zip(("0",) + tuple(map(str, SMALL)), outs):
            with open(os.path.join(out_dir, label + ".jpg"), "wb") as f:
                f.write(data)
    cpu_rounds, wall_rounds = [], []
    for _ in range(rounds):
        c0, w0, n = time.process_time(), time.perf_counter(), 0
        while n == 0 or time.process_time() - c0 < min_s:
            work(buf)
            n += 1
        cpu_rounds.append((time.process_time() - c0) * 1e3 / n)
        wall_rounds.append((time.perf_counter() - w0) * 1e3 / n)
    print(json.dumps({
        "cpu_ms": round(statistics.median(cpu_rounds), 3),
        "wall_ms": round(statistics.median(wall_rounds), 3),
        "rounds_cpu_ms": [round(v, 3) for v in cpu_rounds],
        "bytes": [len(o) for o in outs],
        "big_side": side,
        "vips": pyvips.version(0), "vips_minor": pyvips.version(1),
        "concurrency": pyvips.concurrency_get() if hasattr(pyvips, "concurrency_get") else os.environ.get("VIPS_CONCURRENCY"),
    }))


if __name__ == "__main__":
    main()
