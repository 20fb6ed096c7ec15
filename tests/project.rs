//! Projects: round trip, lock, crash recovery and bad manifests, with the test double.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command as Proc, Stdio};
use std::sync::{Arc, Mutex};

use common::{Control, Log, factory, frames};
use spool::engine::{Command, Engine, EngineConfig, Event, FrameCount, GenSettings, ModelSpec, TakeId};
use spool::project::ProjectError;
use spool::timeline::Timeline;

fn spawn(project: &std::path::Path, delay_ms: u64) -> Result<Engine, ProjectError> {
    spawn_logged(project, delay_ms, Arc::new(Mutex::new(Log::default())))
}

fn spawn_logged(project: &std::path::Path, delay_ms: u64, log: Arc<Mutex<Log>>) -> Result<Engine, ProjectError> {
    let control = Arc::new(Control::default());
    control.fail_at.store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
    control.delay_ms.store(delay_ms, std::sync::atomic::Ordering::SeqCst);
    Engine::spawn(EngineConfig::new(project.to_path_buf()), factory(1, log, control), None)
}

fn wait(engine: &Engine, mut stop: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let e = engine.events().recv_timeout(std::time::Duration::from_secs(10)).expect("an event in time");
        let done = stop(&e);
        out.push(e);
        if done {
            return out;
        }
    }
}

fn opened(engine: &Engine) -> (Vec<spool::engine::TakeInfo>, Option<TakeId>, Vec<String>) {
    match wait(engine, |e| matches!(e, Event::ProjectOpened { .. })).pop() {
        Some(Event::ProjectOpened { takes, current, recovered }) => (takes, current, recovered),
        _ => unreachable!(),
    }
}

fn load(engine: &Engine) {
    load_named(engine, "double");
}

fn load_named(engine: &Engine, name: &str) {
    engine.send(Command::LoadModel(ModelSpec { name: name.into(), weights: None })).unwrap();
    wait(engine, |e| matches!(e, Event::ModelLoaded(_)));
}

fn finished(e: &Event) -> bool {
    matches!(e, Event::Finished { .. })
}

/// A take of `n` frames whose prompt switches at frame 4, seed 3, 2 steps.
fn two_prompts(n: u64) -> Command {
    let mut timeline = Timeline::single("one");
    timeline.set_segment(spool::timeline::Segment::new(4, "two"));
    Command::Generate {
        timeline,
        frames: FrameCount::new(n).unwrap(),
        settings: GenSettings { seed: 3, steps: Some(2), guidance: None },
        start_image: None,
    }
}

#[test]
fn a_project_reopens_with_its_takes_and_continues_any_take() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.spool");
    let first: Vec<_>;
    {
        let engine = spawn(&path, 0).unwrap();
        let (takes, current, _) = opened(&engine);
        assert!(takes.is_empty() && current.is_none());
        load(&engine);
        engine.send(two_prompts(6)).unwrap();
        first = frames(&wait(&engine, finished));
        engine.send(Command::Branch { take: TakeId(0), keep: 3 }).unwrap();
        engine.send(Command::Extend { frames: FrameCount::new(2).unwrap() }).unwrap();
        wait(&engine, finished);
    }
    let engine = spawn(&path, 0).unwrap();
    let (takes, current, recovered) = opened(&engine);
    assert!(recovered.is_empty(), "{recovered:?}");
    assert_eq!(current, Some(TakeId(1)));
    assert_eq!(
        takes.iter().map(|t| (t.id.0, t.len, t.parent)).collect::<Vec<_>>(),
        vec![(0, 6, None), (1, 5, Some((TakeId(0), 3)))]
    );
    assert_eq!(takes[0].timeline.segments.len(), 2);
    assert_eq!(takes[0].settings, GenSettings { seed: 3, steps: Some(2), guidance: None });
    // Take 0 continues after reopening: the cache is rebuilt from stored latents, and the frames
    // equal what an uninterrupted run makes (same seed, same timeline).
    load(&engine);
    engine.send(Command::SwitchTake(TakeId(0))).unwrap();
    engine.send(Command::Extend { frames: FrameCount::new(2).unwrap() }).unwrap();
    let more = frames(&wait(&engine, finished));
    assert_eq!(more.iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(), vec![(6, 6), (7, 7)]);
    assert_eq!(more[0].3, first[5].3, "the prompt of the second segment still applies");
    drop(engine);
    // And a fresh, uninterrupted take with the same settings makes the same frames bit for bit.
    let other = dir.path().join("other.spool");
    let engine = spawn(&other, 0).unwrap();
    load(&engine);
    engine.send(two_prompts(8)).unwrap();
    let straight = frames(&wait(&engine, finished));
    assert_eq!(straight[..6], first[..]);
    assert_eq!(
        straight[6..].iter().map(|f| (f.1, f.2, f.3, f.4)).collect::<Vec<_>>(),
        more.iter().map(|f| (f.1, f.2, f.3, f.4)).collect::<Vec<_>>()
    );
}

/// The manifest's take records, as JSON.
fn manifest_takes(project: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(project.join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["takes"].as_array().unwrap().clone()
}

#[test]
fn a_takes_guidance_is_kept_and_used_again_and_old_manifests_mean_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.spool");
    let generate = |guidance: Option<f32>| Command::Generate {
        timeline: Timeline::single("a"),
        frames: FrameCount::new(2).unwrap(),
        settings: GenSettings { seed: 4, steps: None, guidance },
        start_image: None,
    };
    {
        let engine = spawn(&path, 0).unwrap();
        load_named(&engine, "guided");
        engine.send(generate(Some(2.5))).unwrap();
        wait(&engine, finished);
        engine.send(generate(None)).unwrap();
        wait(&engine, finished);
    }
    let takes = manifest_takes(&path);
    assert_eq!(takes[0]["guidance"], serde_json::json!(2.5));
    assert!(takes[1].get("guidance").is_none(), "the model's default is written as no field: {}", takes[1]);

    // Reopened: take 0 still says 2.5 and its next frames are made with 2.5; take 1 uses the default.
    let log = Arc::new(Mutex::new(Log::default()));
    {
        let engine = spawn_logged(&path, 0, log.clone()).unwrap();
        let (takes, _, _) = opened(&engine);
        assert_eq!(takes[0].settings, GenSettings { seed: 4, steps: None, guidance: Some(2.5) });
        assert_eq!(takes[1].settings.guidance, None);
        load_named(&engine, "guided");
        for take in [0, 1] {
            engine.send(Command::SwitchTake(TakeId(take))).unwrap();
            engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
            wait(&engine, finished);
        }
    }
    assert_eq!(log.lock().unwrap().guidance, vec![2.5, common::GUIDED_DEFAULT]);
    assert_eq!(manifest_takes(&path)[0]["guidance"], serde_json::json!(2.5), "kept through a rewrite");

    // A manifest from before guidance (no field anywhere) loads; its takes use the model's default.
    let text = std::fs::read_to_string(path.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    for t in m["takes"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("guidance");
    }
    std::fs::write(path.join("manifest.json"), serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let engine = spawn_logged(&path, 0, log.clone()).unwrap();
    let (takes, _, recovered) = opened(&engine);
    assert!(recovered.is_empty(), "{recovered:?}");
    assert_eq!(takes.iter().map(|t| (t.len, t.settings.guidance)).collect::<Vec<_>>(), vec![(3, None), (3, None)]);
    load_named(&engine, "guided");
    engine.send(Command::SwitchTake(TakeId(0))).unwrap();
    engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
    wait(&engine, finished);
    assert_eq!(log.lock().unwrap().guidance, vec![common::GUIDED_DEFAULT]);
}

#[test]
fn a_project_open_elsewhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.spool");
    let engine = spawn(&path, 0).unwrap();
    assert!(matches!(spawn(&path, 0), Err(ProjectError::Locked(_, pid)) if pid == std::process::id()));
    drop(engine);
    assert!(spawn(&path, 0).is_ok(), "the lock goes with the engine");
    // A lock left by a process that is gone is taken over.
    std::fs::write(path.join("lock"), "999999999").unwrap();
    assert!(spawn(&path, 0).is_ok());
}

#[test]
fn bad_manifests_are_errors_that_leave_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.spool");
    drop(spawn(&path, 0).unwrap());
    let manifest = path.join("manifest.json");
    let cases: &[(&str, &str)] = &[
        ("{ \"format\": \"spool-project\", \"vers", "not a Spool project manifest"),
        ("", "not a Spool project manifest"),
        (r#"{"format":"spool-project","version":2}"#, "newer Spool"),
        (r#"{"format":"something-else","version":1}"#, "format"),
        (
            r#"{"format":"spool-project","version":1,"takes":[{"id":0,"seed":1,"timeline":{"segments":[{"start":5,"prompt":"a"}]}}]}"#,
            "frame 0",
        ),
        (
            r#"{"format":"spool-project","version":1,"takes":[{"id":0,"seed":1,"timeline":{"segments":[{"start":0,"prompt":"a"}]},"frames":"../../etc/passwd"}]}"#,
            "not a Spool project manifest",
        ),
        (
            r#"{"format":"spool-project","version":1,"takes":[{"id":0,"seed":1,"guidance":50,"timeline":{"segments":[{"start":0,"prompt":"a"}]}}]}"#,
            "guidance 50 is out of range",
        ),
    ];
    for (text, expect) in cases {
        std::fs::write(&manifest, text).unwrap();
        let err = spawn(&path, 0).err().unwrap_or_else(|| panic!("{text} was accepted")).to_string();
        assert!(err.contains(expect), "{text}: {err}");
        assert_eq!(std::fs::read_to_string(&manifest).unwrap(), *text, "the file is untouched");
    }
}

#[test]
fn missing_frames_cut_the_take_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.spool");
    {
        let engine = spawn(&path, 0).unwrap();
        load(&engine);
        engine
            .send(Command::Generate {
                timeline: Timeline::single("a"),
                frames: FrameCount::new(5).unwrap(),
                settings: GenSettings { seed: 0, steps: None, guidance: None },
                start_image: None,
            })
            .unwrap();
        wait(&engine, finished);
    }
    // Lose the last two records of the pixel log.
    let log = path.join("store/pixels.log");
    let bytes = std::fs::read(&log).unwrap();
    let third_end = nth_record_end(&bytes, 3);
    std::fs::write(&log, &bytes[..third_end]).unwrap();
    let engine = spawn(&path, 0).unwrap();
    let (takes, _, recovered) = opened(&engine);
    assert_eq!(takes[0].len, 3);
    assert!(recovered.iter().any(|n| n.contains("missing")), "{recovered:?}");
}

/// End offset of the n-th record of a store log (header: magic, id, take, index, len, crc).
fn nth_record_end(bytes: &[u8], n: usize) -> usize {
    let mut pos = 0;
    for _ in 0..n {
        let len = u32::from_le_bytes(bytes[pos + 24..pos + 28].try_into().unwrap()) as usize;
        pos += 32 + len;
    }
    pos
}

/// Runs in a child process (see the next test): generates forever and prints each frame index.
#[test]
fn child_generating_forever() {
    let Ok(path) = std::env::var("SPOOL_TEST_CHILD_PROJECT") else { return };
    let engine = spawn(std::path::Path::new(&path), 15).unwrap();
    load(&engine);
    engine
        .send(Command::Generate {
            timeline: Timeline::single("a"),
            frames: FrameCount::Forever,
            settings: GenSettings { seed: 5, steps: None, guidance: None },
            start_image: None,
        })
        .unwrap();
    loop {
        if let Ok(Event::Frame(f)) = engine.events().recv() {
            println!("frame {}", f.index);
        }
    }
}

#[test]
fn sigkill_during_generation_loses_no_finished_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.spool");
    let mut child = Proc::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_generating_forever", "--nocapture", "--test-threads=1"])
        .env("SPOOL_TEST_CHILD_PROJECT", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut last = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("frame ") {
            last = n.parse::<u64>().unwrap();
            if last >= 40 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(last >= 40);
    let engine = spawn(&path, 0).unwrap();
    let (takes, _, recovered) = opened(&engine);
    // Frame `last` may still have been in the writer's queue; every frame before it was on disk.
    assert!(takes[0].len >= last, "recovered {} frames, the child had shown {}", takes[0].len, last + 1);
    assert!(recovered.iter().any(|n| n.contains("recovered")), "{recovered:?}");
    // The take continues over every recovered frame (the double checks each committed position).
    load(&engine);
    engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
    let next = frames(&wait(&engine, finished));
    assert_eq!(
        (next[0].1, next[0].2),
        (takes[0].len, takes[0].len),
        "the cache was rebuilt over every recovered frame"
    );
}
