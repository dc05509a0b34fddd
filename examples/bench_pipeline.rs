//! CPU cost and throughput of the avatar pipeline alone (no HTTP, no storage),
//! for `bench/run.sh`. Prints one JSON object.
//!
//! * `bench_pipeline cpu FILE [--rounds N] [--min-ms MS] [--out DIR]`: CPU time
//!   (user + system, all threads, `CLOCK_PROCESS_CPUTIME_ID`) per picture; each
//!   round renders until it has run at least MS of CPU time; the median round
//!   is reported.
//! * `bench_pipeline throughput FILE --threads T --secs S`: T threads render the
//!   same picture for S seconds; pictures per second of wall time.

use std::time::{Duration, Instant};

use gewe_server::imaging::{ImageLimits, render_avatar};

fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(file)) = (args.first(), args.get(1)) else {
        eprintln!("usage: bench_pipeline cpu|throughput FILE [options]");
        std::process::exit(2);
    };
    let bytes = std::fs::read(file).expect("read input");
    let limits = ImageLimits::default();
    let render = || render_avatar(&bytes, &limits).expect("render");

    match mode.as_str() {
        "cpu" => {
            let rounds: usize = arg(&args, "--rounds").map_or(5, |v| v.parse().unwrap());
            let min =
                Duration::from_millis(arg(&args, "--min-ms").map_or(600, |v| v.parse().unwrap()));
            let avatar = render(); // warm-up (and the outputs)
            if let Some(dir) = arg(&args, "--out") {
                std::fs::create_dir_all(&dir).expect("out dir");
                for v in &avatar.variants {
                    let path = std::path::Path::new(&dir).join(format!("{}.jpg", v.size.label()));
                    std::fs::write(path, &v.jpeg).expect("write");
                }
            }
            let mut per_round = Vec::new();
            let mut wall_round = Vec::new();
            for _ in 0..rounds {
                let (c0, w0) = (cpu_time(), Instant::now());
                let mut n = 0u32;
                while n == 0 || cpu_time() - c0 < min {
                    std::hint::black_box(render());
                    n += 1;
                }
                per_round.push((cpu_time() - c0).as_secs_f64() * 1e3 / f64::from(n));
                wall_round.push(w0.elapsed().as_secs_f64() * 1e3 / f64::from(n));
            }
            let sizes: Vec<usize> = avatar.variants.iter().map(|v| v.jpeg.len()).collect();
            println!(
                "{{\"cpu_ms\": {:.3}, \"wall_ms\": {:.3}, \"rounds_cpu_ms\": {:?}, \"bytes\": {:?}}}",
                median(per_round.clone()),
                median(wall_round),
                per_round
                    .iter()
                    .map(|v| (v * 1000.0).round() / 1000.0)
                    .collect::<Vec<_>>(),
                sizes
            );
        }
        "throughput" => {
            let threads: usize = arg(&args, "--threads").map_or(2, |v| v.parse().unwrap());
            let secs: f64 = arg(&args, "--secs").map_or(10.0, |v| v.parse().unwrap());
            render();
            let deadline = Instant::now() + Duration::from_secs_f64(secs);
            let (c0, w0) = (cpu_time(), Instant::now());
            let done: u64 = std::thread::scope(|s| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            let mut n = 0u64;
                            while Instant::now() < deadline {
                                std::hint::black_box(render());
                                n += 1;
                            }
                            n
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).sum()
            });
            let wall = w0.elapsed().as_secs_f64();
            println!(
                "{{\"pictures_per_s\": {:.3}, \"pictures\": {done}, \"secs\": {wall:.3}, \"cpu_ms_per_picture\": {:.3}}}",
                done as f64 / wall,
                (cpu_time() - c0).as_secs_f64() * 1e3 / done as f64
            );
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}
