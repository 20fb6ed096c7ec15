//! The app over a procedural stand-in model (tests/demo), for looking at the UI and taking
//! screenshots while the real spool-tiny is not built in:
//!
//! ```sh
//! cargo run --example gui_demo                      # DEMO_DELAY_MS=40 sets the per-frame time
//! DEMO_AUTOSTART=1 cargo run --example gui_demo     # starts generating as soon as it opens
//! DEMO_BURN=1 …                                     # the model keeps a core busy instead of sleeping
//! SPOOL_UI_STATS=1 …                                # prints UI frame times every 5 s
//! ```

#[path = "../tests/demo/mod.rs"]
mod demo;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

fn main() -> anyhow::Result<()> {
    let delay: u64 = std::env::var("DEMO_DELAY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let options =
        spool::ui::AppOptions { generate_on_start: std::env::var_os("DEMO_AUTOSTART").is_some(), ..Default::default() };
    let delay = Arc::new(AtomicU64::new(delay));
    spool::ui::run_with(move || demo::factory(128, delay.clone()), options)
}
