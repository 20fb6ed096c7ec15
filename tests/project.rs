//! Projects: round trip, lock, crash recovery and bad manifests, with the test double.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command as Proc, Stdio};
use std::sync::{Arc, Mutex};

use common::{Control, Log, factory, frames};
use spool::engine::{
    Command, Engine, EngineConfig, Event, FrameCount, GenSettings, Keyframes, ModelSpec, SwitchAnchor, TakeId,
};
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
        settings: GenSettings { steps: Some(2), ..GenSettings::seeded(3) },
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
    assert_eq!(takes[0].settings, GenSettings { steps: Some(2), ..GenSettings::seeded(3) });
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

/// A take's switch redraw and keyframes are its own settings: written to the manifest as given
/// (absent when off), read back as they were, and a manifest from before they were settings means
/// none.
#[test]
fn a_takes_switch_redraw_and_keyframes_are_kept_and_old_manifests_mean_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.spool");
    let anchor = SwitchAnchor { strength: 0.5, latents: 6 };
    let keys = Keyframes { every: 5, strength: 0.4 };
    {
        let engine = spawn(&path, 0).unwrap();
        load_named(&engine, "guided");
        for (switch_anchor, keyframes) in [(Some(anchor), Some(keys)), (None, None)] {
            engine
                .send(Command::Generate {
                    timeline: Timeline::single("a"),
                    frames: FrameCount::new(1).unwrap(),
                    settings: GenSettings { switch_anchor, keyframes, ..GenSettings::seeded(4) },
                    start_image: None,
                })
                .unwrap();
            wait(&engine, finished);
        }
    }
    let takes = manifest_takes(&path);
    assert_eq!(takes[0]["switch_anchor"], serde_json::json!({"strength": 0.5, "latents": 6}));
    assert_eq!(takes[0]["keyframes"], serde_json::json!({"every": 5, "strength": 0.4}));
    assert!(takes[1].get("switch_anchor").is_none(), "none is written as no field: {}", takes[1]);
    assert!(takes[1].get("keyframes").is_none(), "none is written as no field: {}", takes[1]);
    {
        let engine = spawn(&path, 0).unwrap();
        let (takes, _, _) = opened(&engine);
        assert_eq!(takes.iter().map(|t| t.settings.switch_anchor).collect::<Vec<_>>(), vec![Some(anchor), None]);
        assert_eq!(takes.iter().map(|t| t.settings.keyframes).collect::<Vec<_>>(), vec![Some(keys), None]);
    }
    let text = std::fs::read_to_string(path.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["takes"][0].as_object_mut().unwrap().remove("switch_anchor");
    m["takes"][0].as_object_mut().unwrap().remove("keyframes");
    std::fs::write(path.join("manifest.json"), serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let engine = spawn(&path, 0).unwrap();
    let (takes, _, _) = opened(&engine);
    assert_eq!((takes[0].settings.switch_anchor, takes[0].settings.keyframes), (None, None));
}

#[test]
fn a_takes_guidance_is_kept_and_used_again_and_old_manifests_mean_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.spool");
    let generate = |guidance: Option<f32>| Command::Generate {
        timeline: Timeline::single("a"),
        frames: FrameCount::new(2).unwrap(),
        settings: GenSettings { guidance, ..GenSettings::seeded(4) },
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
        assert_eq!(takes[0].settings, GenSettings { guidance: Some(2.5), ..GenSettings::seeded(4) });
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
                settings: GenSettings::seeded(0),
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
            settings: GenSettings::seeded(5),
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

/// Every take's frames, as pixels, of the project in `dir` (opened read-back, then closed).
fn project_pixels(dir: &std::path::Path) -> (Vec<spool::project::TakeRecord>, Option<u32>, Vec<Vec<Vec<f32>>>) {
    let (_project, manifest, store, recovery) = spool::project::Project::open_existing(dir, 8).unwrap();
    assert!(recovery.notes.is_empty(), "{:?}", recovery.notes);
    let pixels = manifest
        .takes
        .iter()
        .map(|t| t.frame_ids().map(|id| store.frame(id).unwrap().planar.clone()).collect())
        .collect();
    (manifest.takes, manifest.current_take, pixels)
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn save_as(engine: &Engine, dest: &std::path::Path) -> Result<(), String> {
    engine.send(Command::SaveAs(dest.to_path_buf())).unwrap();
    match wait(engine, |e| matches!(e, Event::SavedAs { .. })).pop() {
        Some(Event::SavedAs { path, result }) => {
            assert_eq!(path, dest);
            result
        }
        _ => unreachable!(),
    }
}

#[test]
fn save_as_makes_a_copy_that_reopens_with_the_same_takes_and_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.spool");
    let copy = dir.path().join("copy.spool");
    let engine = spawn(&path, 0).unwrap();
    load(&engine);
    engine.send(two_prompts(6)).unwrap();
    wait(&engine, finished);
    engine.send(Command::Branch { take: TakeId(0), keep: 3 }).unwrap();
    engine.send(Command::Extend { frames: FrameCount::new(2).unwrap() }).unwrap();
    wait(&engine, finished);

    engine.send(Command::SaveAs(copy.clone())).unwrap();
    let events = wait(&engine, |e| matches!(e, Event::SavedAs { .. }));
    assert!(matches!(events.last(), Some(Event::SavedAs { result: Ok(()), .. })), "{events:?}");
    let progress: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::SaveAsProgress { done, total } => Some((*done, *total)),
            _ => None,
        })
        .collect();
    assert!(progress.last().is_some_and(|(d, t)| d == t && *t > 0), "progress ends at the total: {progress:?}");
    assert!(!copy.join("lock").exists(), "the copy is not open anywhere");
    assert_eq!(entries(dir.path()), ["clip.spool", "copy.spool"], "nothing else is left beside them");

    // The engine is still in the original, which keeps working; the copy is independent of it.
    engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
    wait(&engine, finished);
    drop(engine);
    let (takes, current, pixels) = project_pixels(&copy);
    let (orig_takes, orig_current, orig_pixels) = project_pixels(&path);
    assert_eq!(takes.len(), 2);
    assert_eq!(current, Some(1));
    assert_eq!((takes[0].len(), takes[1].len()), (6, 5));
    assert_eq!(takes[0].timeline, orig_takes[0].timeline);
    assert_eq!(takes[1].parent, orig_takes[1].parent);
    assert_eq!(pixels[0], orig_pixels[0], "take 1's frames are identical");
    assert_eq!(pixels[1], orig_pixels[1][..5], "take 2's frames are identical (the original grew after)");
    assert_eq!(orig_current, Some(1));

    // The copy continues like the original: the engine opens it and extends a take.
    let engine = spawn(&copy, 0).unwrap();
    let (takes, _, recovered) = opened(&engine);
    assert!(recovered.is_empty(), "{recovered:?}");
    assert_eq!(takes.iter().map(|t| t.len).collect::<Vec<_>>(), vec![6, 5]);
    load(&engine);
    engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
    let next = frames(&wait(&engine, finished));
    assert_eq!((next[0].1, next[0].2), (5, 5), "the cache was rebuilt over the copied frames");
}

#[test]
fn save_as_refuses_what_it_must_not_overwrite_and_while_generating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.spool");
    let engine = spawn(&path, 0).unwrap();
    load(&engine);
    engine.send(two_prompts(3)).unwrap();
    wait(&engine, finished);

    let file = dir.path().join("notes.spool");
    std::fs::write(&file, "mine").unwrap();
    let folder = dir.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("a.jpg"), "jpeg").unwrap();
    let cases = [
        (file.clone(), "not a Spool project"),
        (folder.clone(), "not a Spool project"),
        (path.clone(), "inside it"),
        (path.join("inner.spool"), "inside it"),
        (dir.path().to_path_buf(), "holds the open project"),
        (dir.path().join("no/such/folder.spool"), "its folder does not exist"),
    ];
    for (dest, expect) in &cases {
        let err = save_as(&engine, dest).unwrap_err();
        assert!(err.contains(expect) && err.contains(": "), "{}: {err}", dest.display());
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine", "a file is never replaced");
    assert_eq!(entries(&folder), ["a.jpg"]);
    assert_eq!(entries(dir.path()), ["clip.spool", "notes.spool", "photos"], "nothing was left anywhere");

    // Another project that is open elsewhere is not replaced either.
    let other = dir.path().join("other.spool");
    let other_engine = spawn(&other, 0).unwrap();
    load(&other_engine);
    assert!(save_as(&engine, &other).unwrap_err().contains("open in another Spool process"));
    drop(other_engine);
    // Closed, it may be replaced by the copy.
    save_as(&engine, &other).unwrap();
    assert_eq!(project_pixels(&other).0.len(), 1);

    // While generating (paused included), Save as is refused and generation goes on.
    engine
        .send(Command::Generate {
            timeline: Timeline::single("a"),
            frames: FrameCount::Forever,
            settings: GenSettings::seeded(1),
            start_image: None,
        })
        .unwrap();
    engine.send(Command::Pause).unwrap();
    let err = save_as(&engine, &dir.path().join("late.spool")).unwrap_err();
    assert!(err.contains("stop it first"), "{err}");
    assert!(!dir.path().join("late.spool").exists());
}

#[test]
fn a_save_as_onto_a_full_disk_leaves_nothing_behind() {
    if !common::is_root() {
        eprintln!(
            "SKIPPED a_save_as_onto_a_full_disk_leaves_nothing_behind: mounting a tmpfs needs root (CI runs as root)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.spool");
    let engine = spawn(&path, 0).unwrap();
    load(&engine);
    // ~150 bytes a frame in the store: far more than the 16 KiB filesystem holds.
    engine.send(two_prompts(800)).unwrap();
    wait(&engine, finished);
    let mnt = dir.path().join("tiny");
    let _mount = common::Mount::tmpfs(&mnt, "size=16k");
    let err = save_as(&engine, &mnt.join("copy.spool")).unwrap_err();
    assert!(err.contains("nothing was left there") && err.contains("free some space"), "{err}");
    assert!(entries(&mnt).is_empty(), "left {:?}", entries(&mnt));
    // The original is whole and the engine goes on.
    engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
    wait(&engine, finished);
    drop(engine);
    assert_eq!(project_pixels(&path).0[0].len(), 801);
}

fn load_weights(engine: &Engine, weights: &str) -> Vec<Event> {
    let spec = ModelSpec { name: "double".into(), weights: Some(weights.into()) };
    engine.send(Command::LoadModel(spec)).unwrap();
    wait(engine, |e| matches!(e, Event::ModelLoaded(_)))
}

fn warnings(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn manifest_model(project: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(project.join("manifest.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["model"].clone()
}

#[test]
fn other_weights_than_the_frames_were_made_with_give_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.spool");
    {
        let engine = spawn(&path, 0).unwrap();
        assert!(warnings(&load_weights(&engine, "a")).is_empty(), "a new project has nothing to differ from");
        engine.send(two_prompts(2)).unwrap();
        wait(&engine, finished);
    }
    assert_eq!(manifest_model(&path), serde_json::json!({"id": "double", "weights": null, "weights_hash": "test:a"}));

    // The same weights: no warning. Other weights: a warning, and the project still opens and works.
    {
        let engine = spawn(&path, 0).unwrap();
        assert!(warnings(&load_weights(&engine, "a")).is_empty());
        let w = warnings(&load_weights(&engine, "b"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("other double weights") && w[0].contains("may differ"), "{}", w[0]);
    }
    // Loading other weights without making a frame does not change what the frames were made with.
    assert_eq!(manifest_model(&path)["weights_hash"], "test:a");
    {
        let engine = spawn(&path, 0).unwrap();
        assert_eq!(warnings(&load_weights(&engine, "b")).len(), 1, "still different from the frames");
        engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
        wait(&engine, finished);
    }
    assert_eq!(manifest_model(&path)["weights_hash"], "test:b", "the newest frames were made with b");

    // A manifest from before weights hashes loads, without a warning (there is nothing to compare).
    let text = std::fs::read_to_string(path.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["model"].as_object_mut().unwrap().remove("weights_hash");
    std::fs::write(path.join("manifest.json"), serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let engine = spawn(&path, 0).unwrap();
    let (takes, _, recovered) = opened(&engine);
    assert!(recovered.is_empty() && takes[0].len == 3, "{recovered:?}");
    assert!(warnings(&load_weights(&engine, "c")).is_empty());
}

/// Plants partials of ours (stale or not) and things that are not ours in `dir`; returns the names
/// that should be removed and those that must stay.
fn plant_partials(dir: &std::path::Path) -> (Vec<&'static str>, Vec<String>) {
    let gone = 999_999_999; // above any pid_max: no such process
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let age = |p: &std::path::Path| std::fs::File::open(p).unwrap().set_modified(hour_ago).unwrap();
    let stale = vec![
        ".old.spool.spool-partial-999999999-0",
        ".clip.mp4.spool-partial-999999999-1",
        ".f.spool-partial-999999999-2.old",
    ];
    std::fs::create_dir(dir.join(stale[0])).unwrap();
    std::fs::create_dir(dir.join(stale[0]).join("store")).unwrap();
    std::fs::write(dir.join(stale[0]).join("manifest.json"), "{}").unwrap();
    std::fs::write(dir.join(stale[1]), "half an mp4").unwrap();
    std::fs::create_dir(dir.join(stale[2])).unwrap();
    let kept = vec![
        format!(".fresh.mp4.spool-partial-{gone}-3"),
        format!(".live.mp4.spool-partial-{}-4", std::process::id()),
        format!("notes.spool-partial-{gone}-5"),
        format!(".x.spool-partial-{gone}-6.bak"),
        ".bashrc".to_string(),
        "holiday.mp4".to_string(),
    ];
    for k in &kept {
        std::fs::write(dir.join(k), "keep me").unwrap();
    }
    for p in stale.iter().map(|s| dir.join(s)).chain(kept.iter().skip(1).map(|k| dir.join(k))) {
        age(&p);
    }
    (stale, kept)
}

#[test]
fn stale_partials_are_removed_on_open_and_export_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.spool");
    std::fs::create_dir(&path).unwrap();
    let (_, beside) = plant_partials(dir.path());
    let (_, inside) = plant_partials(&path);
    let engine = spawn(&path, 0).unwrap();
    let mut expect: Vec<String> = beside.into_iter().chain(["p.spool".to_string()]).collect();
    expect.sort();
    assert_eq!(entries(dir.path()), expect, "stale partials beside the project are gone, the rest stays");
    let listed = entries(&path);
    assert!(inside.iter().all(|k| listed.contains(k)), "{listed:?}");
    assert!(!listed.iter().any(|n| n.contains("999999999-0") || n.contains("999999999-1")), "{listed:?}");
    drop(engine);

    // Exporting into a folder clears the stale partials there the same way.
    let out = dir.path().join("exports");
    std::fs::create_dir(&out).unwrap();
    let (_, kept) = plant_partials(&out);
    let frame = spool::model::Frame::from_rgb8(2, 2, &[9; 12]);
    let options = spool::export::ExportOptions::default();
    spool::export::export(vec![Ok::<_, std::io::Error>(frame)], out.join("clip.gif"), &options, |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    let mut expect: Vec<String> = kept.into_iter().chain(["clip.gif".to_string()]).collect();
    expect.sort();
    assert_eq!(entries(&out), expect);
}
