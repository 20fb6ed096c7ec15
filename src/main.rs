//! The `spool` binary: with no subcommand it opens the desktop app; otherwise it runs the headless
//! CLI. This file only wires the parts together.

use std::process::ExitCode;

use clap::Parser;
use spool::cli::{self, InputError, args::Cli, args::Cmd};

fn main() -> ExitCode {
    leave_a_core_free();
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
        Some(Cmd::Open(args)) => cli::check_project(&args.project).and_then(|()| open_app(Some(args.project), false)),
        None => open_app(None, cli.generate),
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

/// Gives the model's thread pool (rayon, and candle's matmuls through it) one core fewer than the
/// machine has, unless `RAYON_NUM_THREADS` says otherwise. The window needs a core of its own (its
/// renderer may be software, lavapipe); in the CLI that core runs the writer, the encoder and the
/// helper thread (`spool::beside`, which the app turns off where the window needs the core); and
/// spool-tiny's matmuls are small enough that a second pool thread on a 2-core machine costs more
/// in hand-offs than it gains: 26 fps on one thread against 22 on two (BENCHMARKS.md, "Model
/// threads").
fn leave_a_core_free() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: the first thing `main` does: no other thread exists yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", cores.saturating_sub(1).max(1).to_string()) };
    }
}

#[cfg(feature = "gui")]
fn open_app(project: Option<std::path::PathBuf>, generate: bool) -> anyhow::Result<()> {
    spool::ui::run(project, generate)
}

#[cfg(not(feature = "gui"))]
fn open_app(_project: Option<std::path::PathBuf>, _generate: bool) -> anyhow::Result<()> {
    anyhow::bail!("this build has no desktop app (built without the `gui` feature): use `spool generate`")
}
