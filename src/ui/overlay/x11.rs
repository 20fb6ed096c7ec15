//! X11: the overlay is a child window of the app's window, on a connection of our own. Its input
//! shape is empty, so the pointer and clicks go through it to the app's window as if it were not
//! there; a thread of its own reports Expose (the server dropped its pixels) so the picture is
//! drawn again. Under a software rasterizer its pictures reach it through a [`SharedImage`].

use std::ptr::NonNull;
use std::sync::Arc;

use x11rb::connection::Connection as _;
use x11rb::protocol::Event;
use x11rb::protocol::shape::{ConnectionExt as _, SK, SO};
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{
    ClientMessageEvent, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, ImageFormat,
    ImageOrder, WindowClass,
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

/// Memory shared with the X server (MIT-SHM) that it copies into the overlay's window: the
/// picture does not cross the socket. Mesa's X11 present does that only on servers with DRI3, so
/// under Xvfb a software rasterizer's present sends every pixel through the socket (BENCHMARKS.md,
/// "The video overlay in shared memory").
pub struct SharedImage {
    conn: Arc<RustConnection>,
    window: u32,
    gc: u32,
    seg: u32,
    depth: u8,
    addr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by the value and only touched through `&mut self` or by the server.
unsafe impl Send for SharedImage {}

impl ChildWindow {
    /// Memory shared with the server for the window's pictures, as large as the screen (pages are
    /// only used as they are touched; a larger picture gets [`SharedImage::grown`]). Fails when the
    /// server has no MIT-SHM, cannot map the segment (another machine, another IPC namespace) or
    /// does not keep 32-bit little-endian pixels with red, green and blue where wgpu's `Bgra8Unorm`
    /// puts them.
    pub fn shared_image(&self) -> Result<SharedImage, String> {
        let screen = &self.conn.setup().roots[0];
        let row = (usize::from(screen.width_in_pixels) * 4).next_multiple_of(256);
        share(&self.conn, self.id, row * usize::from(screen.height_in_pixels))
    }
}

/// A [`SharedImage`] of `len` bytes for `window`.
fn share(conn: &Arc<RustConnection>, window: u32, len: usize) -> Result<SharedImage, String> {
    let err = |e: &dyn std::fmt::Display| format!("shared-memory image: {e}");
    conn.shm_query_version().map_err(|e| err(&e))?.reply().map_err(|e| err(&e))?;
    let setup = conn.setup();
    let attrs = conn.get_window_attributes(window).map_err(|e| err(&e))?.reply().map_err(|e| err(&e))?;
    let depth = conn.get_geometry(window).map_err(|e| err(&e))?.reply().map_err(|e| err(&e))?.depth;
    let bpp = setup.pixmap_formats.iter().find(|f| f.depth == depth).map(|f| f.bits_per_pixel);
    let visual = setup
        .roots
        .iter()
        .flat_map(|r| &r.allowed_depths)
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == attrs.visual);
    let bgra = visual.is_some_and(|v| (v.red_mask, v.green_mask, v.blue_mask) == (0xff_0000, 0xff00, 0xff));
    if bpp != Some(32) || setup.image_byte_order != ImageOrder::LSB_FIRST || !bgra {
        return Err(err(&format!("the window's pixels are not 32-bit BGRX (depth {depth}, {bpp:?} bits)")));
    }
    // SAFETY: plain System V calls on a segment of our own; every failure is checked.
    let shmid = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
    if shmid < 0 {
        return Err(err(&std::io::Error::last_os_error()));
    }
    // SAFETY: as above; the segment was just made `len` bytes long.
    let addr = unsafe { libc::shmat(shmid, std::ptr::null(), 0) };
    let mapped = addr as isize != -1;
    let seg = if mapped {
        conn.generate_id().map_err(|e| err(&e)).and_then(|seg| {
            conn.shm_attach(seg, shmid as u32, true).map_err(|e| err(&e))?.check().map_err(|e| err(&e))?;
            Ok(seg)
        })
    } else {
        Err(err(&std::io::Error::last_os_error()))
    };
    // Marked for removal at once: it goes when both sides have let go of it, crash or not.
    // SAFETY: our segment's id.
    unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
    let seg = seg.inspect_err(|_| {
        if mapped {
            // SAFETY: mapped above and not handed out.
            unsafe { libc::shmdt(addr) };
        }
    })?;
    let addr = NonNull::new(addr.cast::<u8>()).ok_or_else(|| err(&"no address"))?;
    // From here on a failure lets go of the segment in `drop`.
    let mut image = SharedImage { conn: conn.clone(), window, gc: 0, seg, depth, addr, len };
    let gc = conn.generate_id().map_err(|e| err(&e))?;
    conn.create_gc(gc, window, &CreateGCAux::new().graphics_exposures(0))
        .map_err(|e| err(&e))?
        .check()
        .map_err(|e| err(&e))?;
    image.gc = gc;
    Ok(image)
}

impl SharedImage {
    pub fn len(&self) -> usize {
        self.len
    }

    /// A new image of `len` bytes for the same window (this one goes when dropped).
    pub fn grown(&self, len: usize) -> Result<SharedImage, String> {
        share(&self.conn, self.window, len)
    }

    /// The shared pixels, to fill before [`put`](Self::put).
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes mapped for the value's life; the server only reads them during `put`,
        // which has returned.
        unsafe { std::slice::from_raw_parts_mut(self.addr.as_ptr(), self.len) }
    }

    /// Copies `region` (`[x, y, width, height]`) of an image of `size` pixels, rows `stride` pixels
    /// apart, to the same place in the window, and returns once the server has copied it (the
    /// memory may then be written again).
    pub fn put(&self, region: [u32; 4], size: [u16; 2], stride: u16) -> Result<(), String> {
        let small = |v: u32| u16::try_from(v).map_err(|e| e.to_string());
        let [x, y, w, h] = [small(region[0])?, small(region[1])?, small(region[2])?, small(region[3])?];
        let (dx, dy) = (i16::try_from(x).map_err(|e| e.to_string())?, i16::try_from(y).map_err(|e| e.to_string())?);
        let format = ImageFormat::Z_PIXMAP.into();
        let conn = &self.conn;
        conn.shm_put_image(
            self.window,
            self.gc,
            stride,
            size[1],
            x,
            y,
            w,
            h,
            dx,
            dy,
            self.depth,
            format,
            false,
            self.seg,
            0,
        )
        .map_err(|e| e.to_string())?;
        conn.sync().map_err(|e| e.to_string())
    }
}

impl Drop for SharedImage {
    fn drop(&mut self) {
        let _ = self.conn.shm_detach(self.seg);
        if self.gc != 0 {
            let _ = self.conn.free_gc(self.gc);
        }
        let _ = self.conn.sync();
        // SAFETY: mapped in `shared_image`, unmapped only here.
        unsafe { libc::shmdt(self.addr.as_ptr().cast()) };
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
