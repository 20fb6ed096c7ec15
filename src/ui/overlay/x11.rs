//! X11: the overlay is a child window of the app's window, on a connection of our own. Its input
//! shape is empty, so the pointer and clicks go through it to the app's window as if it were not
//! there; a thread of its own reports Expose (the server dropped its pixels) so the picture is
//! drawn again.

use std::sync::Arc;

use x11rb::connection::Connection as _;
use x11rb::protocol::Event;
use x11rb::protocol::shape::{ConnectionExt as _, SK, SO};
use x11rb::protocol::xproto::{
    ClientMessageEvent, ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, EventMask, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// The overlay's window: created unmapped; [`ChildWindow::place`] and [`ChildWindow::show`] move
/// it and show or hide it, each only when something changed.
pub struct ChildWindow {
    conn: Arc<RustConnection>,
    id: u32,
    placed: Option<[i32; 4]>,
    shown: bool,
    events: Option<std::thread::JoinHandle<()>>,
}

/// The client message that ends the event thread.
const QUIT: u32 = 0x5350_4f4c; // "SPOL"

impl ChildWindow {
    /// A child of window `parent`, filled with `background` (0xRRGGBB) until the first picture;
    /// `exposed` is called from the event thread whenever its pixels must be drawn again.
    pub fn create(parent: u32, background: u32, exposed: impl Fn() + Send + 'static) -> Result<Self, String> {
        let (conn, _) = x11rb::connect(None).map_err(|e| e.to_string())?;
        let conn = Arc::new(conn);
        let err = |e: &dyn std::fmt::Display| e.to_string();
        conn.shape_query_version().map_err(|e| err(&e))?.reply().map_err(|e| err(&e))?;
        let id = conn.generate_id().map_err(|e| err(&e))?;
        let aux = CreateWindowAux::new().background_pixel(background).event_mask(EventMask::EXPOSURE);
        conn.create_window(0, id, parent, 0, 0, 1, 1, 0, WindowClass::INPUT_OUTPUT, 0, &aux)
            .map_err(|e| err(&e))?
            .check()
            .map_err(|e| err(&e))?;
        // An empty input shape: every pointer event falls through to the app's window.
        conn.shape_rectangles(SO::SET, SK::INPUT, x11rb::protocol::xproto::ClipOrdering::UNSORTED, id, 0, 0, &[])
            .map_err(|e| err(&e))?
            .check()
            .map_err(|e| err(&e))?;
        let watcher = conn.clone();
        let events = std::thread::Builder::new()
            .name("overlay-x11".into())
            .spawn(move || {
                while let Ok(event) = watcher.wait_for_event() {
                    match event {
                        Event::Expose(e) if e.count == 0 => exposed(),
                        Event::ClientMessage(m) if m.type_ == QUIT => break,
                        _ => {}
                    }
                }
            })
            .map_err(|e| err(&e))?;
        Ok(ChildWindow { conn, id, placed: None, shown: false, events: Some(events) })
    }

    /// The window's id, for the renderer's surface.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Shows the window at `[x, y, width, height]` (the parent's physical pixels), or hides it
    /// (`None`), and waits until the server has done it: the app's next present then draws under a
    /// window that is already there, or already gone.
    pub fn set(&mut self, at: Option<[i32; 4]>) {
        let mut sent = false;
        match at {
            Some(at) => {
                if self.placed != Some(at) {
                    let [x, y, w, h] = at;
                    let aux = ConfigureWindowAux::new().x(x).y(y).width(w.max(1) as u32).height(h.max(1) as u32);
                    sent |= self.conn.configure_window(self.id, &aux).is_ok();
                    self.placed = Some(at);
                }
                if !self.shown {
                    sent |= self.conn.map_window(self.id).is_ok();
                    self.shown = true;
                }
            }
            None if self.shown => {
                sent |= self.conn.unmap_window(self.id).is_ok();
                self.shown = false;
            }
            None => {}
        }
        if sent {
            let _ = self.conn.sync();
        }
    }
}

impl Drop for ChildWindow {
    fn drop(&mut self) {
        let quit = ClientMessageEvent::new(32, self.id, QUIT, [0u32; 5]);
        let _ = self.conn.send_event(false, self.id, EventMask::NO_EVENT, quit);
        let _ = self.conn.destroy_window(self.id);
        let _ = self.conn.flush();
        if let Some(t) = self.events.take() {
            let _ = t.join();
        }
    }
}
