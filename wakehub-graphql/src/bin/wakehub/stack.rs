//! `wakehub stack`: one-shot stack commands over a topology file, with live output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use wakehub_core::engine::StackLogLine;
use wakehub_core::store::{StackCommandKind, StackCommandStatus};

/// `wakehub stack …`.
#[derive(Subcommand)]
pub(crate) enum StackCommand {
    /// Apply a stack of the topology file: wake what it runs on (a start cascade), then
    /// converge its Docker Engine to its compose file, waiting until every health check
    /// passes — each step shown live. Exit 0 when applied, 1 when it failed (its code and
    /// message on stderr), 2 on a bad request.
    Apply {
        /// The topology file (TOML); the stack's compose file is its `compose` or
        /// `compose_file`.
        file: PathBuf,
        /// The stack node, by name.
        stack: String,
        /// Apply this compose file instead of the one the topology file gives.
        #[arg(long)]
        compose: Option<PathBuf>,
    },
}

pub(crate) async fn command(command: StackCommand) -> anyhow::Result<ExitCode> {
    match command {
        StackCommand::Apply { file, stack, compose } => apply(&file, &stack, compose.as_deref()).await,
    }
}

async fn apply(file: &Path, stack: &str, compose: Option<&Path>) -> anyhow::Result<ExitCode> {
    let plugins = crate::plugins::Loaded::default();
    let Some(engine) = crate::one_shot_engine(file, 4, &plugins)? else { return Ok(ExitCode::from(1)) };
    if let Some(path) = compose {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        if let Err(e) = engine.save_stack_version(stack, &text, "cli", None).await {
            eprintln!("error: {}: {e} ({})", path.display(), e.code().as_str());
            return Ok(ExitCode::from(1));
        }
    }
    let queued = match engine.stack_command(stack, StackCommandKind::Apply, None, "cli").await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e} ({})", e.code().as_str());
            return Ok(ExitCode::from(2));
        }
    };
    // Its log live, from the moment it is queued.
    let mut rx = match engine.stack_log(&queued).await? {
        Some((so_far, rx)) => {
            so_far.iter().for_each(|l| println!("{l}"));
            Some(rx)
        }
        None => {
            let c = engine.store().stack_command(queued.id)?.context("the command vanished")?;
            print!("{}", c.log);
            None
        }
    };
    if let Some(rx) = rx.as_mut() {
        loop {
            match rx.recv().await {
                Ok(StackLogLine::Line(l)) => println!("{l}"),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => println!("@@ {n} lines skipped"),
            }
        }
    }
    let done = loop {
        let c = engine.store().stack_command(queued.id)?.context("the command vanished")?;
        if c.status.is_final() {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if done.status == StackCommandStatus::Done {
        println!("{stack}: version {} applied", done.version.unwrap_or_default());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {stack}: {} ({})",
            done.error_message.as_deref().unwrap_or("failed"),
            done.error_code.as_deref().unwrap_or("UNKNOWN")
        );
        Ok(ExitCode::from(1))
    }
}
