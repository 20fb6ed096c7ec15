//! wan-causal driven by the engine, loaded from a weights folder of the tiny fixtures through the
//! app's own loader: a take counts video frames (1 for latent 0, then 4 per latent), only the
//! first frame of each latent carries it in the store, the frames are WanCore's own, branches
//! start on chunk boundaries and continue exactly as the unbroken take, a take cut inside a chunk
//! continues exactly after the project is reopened (also when a crash cut it inside a latent's
//! frames), and a prompt change inside a chunk applies from the next chunk (with a warning).

mod parity;

use std::path::Path;

use candle_core::{DType, Device};
use spool::engine::{Command, Engine, EngineConfig, Event, FrameCount, GenSettings, ModelSpec, TakeId};
use spool::model::wan::WanModelConfig;
use spool::model::wan::core::{CHUNK_FRAMES, WanCore};
use spool::model::wan::files;
use spool::model::{Frame, FrameNoise, LatentFrames};
use spool::timeline::Timeline;

const PROMPT: &str = "a red fox runs across the snow";
const SEED: u64 = 5;

struct Wan {
    weights: tempfile::TempDir,
    projects: tempfile::TempDir,
}

impl Wan {
    fn new() -> Wan {
        let weights = tempfile::tempdir().unwrap();
        parity::wan_tiny_folder(weights.path());
        Wan { weights, projects: tempfile::tempdir().unwrap() }
    }

    /// The 33 frames of one unbroken take: what cut, branched or changed takes are compared with.
    fn straight_take(&self) -> Run {
        let engine = self.engine("straight.spool");
        engine.send(generate(33)).unwrap();
        run(&engine)
    }

    /// An engine on project `name` with wan-causal loaded from the weights folder.
    fn engine(&self, name: &str) -> Engine {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let config = EngineConfig::new(self.projects.path().join(name));
        let engine = Engine::spawn(config, spool::cli::models::factory(assets), None).unwrap();
        let spec = ModelSpec { name: "wan-causal".into(), weights: Some(self.weights.path().to_path_buf()) };
        engine.send(Command::LoadModel(spec)).unwrap();
        engine
    }
}

fn generate(n: u64) -> Command {
    Command::Generate {
        timeline: Timeline::single(PROMPT),
        frames: FrameCount::new(n).unwrap(),
        settings: GenSettings::seeded(SEED),
        start_image: None,
    }
}

/// Another prompt from video frame `start` on.
fn change_prompt_from(start: u64) -> Command {
    let mut seg = Timeline::single("a blue whale").segments[0].clone();
    seg.start = start;
    Command::ChangePrompt(seg)
}

fn extend(n: u64) -> Command {
    Command::Extend { frames: FrameCount::new(n).unwrap() }
}

/// What a run produced: its frames (index, id, pixels) and the other events, until it finishes.
struct Run {
    frames: Vec<(u64, spool::store::FrameId, Frame)>,
    events: Vec<Event>,
}

fn run(engine: &Engine) -> Run {
    let mut out = Run { frames: Vec::new(), events: Vec::new() };
    loop {
        let e = engine.events().recv_timeout(std::time::Duration::from_secs(300)).expect("an event");
        match &e {
            Event::Frame(f) => out.frames.push((f.index, f.id, (*f.frame).clone())),
            Event::Error(e) => panic!("engine error: {e}"),
            Event::Finished { .. } => return out,
            _ => out.events.push(e),
        }
    }
}

/// The frames of a run that carry their latent in the store (each latent's first frame).
fn carriers(engine: &Engine, made: &Run) -> Vec<u64> {
    let carries = |id: &spool::store::FrameId| engine.store().latent(*id).unwrap().is_some();
    made.frames.iter().filter(|(_, id, _)| carries(id)).map(|(i, _, _)| *i).collect()
}

fn pixels(frames: &[(u64, spool::store::FrameId, Frame)]) -> Vec<&Frame> {
    frames.iter().map(|f| &f.2).collect()
}

#[test]
fn a_take_is_wancores_video_frames_with_latents_on_each_latents_first_frame() {
    let wan = Wan::new();
    let engine = wan.engine("a.spool");
    engine.send(generate(10)).unwrap();
    let made = run(&engine);
    let info = made
        .events
        .iter()
        .find_map(|e| if let Event::ModelLoaded(i) = e { Some(i.clone()) } else { None })
        .expect("the model loads");
    assert_eq!((info.id.as_str(), info.width, info.height, info.chunk_frames), ("wan-causal", 96, 64, 3));
    assert_eq!(info.latent_frames, LatentFrames { first: 1, later: 4 });
    // 10 frames asked: the first chunk gives 1 + 4 + 4 = 9, and the next latent's 4 finish the run.
    assert_eq!(made.frames.iter().map(|f| f.0).collect::<Vec<_>>(), (0..13).collect::<Vec<_>>());
    assert_eq!(carriers(&engine, &made), vec![0, 1, 5, 9], "latents 0..4 are on frames 0, 1, 5 and 9");

    // The same frames as WanCore run directly, with the engine's noise: (seed, first latent of
    // the chunk).
    let config = WanModelConfig::in_folder(wan.weights.path()).unwrap();
    let mut core = WanCore::load(
        &files::find(wan.weights.path()).unwrap(),
        &config.dit,
        &config.text_encoder,
        spool::model::wan::CachePolicy::SELF_FORCING,
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let prompt = core.prompt(PROMPT).unwrap();
    let shape = core.chunk_shape();
    let mut want = Vec::new();
    for c in 0..2 {
        let mut noise = FrameNoise::new(SEED, (c * CHUNK_FRAMES) as u64);
        let x0 = core.next_chunk(&prompt, 4, |_| noise.normal(&shape, &Device::Cpu)).unwrap();
        want.extend(core.decode(&x0).unwrap());
    }
    assert!(pixels(&made.frames).into_iter().eq(&want[..13]), "the engine's frames are WanCore's");
}

#[test]
fn a_branch_starts_on_a_chunk_boundary_and_continues_as_the_unbroken_take() {
    let wan = Wan::new();
    let engine = wan.engine("b.spool");
    // 5 chunks: 15 latents, 1 + 14·4 = 57 frames.
    engine.send(generate(57)).unwrap();
    let take0 = run(&engine);
    assert_eq!(take0.frames.len(), 57);
    // Frame 40 lies in the chunk of latents 9..12, which starts at frame 1 + 8·4 = 33.
    engine.send(Command::Branch { take: TakeId(0), keep: 40 }).unwrap();
    let mut warning = None;
    loop {
        match engine.events().recv().unwrap() {
            Event::Warning(w) => warning = Some(w),
            Event::TakeCreated(t) => {
                assert_eq!((t.parent, t.len), (Some((TakeId(0), 33)), 33));
                break;
            }
            Event::Error(e) => panic!("{e}"),
            _ => {}
        }
    }
    let warning = warning.expect("the snap is reported");
    assert!(warning.contains("keeps frames 0 to 32, not up to frame 39"), "{warning}");
    assert!(warning.contains("start of a chunk (frames 0, 9, 21, 33, …)"), "{warning}");
    // The cache is rebuilt from 9 stored latents and the decoder resumed from the last 8 of them:
    // the branch remakes frames 33..57 bit for bit.
    engine.send(extend(24)).unwrap();
    let take1 = run(&engine);
    assert_eq!(take1.frames.iter().map(|f| f.0).collect::<Vec<_>>(), (33..57).collect::<Vec<_>>());
    assert!(pixels(&take1.frames) == pixels(&take0.frames[33..]), "the branch continues as the unbroken take");
    assert!(take1.events.iter().any(|e| matches!(e, Event::State(spool::engine::EngineState::Rebuilding))));
}

#[test]
fn a_reopened_take_cut_inside_a_chunk_continues_exactly() {
    let wan = Wan::new();
    let straight = wan.straight_take();
    assert_eq!(straight.frames.len(), 33);
    {
        let engine = wan.engine("cut.spool");
        engine.send(generate(10)).unwrap();
        let first = run(&engine);
        // 13 frames: latents 0..4; latents 4 and 5 of that chunk were made but not emitted.
        assert!(pixels(&first.frames) == pixels(&straight.frames[..13]));
    }
    // A new engine has no cache: it commits the first chunk's stored latents, makes the second
    // chunk again from its start (the same latents) and emits what the take lacks.
    let engine = wan.engine("cut.spool");
    engine.send(extend(20)).unwrap();
    let rest = run(&engine);
    assert_eq!(rest.frames.iter().map(|f| f.0).collect::<Vec<_>>(), (13..33).collect::<Vec<_>>());
    assert!(pixels(&rest.frames) == pixels(&straight.frames[13..]), "the reopened take continues exactly");
}

#[test]
fn a_prompt_change_inside_a_chunk_applies_from_the_next_chunk() {
    let wan = Wan::new();
    let straight = wan.straight_take();
    let engine = wan.engine("change.spool");
    engine.send(generate(10)).unwrap();
    run(&engine);
    // 13 frames are out (latents 0..4); latents 4 and 5 are made, so the next chunk starts at
    // latent 6, frame 1 + 5·4 = 21.
    engine.send(change_prompt_from(13)).unwrap();
    engine.send(extend(20)).unwrap();
    let rest = run(&engine);
    let warning = rest.events.iter().find_map(|e| if let Event::Warning(w) = e { Some(w.clone()) } else { None });
    let warning = warning.expect("the move is reported");
    assert!(warning.contains("the new prompt applies from frame 21"), "{warning}");
    assert_eq!(rest.frames.first().map(|f| f.0), Some(13));
    assert!(pixels(&rest.frames[..8]) == pixels(&straight.frames[13..21]), "frames 13..21 keep the old prompt");
    assert!(pixels(&rest.frames[8..]) != pixels(&straight.frames[21..]), "the new prompt shows from frame 21");
}

#[test]
fn after_a_prompt_change_at_a_chunk_start_a_rebuilt_take_continues_as_the_live_one() {
    let wan = Wan::new();
    let engine = wan.engine("switch.spool");
    // Two chunks: latents 0..6, frames 0..21; the change lands exactly on the next chunk start.
    engine.send(generate(21)).unwrap();
    run(&engine);
    engine.send(change_prompt_from(21)).unwrap();
    engine.send(extend(24)).unwrap();
    let live = run(&engine);
    assert!(!live.events.iter().any(|e| matches!(e, Event::Warning(_))), "nothing to move: {:?}", live.events);
    // A branch keeping frames 0..21 rebuilds the cache from the stored latents, under the take's
    // timeline as it is now: the chunks made before the change must come back as they were made.
    engine.send(Command::Branch { take: TakeId(0), keep: 21 }).unwrap();
    engine.send(extend(24)).unwrap();
    let rebuilt = run(&engine);
    assert_eq!(rebuilt.frames.iter().map(|f| f.0).collect::<Vec<_>>(), (21..45).collect::<Vec<_>>());
    assert!(pixels(&rebuilt.frames) == pixels(&live.frames), "the rebuilt take continues as the live one");
}

#[test]
fn a_take_cut_by_a_crash_inside_a_latent_gets_the_missing_frames_and_continues_exactly() {
    let wan = Wan::new();
    let straight = wan.straight_take();
    {
        let engine = wan.engine("crash.spool");
        engine.send(generate(10)).unwrap();
        run(&engine);
    }
    // A crash while latent 3's frames (9..13) were being written: the pixel log ends inside the
    // last record, so frame 12 is lost and the take reopens with frames 0..12.
    let log = wan.projects.path().join("crash.spool").join("store").join("pixels.log");
    let bytes = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(bytes - 8).unwrap();
    let engine = wan.engine("crash.spool");
    engine.send(extend(20)).unwrap();
    let rest = run(&engine);
    // Frame 12 first, then whole latents up to frame 32 (runs end on a latent's last frame).
    assert_eq!(rest.frames.iter().map(|f| f.0).collect::<Vec<_>>(), (12..33).collect::<Vec<_>>());
    assert!(pixels(&rest.frames) == pixels(&straight.frames[12..]), "the take goes on as if never cut");
    assert_eq!(carriers(&engine, &rest), vec![13, 17, 21, 25, 29], "frame 12 is not its latent's first frame");
}
