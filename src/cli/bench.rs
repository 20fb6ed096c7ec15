//! `spool bench`: a fixed workload, one JSON line per figure (DESIGN.md §6), medians over runs.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::args::BenchArgs;
use super::{Scratch, start_engine};
use crate::engine::{Command, Engine, EngineConfig, Event, FrameCount, GenSettings, ModelSpec, Stats, TakeId};
use crate::timeline::Timeline;

/// The benchmark prompt: one object, one motion, one background, as in the model's training world.
pub const BENCH_PROMPT: &str = "a red circle moving left on a blue background";

/// One figure of the benchmark.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    pub figure: String,
    pub value: f64,
    pub unit: &'static str,
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.export {
        return run_export(&args);
    }
    if args.branch {
        return run_branch(&args);
    }
    let scratch = Scratch::new()?;
    let (engine, info) = start_engine(EngineConfig::new(scratch.path().to_path_buf()), &args.model)?;
    let spec = ModelSpec { name: args.model.model.clone(), weights: args.model.weights.clone() };
    let mut runs: Vec<(Stats, usize)> = Vec::new();
    for run in 0..args.runs {
        if run > 0 {
            // A fresh model per run: the prompt is encoded again, so first-frame latency includes it.
            engine.send(Command::LoadModel(spec.clone()))?;
        }
        engine.send(bench_take(&args, run))?;
        let mut last = Stats::default();
        let mut max_cache = 0;
        loop {
            match engine.events().recv()? {
                Event::Stats(s) => {
                    max_cache = max_cache.max(s.cache_bytes);
                    last = s;
                }
                Event::Error(e) => bail!("benchmark run {run} failed: {e}"),
                Event::Finished { .. } => break,
                _ => {}
            }
        }
        eprintln!("run {}/{}: {}", run + 1, args.runs, super::summary(&last));
        runs.push((last, max_cache));
    }
    let figures = figures(&runs, peak_rss_bytes());
    let steps = args.model.steps.unwrap_or(info.default_steps);
    let guidance = args.model.guidance.or(info.default_guidance).unwrap_or(1.0);
    let meta = serde_json::json!({
        "model": info.id, "device": info.device, "frames": args.frames, "runs": args.runs,
        "steps": steps, "guidance": guidance,
        "threads": rayon_threads(), "width": info.width, "height": info.height,
    });
    // The row must say which weights it measured: another folder is another model.
    let weights = args.model.weights.as_ref().map(|w| format!(" --weights {}", w.display())).unwrap_or_default();
    let command = format!(
        "`spool bench --model {}{weights} --frames {} --runs {}` (steps {steps}, guidance {guidance}, {} threads)",
        info.id,
        args.frames,
        args.runs,
        rayon_threads()
    );
    report(&figures, &meta, args.append.as_deref(), &command)
}

/// The benchmark's take: `--frames` frames of [`BENCH_PROMPT`], seeded by the run's number.
fn bench_take(args: &BenchArgs, run: u32) -> Command {
    Command::Generate {
        timeline: Timeline::single(BENCH_PROMPT),
        frames: FrameCount::new(args.frames).expect("clap bounds --frames"),
        settings: GenSettings {
            steps: args.model.steps,
            guidance: args.model.guidance,
            ..GenSettings::seeded(u64::from(run))
        },
        start_image: None,
    }
}

/// The rewind workload: per run a take of `--frames` frames, then two branches of it, keeping 96%
/// and half of its frames, each extended by one frame: the time from the branch command to that
/// frame, which is mostly putting the model's cache back where the take stood.
fn run_branch(args: &BenchArgs) -> Result<()> {
    let scratch = Scratch::new()?;
    let mut config = EngineConfig::new(scratch.path().to_path_buf());
    if args.no_snapshots {
        config.snapshot_every = 0;
    }
    let (engine, info) = start_engine(config, &args.model)?;
    let keeps = [("branch_keep_96pct_ms", args.frames * 24 / 25), ("branch_keep_50pct_ms", args.frames / 2)];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); keeps.len()];
    for run in 0..args.runs {
        engine.send(bench_take(args, run))?;
        let (take, _) = until_finished(&engine, Instant::now())?;
        for ((_, keep), t) in keeps.iter().zip(&mut times) {
            let sent = Instant::now();
            engine.send(Command::Branch { take, keep: *keep })?;
            engine.send(Command::Extend { frames: FrameCount::new(1).expect("one frame") })?;
            let (_, first) = until_finished(&engine, sent)?;
            t.push(first.unwrap_or(f64::NAN));
        }
        eprintln!(
            "run {}/{}: branch times (ms) {:?}",
            run + 1,
            args.runs,
            times.iter().map(|t| t[run as usize]).collect::<Vec<_>>()
        );
    }
    let figures: Vec<Figure> = keeps
        .iter()
        .zip(times)
        .filter_map(|((figure, _), t)| median(t).map(|value| Figure { figure: figure.to_string(), value, unit: "ms" }))
        .collect();
    let snapshots = if args.no_snapshots { " --no-snapshots" } else { "" };
    let meta = serde_json::json!({
        "workload": "branch", "model": info.id, "frames": args.frames, "runs": args.runs, "snapshots": !args.no_snapshots,
    });
    let command =
        format!("`spool bench --branch{snapshots} --model {} --frames {} --runs {}`", info.id, args.frames, args.runs);
    report(&figures, &meta, args.append.as_deref(), &command)
}

/// Waits for the running command to finish: its take, and the milliseconds from `since` to its
/// first frame (if it made one).
fn until_finished(engine: &Engine, since: Instant) -> Result<(TakeId, Option<f64>)> {
    let mut first = None;
    loop {
        match engine.events().recv()? {
            Event::Frame(_) if first.is_none() => first = Some(since.elapsed().as_secs_f64() * 1e3),
            Event::Error(e) => bail!("benchmark failed: {e}"),
            Event::Finished { take, .. } => return Ok((take, first)),
            _ => {}
        }
    }
}

/// The export workload: MP4 of 256 frames at 128×128 and 81 at 832×480, GIF of 64 at 128×128.
fn run_export(args: &BenchArgs) -> Result<()> {
    let scratch = Scratch::new()?;
    let mut all: Vec<Vec<f64>> = Vec::new();
    let mut names = Vec::new();
    for _ in 0..args.runs {
        let results = crate::export::bench_export(scratch.path())?;
        names = results.iter().map(|r| format!("export_{}_ms", r.name.replace([' ', 'x'], "_"))).collect();
        all.push(results.iter().map(|r| r.elapsed.as_secs_f64() * 1e3).collect());
    }
    let figures: Vec<Figure> = names
        .into_iter()
        .enumerate()
        .filter_map(|(i, figure)| {
            median(all.iter().map(|run| run[i]).collect()).map(|value| Figure { figure, value, unit: "ms" })
        })
        .collect();
    let meta = serde_json::json!({ "workload": "export", "runs": args.runs });
    report(&figures, &meta, args.append.as_deref(), &format!("`spool bench --export --runs {}`", args.runs))
}

/// Prints one JSON line per figure and, if asked, appends table rows to a markdown file.
fn report(figures: &[Figure], meta: &serde_json::Value, append: Option<&std::path::Path>, command: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for f in figures {
        let mut line = serde_json::to_value(f)?;
        line.as_object_mut().expect("object").extend(meta.as_object().expect("object").clone());
        writeln!(out, "{line}")?;
    }
    if let Some(path) = append {
        append_rows(path, figures, command)?;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn figures(runs: &[(Stats, usize)], rss: Option<u64>) -> Vec<Figure> {
    let ms = |f: fn(&Stats) -> Option<Duration>| {
        median(runs.iter().filter_map(|(s, _)| f(s)).map(|d| d.as_secs_f64() * 1e3).collect())
    };
    let mut out = Vec::new();
    let mut push = |figure: &str, value: Option<f64>, unit| {
        if let Some(value) = value {
            out.push(Figure { figure: figure.to_string(), value, unit });
        }
    };
    push("first_frame_ms", ms(|s| s.first_frame), "ms");
    push("first_frame_no_text_ms", ms(|s| s.first_frame_no_text), "ms");
    push("frame_p50_ms", ms(|s| s.frame_p50), "ms");
    push("frame_p95_ms", ms(|s| s.frame_p95), "ms");
    push("steady_fps", median(runs.iter().filter_map(|(s, _)| s.steady_fps).collect()), "fps");
    push("cache_bytes_final", median(runs.iter().map(|(s, _)| s.cache_bytes as f64).collect()), "bytes");
    push("cache_bytes_max", median(runs.iter().map(|(_, m)| *m as f64).collect()), "bytes");
    push("peak_rss_bytes", rss.map(|b| b as f64), "bytes");
    out
}

/// Peak resident set size of this process (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn append_rows(path: &std::path::Path, figures: &[Figure], command: &str) -> Result<()> {
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output()?;
    let date = String::from_utf8_lossy(&date.stdout).trim().to_string();
    let machine = machine_name();
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    for fig in figures {
        writeln!(f, "| {date} | {machine} | {command} | {} | {:.1} {} |", fig.figure, fig.value, fig.unit)?;
    }
    Ok(())
}

/// CPU model and core count, for the benchmark table.
fn machine_name() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores")
}
