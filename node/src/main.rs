//! `enlace-node --home DIR`: runs a node from its directory (see `enlace init`).

use clap::Parser;

/// Runs an Enlace node.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The node directory created by `enlace init`.
    #[arg(long, env = "ENLACE_HOME")]
    home: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    enlace_node::init_tracing();
    let args = Args::parse();
    match enlace_node::serve_home(&enlace_node::config::Home::new(args.home)).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enlace-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
