//! Writes the benchmark pictures (deterministic) into a folder:
//! `cargo run --release --example bench_inputs -- DIR`.

#[path = "../benches/common/inputs.rs"]
mod inputs;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/bench/inputs".into());
    std::fs::create_dir_all(&dir)?;
    for input in inputs::all() {
        let path = std::path::Path::new(&dir).join(input.name);
        std::fs::write(&path, &input.bytes)?;
        println!(
            "{}\t{}x{}\t{} bytes",
            path.display(),
            input.width,
            input.height,
            input.bytes.len()
        );
    }
    Ok(())
}
