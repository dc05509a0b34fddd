//! Criterion benches of the avatar pipeline on the three benchmark pictures.
//!
//! `cargo bench --bench pipeline` measures; `cargo test --benches` runs each
//! once as a smoke test. The side-by-side comparison with libvips and nginx is
//! `bench/run.sh` (see `docs/benchmarks/`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gewe_server::imaging::{ImageLimits, render_avatar};

mod common {
    pub mod inputs;
}

fn pipeline(c: &mut Criterion) {
    let limits = ImageLimits::default();
    let mut group = c.benchmark_group("render_avatar");
    group.sample_size(10);
    for input in common::inputs::all() {
        group.throughput(Throughput::Elements(
            u64::from(input.width) * u64::from(input.height),
        ));
        group.bench_function(input.name, |b| {
            b.iter(|| render_avatar(black_box(&input.bytes), &limits).expect("render"))
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
