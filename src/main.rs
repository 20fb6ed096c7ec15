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
            // One line that names the problem: clap's first paragraph (a missing argument is named
            // on the line after the message), its tips and usage dropped.
            let text = e.render().to_string();
            let first: Vec<&str> = text.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
            eprintln!("{}", if first.is_empty() { "error: bad arguments".to_string() } else { first.join(" ") });
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
    // The window needs a core of its own: its renderer may be software (lavapipe), and on a 2-core
    // machine a model on both cores both slows generation and delays frames on screen (BENCHMARKS.md,
    // "Desktop app"). The model's thread pool (rayon, and candle through it) reads this variable.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: nothing else runs yet: the engine, writer and render threads start after this.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", cores.saturating_sub(1).max(1).to_string()) };
    }
    spool::ui::run(project)
}

#[cfg(not(feature = "gui"))]
fn open_app(_project: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    anyhow::bail!("this build has no desktop app (built without the `gui` feature): use `spool generate`")
}
