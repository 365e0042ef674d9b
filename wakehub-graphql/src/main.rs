//! `wakehub`: the reference WakeHub binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wakehub_core::topology_file::{self, ParseOptions};

#[derive(Parser)]
#[command(name = "wakehub", version, about = "Power a homelab on and off as a whole")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a topology file and print its hosting tree with the dependency links.
    Check {
        /// The topology file (TOML).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
    }
}

fn check(file: &PathBuf) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match topology_file::parse(&text, &ParseOptions::default()) {
        Ok(topology) => {
            let links = topology.links().count();
            println!("{}: {} nodes, {} dependency links — valid\n", file.display(), topology.len(), links);
            print!("{}", wakehub_graphql::render::tree(&topology));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}
