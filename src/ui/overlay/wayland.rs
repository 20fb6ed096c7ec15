//! Wayland: the overlay is a subsurface of the app's window surface, in desynchronized mode so its
//! own commits (the presenter's) show at once. Where it sits and whether it shows (stacked above the
//! window's surface, or below it, where the window's opaque picture hides it) is parent state: it
//! takes effect with the window's next commit, the very pass that stops or starts painting the view
//! under it. An empty input region sends the pointer to the window; a viewport (where the compositor
//! has `wp_viewporter`) gives the buffer, in physical pixels, its size in the window's coordinates.
//! The objects live on an event queue of our own on the app's display connection.

use std::ffi::c_void;
use std::ptr::NonNull;

use wayland_backend::client::{Backend, ObjectId};
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::wl_compositor::WlCompositor;
use wayland_client::protocol::wl_region::WlRegion;
use wayland_client::protocol::wl_registry::WlRegistry;
use wayland_client::protocol::wl_subcompositor::WlSubcompositor;
use wayland_client::protocol::wl_subsurface::WlSubsurface;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, delegate_noop};
use wayland_protocols::wp::viewporter::client::wp_viewport::WpViewport;
use wayland_protocols::wp::viewporter::client::wp_viewporter::WpViewporter;

/// The overlay's surface: created hidden; [`Subsurface::set`] places, shows and hides it.
pub struct Subsurface {
    conn: Connection,
    /// Kept so the objects' queue lives as long as they do; nothing on it needs dispatching.
    _queue: EventQueue<Objects>,
    parent: WlSurface,
    surface: WlSurface,
    subsurface: WlSubsurface,
    viewport: Option<WpViewport>,
    placed: Option<([i32; 4], f32)>,
    shown: bool,
}

/// The state the (eventless) objects dispatch into.
struct Objects;

impl Subsurface {
    /// A subsurface of `parent` on `display`.
    ///
    /// # Safety
    /// `display` and `parent` must be the live `wl_display` and `wl_surface` of the app's window and
    /// outlive the returned value.
    pub unsafe fn create(display: NonNull<c_void>, parent: NonNull<c_void>) -> Result<Self, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        // SAFETY: the caller's guarantee; the backend does not take the display over.
        let conn = Connection::from_backend(unsafe { Backend::from_foreign_display(display.as_ptr().cast()) });
        let (globals, queue) = registry_queue_init::<Objects>(&conn).map_err(|e| err(&e))?;
        let qh = queue.handle();
        let compositor: WlCompositor = globals.bind(&qh, 1..=4, ()).map_err(|e| err(&e))?;
        let subcompositor: WlSubcompositor = globals.bind(&qh, 1..=1, ()).map_err(|e| err(&e))?;
        let viewporter: Option<WpViewporter> = globals.bind(&qh, 1..=1, ()).ok();
        // SAFETY: the caller's guarantee; `from_ptr` checks the object's interface.
        let id = unsafe { ObjectId::from_ptr(WlSurface::interface(), parent.as_ptr().cast()) }.map_err(|e| err(&e))?;
        let parent = WlSurface::from_id(&conn, id).map_err(|e| err(&e))?;
        let surface = compositor.create_surface(&qh, ());
        let subsurface = subcompositor.get_subsurface(&surface, &parent, &qh, ());
        subsurface.set_desync();
        subsurface.place_below(&parent);
        let region = compositor.create_region(&qh, ());
        surface.set_input_region(Some(&region));
        region.destroy();
        let viewport = viewporter.as_ref().map(|v| v.get_viewport(&surface, &qh, ()));
        surface.commit();
        conn.flush().map_err(|e| err(&e))?;
        Ok(Subsurface { conn, _queue: queue, parent, surface, subsurface, viewport, placed: None, shown: false })
    }

    /// The overlay's `wl_surface`, for the renderer's surface and the screen watch.
    pub fn surface(&self) -> NonNull<c_void> {
        NonNull::new(self.surface.id().as_ptr().cast()).expect("a live proxy has a pointer")
    }

    /// Shows the overlay at `[x, y, width, height]` (the window's physical pixels, `ppp` of them per
    /// point), or hides it (`None`), with the window's next commit.
    pub fn set(&mut self, at: Option<([i32; 4], f32)>) {
        match at {
            Some(placed) if self.placed != Some(placed) || !self.shown => {
                let ([x, y, w, h], ppp) = placed;
                let logical = |v: i32| (v as f32 / ppp).round() as i32;
                self.subsurface.set_position(logical(x), logical(y));
                match &self.viewport {
                    Some(v) => v.set_destination(logical(w).max(1), logical(h).max(1)),
                    // Integer scales only, without a viewport.
                    None => self.surface.set_buffer_scale(ppp.round().max(1.0) as i32),
                }
                if !self.shown {
                    self.subsurface.place_above(&self.parent);
                    self.shown = true;
                }
                self.placed = Some(placed);
            }
            None if self.shown => {
                self.subsurface.place_below(&self.parent);
                self.shown = false;
            }
            _ => return,
        }
        let _ = self.conn.flush();
    }
}

impl Drop for Subsurface {
    fn drop(&mut self) {
        if let Some(v) = &self.viewport {
            v.destroy();
        }
        self.subsurface.destroy();
        self.surface.destroy();
        let _ = self.conn.flush();
    }
}

impl Dispatch<WlRegistry, GlobalListContents> for Objects {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: <WlRegistry as Proxy>::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

delegate_noop!(Objects: WlCompositor);
delegate_noop!(Objects: WlSubcompositor);
delegate_noop!(Objects: WlSubsurface);
delegate_noop!(Objects: WlRegion);
delegate_noop!(Objects: WpViewporter);
delegate_noop!(Objects: WpViewport);
delegate_noop!(Objects: ignore WlSurface);
