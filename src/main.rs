//! The `spool` binary: with no subcommand it opens the desktop app; otherwise it runs the headless
//! CLI. This file only wires the parts together.

use std::process::ExitCode;

use clap::Parser;
use spool::cli::{self, InputError, args::Cli, args::Cmd};

fn main() -> ExitCode {
    // Parsing starts no thread, so the pool's size can still be set after it.
    let parsed = Cli::try_parse();
    size_the_pool(parsed.as_ref().is_ok_and(runs_spool_tiny));
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = match parsed {
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

/// Sizes the model's thread pool (rayon, and candle's matmuls, which read `RAYON_NUM_THREADS` at
/// each call), unless `RAYON_NUM_THREADS` says otherwise: one thread for a command that runs
/// spool-tiny, one core fewer than the machine has for anything else. spool-tiny's matmuls are
/// small enough that more threads cost more in hand-offs than they gain: on 2 cores 26 fps on one
/// against 22 on two; with the helper thread beside it, one was as fast as 7 on 8 cores and faster
/// than 3 on 4 (BENCHMARKS.md, "Model threads", "The helper thread"). The desktop app may load
/// wan-causal at any time, so it keeps cores − 1. The core left free runs the window (its renderer
/// may be software, lavapipe), or in the CLI the writer, the encoder and the helper thread
/// (`spool::beside`, which the app turns off where the window needs the core).
fn size_the_pool(spool_tiny: bool) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if spool_tiny { 1 } else { cores.saturating_sub(1).max(1) };
        // SAFETY: `main` has started no other thread yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}

/// Whether the command runs spool-tiny, and only it: `generate` and `bench` with that model.
fn runs_spool_tiny(cli: &Cli) -> bool {
    let model = match &cli.command {
        Some(Cmd::Generate(args)) => &args.model,
        Some(Cmd::Bench(args)) => &args.model,
        _ => return false,
    };
    model.model == "spool-tiny"
}

#[cfg(feature = "gui")]
fn open_app(project: Option<std::path::PathBuf>, generate: bool) -> anyhow::Result<()> {
    spool::ui::run(project, generate)
}

#[cfg(not(feature = "gui"))]
fn open_app(_project: Option<std::path::PathBuf>, _generate: bool) -> anyhow::Result<()> {
    anyhow::bail!("this build has no desktop app (built without the `gui` feature): use `spool generate`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commands_that_run_spool_tiny_get_one_thread() {
        let runs = |args: &[&str]| runs_spool_tiny(&Cli::try_parse_from(args).expect("valid arguments"));
        assert!(runs(&["spool", "generate", "--prompt", "a red circle", "--frames", "4", "-o", "clip/"]));
        assert!(runs(&["spool", "bench"]));
        assert!(!runs(&[
            "spool",
            "generate",
            "--prompt",
            "a red circle",
            "--frames",
            "4",
            "-o",
            "clip/",
            "--model",
            "wan-causal"
        ]));
        assert!(!runs(&["spool", "bench", "--model", "wan-causal"]));
        assert!(!runs(&["spool"]), "the app may load any model");
    }
}
