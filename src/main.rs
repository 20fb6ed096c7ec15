//! The `spool` binary: with no subcommand it opens the desktop app; otherwise it runs the headless
//! CLI. This file only wires the parts together.

use std::process::ExitCode;

use clap::Parser;
use spool::cli::{self, InputError, args::Cli, args::Cmd};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line that names the problem; clap's hint lines are dropped.
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Some(Cmd::Generate(args)) => cli::generate(args),
        Some(Cmd::Bench(args)) => cli::bench::run(args),
        Some(Cmd::Export(args)) => cli::export(args),
        Some(Cmd::Open(args)) => cli::check_project(&args.project).and_then(|()| open_app(Some(args.project))),
        None => open_app(None),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<InputError>() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "gui")]
fn open_app(project: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    spool::ui::run(project)
}

#[cfg(not(feature = "gui"))]
fn open_app(_project: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    anyhow::bail!("this build has no desktop app (built without the `gui` feature): use `spool generate`")
}
