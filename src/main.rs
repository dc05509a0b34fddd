use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    gewe_server::startup::allocator::return_large_blocks_to_the_system();
    let cli = match gewe_server::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` end here too; a closed pipe while printing
            // them (`gewe --help | head`) is no failure worth a panic.
            let _ = e.print();
            return std::process::ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match gewe_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader (`head`) had all it wanted.
        Err(e) if gewe_server::cli::is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
