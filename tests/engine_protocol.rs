//! The engine protocol, driven by the deterministic double in `common`.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Harness, frames, prompt_value};
use spool::engine::{Command, EngineError, EngineState, Event, Finish, FrameCount, GenSettings, TakeId};
use spool::project::Project;
use spool::timeline::{Segment, Timeline};

fn generate(prompt: &str, n: u64) -> Command {
    Command::Generate {
        timeline: Timeline::single(prompt),
        frames: FrameCount::new(n).unwrap(),
        settings: GenSettings::seeded(7),
        start_image: None,
    }
}

fn finished(e: &Event) -> bool {
    matches!(e, Event::Finished { .. })
}

fn finish_of(events: &[Event]) -> (TakeId, u64, Finish) {
    events
        .iter()
        .find_map(|e| match e {
            Event::Finished { take, len, how } => Some((*take, *len, *how)),
            _ => None,
        })
        .expect("a Finished event")
}

#[test]
fn frames_arrive_in_order_with_numbers_timings_and_stats() {
    let h = Harness::new(1);
    let start = Instant::now();
    h.engine.send(generate("a red circle", 10)).unwrap();
    let ev = h.until(finished);
    let f = frames(&ev);
    assert_eq!(f.len(), 10);
    for (i, (take, index, pos, value, _)) in f.iter().enumerate() {
        assert_eq!((*take, *index, *pos), (0, i as u64, i as u64));
        assert_eq!(*value, prompt_value("a red circle"));
    }
    assert_eq!(finish_of(&ev), (TakeId(0), 10, Finish::Completed));
    let timings: Vec<_> =
        ev.iter().filter_map(|e| if let Event::Frame(f) = e { Some(f.timing) } else { None }).collect();
    for t in &timings {
        assert!(t.command >= start && t.text_ready >= t.command);
        assert!(t.denoise_start >= t.text_ready && t.denoise_end >= t.denoise_start && t.decoded >= t.denoise_end);
    }
    let stats = ev.iter().rev().find_map(|e| if let Event::Stats(s) = e { Some(s.clone()) } else { None }).unwrap();
    assert_eq!(stats.frames, 10);
    assert!(stats.first_frame.is_some() && stats.frame_p50.is_some() && stats.steady_fps.is_some());
    assert_eq!(stats.cache_bytes, 40);
    // The prompt was encoded once for ten frames.
    assert_eq!(h.log.lock().unwrap().encodes, vec!["a red circle".to_string()]);
}

#[test]
fn a_frame_wakes_the_listener_once_and_no_event_waits_without_a_wake() {
    // Each wake costs the app a whole window redraw: a frame's events (frame, progress, stats, and
    // the stats after its commit) share one.
    let wakes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = wakes.clone();
    let h = Harness::with_waker(1, Some(Box::new(move || _ = counter.fetch_add(1, Ordering::SeqCst))));
    // The load's last event can be read before the engine has called the waker for it: let the
    // engine settle before counting, so that wake is not counted as the run's.
    assert!(h.quiet_for(Duration::from_millis(200)).iter().all(|e| matches!(e, Event::State(EngineState::Idle))));
    let loaded = wakes.load(Ordering::SeqCst);
    h.engine.send(generate("a red circle", 10)).unwrap();
    let mut ev = h.until(finished);
    ev.extend(h.quiet_for(Duration::from_millis(300)));
    assert_eq!(frames(&ev).len(), 10);
    let others = ev.iter().filter(|e| !matches!(e, Event::Frame(_) | Event::Progress { .. } | Event::Stats(_))).count();
    let run = wakes.load(Ordering::SeqCst) - loaded;
    assert!(run >= 10, "every frame wakes the listener: {run} wakes");
    assert!(run <= 10 + others, "{run} wakes for 10 frames and {others} other events: {ev:#?}");
    // The last event came with a wake: the listener is not left holding an unread one.
    assert!(!matches!(ev.last(), Some(Event::Stats(_) | Event::Progress { .. })), "{:?}", ev.last());
}

#[test]
fn a_frame_tap_gets_each_frame_as_it_is_made_and_a_full_one_never_holds_the_engine_up() {
    let h = Harness::new(1);
    let (tap, tapped) = crossbeam_channel::bounded(64);
    h.engine.send(Command::TapFrames(tap)).unwrap();
    h.engine.send(generate("a red circle", 5)).unwrap();
    let ev = h.until(finished);
    let sent: Vec<_> =
        ev.iter().filter_map(|e| if let Event::Frame(f) = e { Some((f.index, f.id)) } else { None }).collect();
    let got: Vec<_> = tapped.try_iter().map(|f| (f.index, f.id)).collect();
    assert_eq!(got, sent, "the same frames, in order, as the events");
    // A tap nobody reads fills up: the engine goes on, and every frame still reaches the listener.
    let (tap, _full) = crossbeam_channel::bounded(2);
    h.engine.send(Command::TapFrames(tap)).unwrap();
    h.engine.send(generate("a red circle", 6)).unwrap();
    assert_eq!(frames(&h.until(finished)).len(), 6);
    // A tap that is gone is dropped.
    let (tap, gone) = crossbeam_channel::bounded(2);
    drop(gone);
    h.engine.send(Command::TapFrames(tap)).unwrap();
    h.engine.send(generate("a red circle", 3)).unwrap();
    assert_eq!(frames(&h.until(finished)).len(), 3);
}

#[test]
fn chunked_models_emit_exactly_the_frames_asked_for() {
    let h = Harness::new(3);
    h.engine.send(generate("p", 5)).unwrap();
    let ev = h.until(finished);
    assert_eq!(frames(&ev).iter().map(|f| f.1).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(h.log.lock().unwrap().denoise_calls, 2);
    // The sixth frame was made with the second chunk; extending emits it without a new step.
    h.engine.send(Command::Extend { frames: FrameCount::new(2).unwrap() }).unwrap();
    let ev = h.until(finished);
    let f = frames(&ev);
    assert_eq!(f.iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(), vec![(5, 5), (6, 6)]);
    assert_eq!(h.log.lock().unwrap().denoise_calls, 3);
    assert_eq!(finish_of(&ev).1, 7);
}

#[test]
fn extending_a_finished_take_as_a_take_keeps_it_and_continues_from_the_cache() {
    let h = Harness::new(3);
    h.engine.send(generate("p", 5)).unwrap();
    h.until(finished);
    h.engine.send(Command::ExtendAsTake { frames: FrameCount::new(2).unwrap() }).unwrap();
    let ev = h.until(finished);
    let created = ev.iter().find_map(|e| if let Event::TakeCreated(t) = e { Some(t.clone()) } else { None }).unwrap();
    assert_eq!((created.id, created.parent, created.len), (TakeId(1), Some((TakeId(0), 5)), 5));
    // The new take continues from the cache as it was: the sixth frame, made with the second
    // chunk, comes out without a step, and nothing is rebuilt.
    assert_eq!(frames(&ev).iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(), vec![(1, 5), (1, 6)]);
    assert!(!ev.iter().any(|e| matches!(e, Event::State(EngineState::Rebuilding))), "{ev:?}");
    assert_eq!(h.log.lock().unwrap().denoise_calls, 3);
    assert_eq!(finish_of(&ev), (TakeId(1), 7, Finish::Completed));

    // A fresh branch has no frames of its own: it is continued, not extended as another take.
    h.engine.send(Command::Branch { take: TakeId(1), keep: 3 }).unwrap();
    h.engine.send(Command::ExtendAsTake { frames: FrameCount::new(2).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::TakeCreated(_))).count(), 1, "only the branch: {ev:?}");
    assert_eq!(finish_of(&ev), (TakeId(2), 5, Finish::Completed));

    // A take being generated is lengthened instead: no new take.
    h.control.delay_ms.store(100, Ordering::SeqCst);
    h.engine.send(generate("p", 9)).unwrap();
    h.until(|e| matches!(e, Event::Frame(_)));
    h.engine.send(Command::ExtendAsTake { frames: FrameCount::new(3).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert!(!ev.iter().any(|e| matches!(e, Event::TakeCreated(t) if t.id != TakeId(3))), "{ev:?}");
    assert_eq!(finish_of(&ev), (TakeId(3), 12, Finish::Completed));
}

#[test]
fn pause_resume_and_stop_take_effect_within_one_step() {
    let h = Harness::new(1);
    h.control.delay_ms.store(40, Ordering::SeqCst);
    h.engine
        .send(Command::Generate {
            timeline: Timeline::single("p"),
            frames: FrameCount::Forever,
            settings: GenSettings { steps: Some(1), ..GenSettings::seeded(1) },
            start_image: None,
        })
        .unwrap();
    h.until(|e| matches!(e, Event::Frame(f) if f.index == 2));
    h.engine.send(Command::Pause).unwrap();
    let ev = h.until(|e| matches!(e, Event::State(EngineState::Paused)));
    assert!(frames(&ev).len() <= 1, "at most the frame in progress finishes after pause: {:?}", frames(&ev));
    let quiet = h.quiet_for(Duration::from_millis(300));
    assert!(frames(&quiet).is_empty(), "no frames while paused");
    h.engine.send(Command::Resume).unwrap();
    let ev = h.until(|e| matches!(e, Event::Frame(_)));
    let resumed_at = frames(&ev)[0].1;
    h.until(|e| matches!(e, Event::Frame(f) if f.index == resumed_at + 2));
    h.engine.send(Command::Stop).unwrap();
    let ev = h.until(finished);
    assert!(frames(&ev).len() <= 1, "at most the frame in progress finishes after stop");
    let (_, len, how) = finish_of(&ev);
    assert_eq!(how, Finish::Stopped);
    assert!(len >= resumed_at + 3);
    assert!(frames(&h.quiet_for(Duration::from_millis(200))).is_empty(), "nothing after stop");
}

#[test]
fn branching_keeps_the_old_take_and_regenerates_deterministically() {
    let h = Harness::new(1);
    h.engine.send(generate("p", 8)).unwrap();
    let take0 = frames(&h.until(finished));
    h.engine.send(Command::Branch { take: TakeId(0), keep: 4 }).unwrap();
    let ev = h.until(|e| matches!(e, Event::CurrentTake(_)));
    let created = ev.iter().find_map(|e| if let Event::TakeCreated(t) = e { Some(t.clone()) } else { None }).unwrap();
    assert_eq!((created.id, created.parent, created.len), (TakeId(1), Some((TakeId(0), 4)), 4));
    h.engine.send(Command::Extend { frames: FrameCount::new(4).unwrap() }).unwrap();
    let take1 = frames(&h.until(finished));
    // Same seed, same prompt: the branch remakes frames 4..8 exactly (noise is per frame index).
    assert_eq!(
        take1.iter().map(|f| (f.1, f.2, f.3, f.4)).collect::<Vec<_>>(),
        take0[4..].iter().map(|f| (f.1, f.2, f.3, f.4)).collect::<Vec<_>>()
    );
    assert!(take1.iter().all(|f| f.0 == 1));
    // The old take is intact and can be continued: its cache is rebuilt from the stored latents.
    h.engine.send(Command::SwitchTake(TakeId(0))).unwrap();
    h.engine.send(Command::Extend { frames: FrameCount::new(2).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert_eq!(frames(&ev).iter().map(|f| (f.0, f.1, f.2)).collect::<Vec<_>>(), vec![(0, 8, 8), (0, 9, 9)]);
    assert!(ev.iter().any(|e| matches!(e, Event::State(EngineState::Rebuilding))));
    // Branching past the end is refused with a clear error, and the engine carries on.
    h.engine.send(Command::Branch { take: TakeId(0), keep: 99 }).unwrap();
    let ev = h.until(|e| matches!(e, Event::Error(_)));
    assert!(matches!(ev.last(), Some(Event::Error(EngineError::BadBranch { keep: 99, len: 10, .. }))));
}

#[test]
fn prompt_change_applies_at_the_requested_frame() {
    let h = Harness::new(1);
    h.control.delay_ms.store(15, Ordering::SeqCst);
    h.engine.send(generate("first", 16)).unwrap();
    h.until(|e| matches!(e, Event::Frame(f) if f.index == 1));
    h.engine.send(Command::ChangePrompt(Segment::new(8, "second"))).unwrap();
    let ev = h.until(finished);
    let changed = ev
        .iter()
        .find_map(|e| if let Event::TimelineChanged { timeline, .. } = e { Some(timeline.clone()) } else { None });
    assert_eq!(changed.unwrap().segments.iter().map(|s| s.start).collect::<Vec<_>>(), vec![0, 8]);
    let all: Vec<_> = frames(&ev);
    for (_, index, _, value, _) in &all {
        let want = if *index < 8 { prompt_value("first") } else { prompt_value("second") };
        assert_eq!(*value, want, "frame {index}");
    }
    // A hard switch re-caches the window once, at the switch.
    assert_eq!(h.log.lock().unwrap().recaches, vec![8]);
}

#[test]
fn the_frames_a_prompt_change_blends_over_are_sampled_as_settling() {
    let h = Harness::new(1);
    let mut t = Timeline::single("a");
    t.set_segment(Segment::new(8, "b"));
    let settings = GenSettings::seeded(0);
    let window = settings.switch_anchor.unwrap_or_default().latents as usize;
    let frames = 8 + window + 4;
    h.engine
        .send(Command::Generate {
            timeline: t,
            frames: FrameCount::new(frames as u64).unwrap(),
            settings,
            start_image: None,
        })
        .unwrap();
    h.until(finished);
    let settling = h.log.lock().unwrap().settling.clone();
    let want: Vec<bool> = (0..frames).map(|f| (8..8 + window).contains(&f)).collect();
    assert_eq!(settling, want, "settling exactly over the {window} frames after the switch at 8");
}

#[test]
fn a_blended_change_crossfades_the_conditioning() {
    let h = Harness::new(1);
    let mut t = Timeline::single("a");
    t.set_segment(Segment { blend: 3, ..Segment::new(4, "b") });
    h.engine
        .send(Command::Generate {
            timeline: t,
            frames: FrameCount::new(9).unwrap(),
            settings: GenSettings::seeded(0),
            start_image: None,
        })
        .unwrap();
    let values: Vec<f32> = frames(&h.until(finished)).iter().map(|f| f.3).collect();
    let (a, b) = (prompt_value("a"), prompt_value("b"));
    let expect = [a, a, a, a, a + 0.25 * (b - a), a + 0.5 * (b - a), a + 0.75 * (b - a), b, b];
    for (got, want) in values.iter().zip(expect) {
        assert!((got - want).abs() < 1e-3, "{values:?} vs {expect:?}");
    }
    assert!(h.log.lock().unwrap().recaches.is_empty(), "a crossfade is not a hard switch");
}

#[test]
fn discarding_a_take_stops_it_keeps_its_frames_and_persists() {
    let h = Harness::new(1);
    h.engine.send(generate("p", 4)).unwrap();
    h.until(finished);
    h.control.delay_ms.store(20, Ordering::SeqCst);
    h.engine.send(Command::Branch { take: TakeId(0), keep: 2 }).unwrap();
    h.engine.send(Command::Extend { frames: FrameCount::Forever }).unwrap();
    h.until(|e| matches!(e, Event::Frame(f) if f.take == TakeId(1) && f.index == 3));
    // Undo of the branch while it generates: the run stops, the take is marked, nothing is deleted.
    h.engine.send(Command::SetDiscarded { take: TakeId(1), discarded: true }).unwrap();
    let ev = h.until(|e| matches!(e, Event::TakeDiscarded { .. }));
    assert!(ev.iter().any(|e| matches!(e, Event::Finished { take: TakeId(1), how: Finish::Stopped, .. })));
    assert!(matches!(ev.last(), Some(Event::TakeDiscarded { take: TakeId(1), discarded: true })));
    h.engine.send(Command::SetDiscarded { take: TakeId(7), discarded: true }).unwrap();
    let ev = h.until(|e| matches!(e, Event::Error(_)));
    assert!(matches!(ev.last(), Some(Event::Error(EngineError::UnknownTake(TakeId(7))))));

    let project = h.dir.path().join("project");
    let Harness { engine, dir, .. } = h;
    drop(engine);
    let (_p, manifest, store, _) = Project::open(&project, 4).unwrap();
    assert!(manifest.takes[1].discarded && !manifest.takes[0].discarded, "the mark is saved");
    assert!(manifest.takes[1].len() >= 4, "a discarded take keeps its frames");
    assert!(store.stored_frames() as u64 >= 4 + manifest.takes[1].len() - 2);
    drop(dir);
}

#[test]
fn a_stored_take_resumes_on_a_fresh_model_by_rebuilding_the_cache() {
    let h = Harness::new(1);
    h.engine.send(generate("p", 6)).unwrap();
    let before = frames(&h.until(finished));
    // A new model instance starts with an empty cache.
    h.load("double");
    h.log.lock().unwrap().commits.clear();
    h.engine.send(Command::Extend { frames: FrameCount::new(3).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert_eq!(h.log.lock().unwrap().commits, (0..9).collect::<Vec<u64>>(), "rebuild 0..6 from the store, then 6..9");
    let after = frames(&ev);
    assert_eq!(after.iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(), vec![(6, 6), (7, 7), (8, 8)]);
    assert_eq!(before.len(), 6);
}

#[test]
fn shutdown_with_frames_in_flight_is_clean_and_keeps_the_frames() {
    let h = Harness::new(1);
    h.control.delay_ms.store(30, Ordering::SeqCst);
    h.engine
        .send(Command::Generate {
            timeline: Timeline::single("p"),
            frames: FrameCount::Forever,
            settings: GenSettings::seeded(0),
            start_image: None,
        })
        .unwrap();
    h.until(|e| matches!(e, Event::Frame(f) if f.index == 3));
    let project = h.dir.path().join("project");
    let Harness { engine, dir, .. } = h;
    let t = Instant::now();
    drop(engine);
    assert!(t.elapsed() < Duration::from_secs(2), "shutdown took {:?}", t.elapsed());
    let (_p, manifest, store, recovery) = Project::open(&project, 4).unwrap();
    assert!(store.stored_frames() >= 4, "frames made before shutdown are on disk");
    assert_eq!(manifest.takes[0].len(), store.stored_frames() as u64, "the manifest lists every stored frame");
    assert!(recovery.notes.is_empty(), "a clean shutdown leaves nothing to recover: {:?}", recovery.notes);
    drop(dir);
}

#[test]
fn errors_surface_as_events_and_the_next_command_works() {
    let h = Harness::new(1);
    h.control.fail_at.store(3, Ordering::SeqCst);
    h.engine.send(generate("p", 6)).unwrap();
    let ev = h.until(finished);
    assert_eq!(frames(&ev).len(), 3);
    assert!(ev.iter().any(|e| matches!(e, Event::Error(EngineError::Generation { frame: 3, .. }))));
    assert_eq!(finish_of(&ev).2, Finish::Failed);
    // A panic inside the model is an error too.
    h.control.panic.store(true, Ordering::SeqCst);
    h.engine.send(Command::Extend { frames: FrameCount::new(2).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Error(EngineError::Generation { reason, .. }) if reason.contains("panicked")))
    );
    // Cleared: the take continues where it stopped.
    h.control.fail_at.store(u64::MAX, Ordering::SeqCst);
    h.engine.send(Command::Extend { frames: FrameCount::new(2).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert_eq!(frames(&ev).iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(), vec![(3, 3), (4, 4)]);
    // A model that fails to load leaves the loaded one in place.
    h.load("broken");
    h.engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
    assert_eq!(frames(&h.until(finished)).len(), 1);
}

#[test]
fn a_detached_decoder_decodes_beside_the_commit_with_the_same_frames_and_its_failures_keep_the_take() {
    let plain = Harness::new(1);
    plain.engine.send(generate("p", 6)).unwrap();
    let expected = frames(&plain.until(finished));
    let h = Harness::new(1);
    h.load("detached");
    h.engine.send(generate("p", 6)).unwrap();
    assert_eq!(frames(&h.until(finished)), expected, "the same frames, in order");
    // A run's first frame is decoded on the engine's thread before the commit (it is what the user
    // waits for); the others on the helper thread during it.
    let on: Vec<(u64, String)> = std::mem::take(&mut h.log.lock().unwrap().decoded_on);
    assert_eq!(on.iter().map(|d| d.0).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>());
    assert_ne!(on[0].1, "spool-beside");
    assert!(on[1..].iter().all(|d| d.1 == "spool-beside"), "{on:?}");
    // A failed decode ends the run at that frame; the frames before it stay and Extend goes on from it.
    *h.control.fail_decode_at.lock().unwrap() = Some(8);
    h.engine.send(Command::Extend { frames: FrameCount::new(4).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert_eq!(frames(&ev).iter().map(|f| f.1).collect::<Vec<_>>(), vec![6, 7]);
    assert!(ev.iter().any(|e| matches!(e, Event::Error(EngineError::Generation { frame: 8, reason })
        if reason.contains("planted decode failure at 8"))));
    assert_eq!(finish_of(&ev).2, Finish::Failed);
    // A panic in the decode on the helper is an error at its frame too, and the helper goes on.
    h.control.panic.store(true, Ordering::SeqCst);
    *h.control.fail_decode_at.lock().unwrap() = Some(9);
    h.engine.send(Command::Extend { frames: FrameCount::new(4).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert_eq!(frames(&ev).iter().map(|f| f.1).collect::<Vec<_>>(), vec![8]);
    assert!(ev.iter().any(|e| matches!(e, Event::Error(EngineError::Generation { frame: 9, reason })
        if reason.contains("panicked") && reason.contains("planted decode panic at 9"))));
    *h.control.fail_decode_at.lock().unwrap() = None;
    h.engine.send(Command::Extend { frames: FrameCount::new(2).unwrap() }).unwrap();
    let ev = h.until(finished);
    assert_eq!(frames(&ev).iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(), vec![(9, 9), (10, 10)]);
    assert!(h.log.lock().unwrap().decoded_on.iter().any(|d| d.0 == 10 && d.1 == "spool-beside"));
}

#[test]
fn commands_without_a_model_or_take_are_clear_errors() {
    let h = Harness::new(1);
    h.engine.send(Command::Extend { frames: FrameCount::new(1).unwrap() }).unwrap();
    assert!(matches!(h.until(|e| matches!(e, Event::Error(_))).last(), Some(Event::Error(EngineError::NoTake))));
    h.engine
        .send(Command::Generate {
            timeline: Timeline::single("p"),
            frames: FrameCount::new(1).unwrap(),
            settings: GenSettings { steps: Some(9), ..GenSettings::seeded(0) },
            start_image: None,
        })
        .unwrap();
    assert!(matches!(
        h.until(|e| matches!(e, Event::Error(_))).last(),
        Some(Event::Error(EngineError::InvalidCommand(_)))
    ));
    h.engine.send(generate("p", 1)).unwrap();
    assert_eq!(frames(&h.until(finished)).len(), 1);
}

#[test]
fn guidance_is_range_checked_refused_by_models_without_it_and_passed_to_models_with_it() {
    let h = Harness::new(1);
    let generate = |guidance: Option<f32>| Command::Generate {
        timeline: Timeline::single("p"),
        frames: FrameCount::new(1).unwrap(),
        settings: GenSettings { guidance, ..GenSettings::seeded(0) },
        start_image: None,
    };
    let refused = |guidance: f32, expect: &str| {
        h.engine.send(generate(Some(guidance))).unwrap();
        match h.until(|e| matches!(e, Event::Error(_) | Event::TakeCreated(_))).pop() {
            Some(Event::Error(EngineError::InvalidCommand(m))) => assert!(m.contains(expect), "{guidance}: {m}"),
            other => panic!("guidance {guidance} was not refused: {other:?}"),
        }
    };
    refused(2.0, "no classifier-free guidance");
    for g in [0.0, 0.5, 10.5, f32::NAN, f32::INFINITY] {
        refused(g, "out of range");
    }
    // 1 is no guidance: every model takes it.
    h.engine.send(generate(Some(1.0))).unwrap();
    assert_eq!(frames(&h.until(finished)).len(), 1);
    // A model with guidance gets the take's scale, or its own default.
    h.load("guided");
    h.engine.send(generate(Some(3.0))).unwrap();
    h.until(finished);
    h.engine.send(generate(None)).unwrap();
    h.until(finished);
    refused(11.0, "out of range");
    assert_eq!(h.log.lock().unwrap().guidance, vec![1.0, 3.0, common::GUIDED_DEFAULT]);
}
