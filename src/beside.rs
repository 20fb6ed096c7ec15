//! A helper thread for work that can run beside the model's own thread.
//!
//! spool-tiny's frame decode reads nothing the commit pass changes, so the engine decodes a frame
//! on this thread while it commits the same frame on its own (`engine::worker`): on a 2-core
//! machine, where the model runs on one thread, the second core takes the decode off the path from
//! one frame to the next. The thread is a rayon pool of one that lives as long as the process, so
//! its per-thread buffers (the matmuls' packing memory) are made once rather than per frame.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether work handed to [`join`] from this thread goes to the helper: it is turned on
/// ([`set_enabled`]), its thread started, and this is not the helper itself. Callers that would
/// otherwise do the work another way (in order, or as one batch) ask first.
pub fn enabled() -> bool {
    free_helper().is_some()
}

/// Whether splitting a piece of the model's work in two, one half here and one on the helper, pays:
/// the helper is free for this thread and the model has one thread. With more, the model's
/// matmuls already spread over them, and the half on the helper's single thread would be the slow
/// one (on a 16-core Xeon, 15 model threads: per frame p50 18.6–20.5 → 23.4–25.9 ms with the
/// autoencoder's convs split).
pub fn splits() -> bool {
    enabled() && rayon::current_num_threads() == 1
}

/// Lets work go to the helper thread or not, for the whole process: the desktop app turns it off
/// where no core is free for it (its window draws on the core the model leaves free).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Runs `aside` on the helper thread while `here` runs on this one, and returns both results once
/// both are done. A panic in either is resumed on this thread after both have finished. Where the
/// helper is not [`enabled`], `aside` runs here first.
pub fn join<A, H, RA, RH>(aside: A, here: H) -> (RA, RH)
where
    A: FnOnce() -> RA + Send,
    RA: Send,
    H: FnOnce() -> RH,
{
    let Some(pool) = free_helper() else { return (aside(), here()) };
    let mut from_aside = None;
    let from_here = pool.in_place_scope(|scope| {
        scope.spawn(|_| from_aside = Some(aside()));
        here()
    });
    (from_aside.expect("the scope waits for its job"), from_here)
}

/// The helper, when it is on, started, and not the calling thread.
fn free_helper() -> Option<&'static rayon::ThreadPool> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    helper().filter(|pool| pool.current_thread_index().is_none())
}

fn helper() -> Option<&'static rayon::ThreadPool> {
    static HELPER: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(|_| "spool-beside".into())
                .build()
                .map_err(|e| tracing::warn!("no helper thread ({e}): work meant for it runs on the model's thread"))
                .ok()
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crossbeam_channel::bounded;

    #[test]
    fn both_sides_run_at_the_same_time_and_both_results_come_back() {
        // Each side waits for a word from the other: run one after the other they would time out.
        let (to_here, from_aside) = bounded(1);
        let (to_aside, from_here) = bounded(1);
        let wait = Duration::from_secs(10);
        let (a, h) = super::join(
            || {
                to_here.send(()).unwrap();
                from_here.recv_timeout(wait).map(|()| "aside")
            },
            || {
                to_aside.send(()).unwrap();
                from_aside.recv_timeout(wait).map(|()| 2)
            },
        );
        assert_eq!((a, h), (Ok("aside"), Ok(2)));
    }

    #[test]
    fn on_the_helper_nothing_is_handed_to_it_or_split() {
        assert_eq!(super::join(|| (super::enabled(), super::splits()), || ()).0, (false, false));
    }

    #[test]
    fn a_join_on_the_helper_runs_both_sides_there() {
        let (names, ()) = super::join(
            || {
                super::join(
                    || std::thread::current().name().map(String::from),
                    || std::thread::current().name().map(String::from),
                )
            },
            || (),
        );
        assert_eq!(names, (Some("spool-beside".into()), Some("spool-beside".into())));
    }

    #[test]
    fn a_panic_on_the_helper_reaches_the_caller_and_the_helper_keeps_working() {
        let caught = std::panic::catch_unwind(|| super::join(|| panic!("planted"), || 1));
        assert!(caught.is_err());
        assert_eq!(super::join(|| 3, || 4), (3, 4));
    }
}
