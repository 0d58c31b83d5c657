//! The memory goal of the live device state, held by a test that can fail: at most 1 KiB
//! of Eliot's memory per known device (100,000 known, 10,000 of them active). The book's
//! share of it is measured here by counting what this thread allocates while it builds
//! one, each allocation rounded up to the size class an allocator like Eliot's
//! (mimalloc) serves it from; the rest of the KiB is left for what a shard keeps beside
//! its book (timers, changed set) and for the allocator's own slack.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use super::book::Book;
use super::state::{Device, DeviceId, LastReading, Link, Presence};

/// Counts this thread's live bytes, by size class; the other threads' are not counted.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// The size class an allocation of `size` bytes is served from: 8-byte steps up to 64,
/// then four classes per doubling (mimalloc's bins).
fn size_class(size: usize) -> usize {
    if size <= 64 {
        return size.next_multiple_of(8).max(8);
    }
    let top = usize::BITS - 1 - (size - 1).leading_zeros();
    size.next_multiple_of(1 << (top - 2))
}

fn count(delta: isize) {
    // `try_with`: a thread being torn down frees without counting.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(size_class(layout.size()) as isize);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(size_class(layout.size()) as isize));
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(size_class(layout.size()) as isize);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(size_class(new_size) as isize - size_class(layout.size()) as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

const KNOWN: usize = 100_000;
const ACTIVE: usize = 10_000;

/// An active device, as heard for a while: online over a connection-less link (the link's
/// closer is not needed for its size), three sensor types' last readings, counts, rhythm.
fn heard(device: &mut Device, n: usize) {
    device.presence = Presence::Online;
    device.last_seen = Some(1_000);
    device.link = Some(Box::new(Link {
        peer: Some(SocketAddr::from(([10, 0, 0, 1], 40_000))),
        protocol: Some("mqtt-5"),
        connection: None,
    }));
    for sensor in ["gps", "temperature", "battery"] {
        device.add_last(LastReading {
            sensor_type: sensor.into(),
            ts: n as i64,
            data: r#"{"latitude":48.858370,"longitude":2.294481,"accuracy":4.5}"#.into(),
        });
    }
    device.rhythm.sample(200_000);
    device.counts.messages = 10;
}

#[test]
fn a_known_device_costs_the_book_well_under_a_kib() {
    let before = live();
    let mut book = Book::default();
    for i in 0..KNOWN {
        let id: DeviceId = Arc::from(format!("dev-{i:05}"));
        book.insert(id, Device::unheard(0, "provisioned"));
    }
    book.compact();
    let known = live() - before;
    for n in (0..KNOWN).step_by(KNOWN / ACTIVE) {
        book.update(&format!("dev-{n:05}"), |d| heard(d, n));
    }
    let all = live() - before;
    let per_known = known as f64 / KNOWN as f64;
    let per_active = (all - known) as f64 / ACTIVE as f64;
    println!("book: {per_known:.0} B per known device, {per_active:.0} B more per active one");
    assert_eq!(book.len(), KNOWN);
    assert!(
        per_known <= 400.0,
        "a known device costs the book {per_known:.0} B"
    );
    assert!(
        all as f64 / KNOWN as f64 <= 512.0,
        "with {ACTIVE} active, {:.0} B per known device",
        all as f64 / KNOWN as f64
    );
}
#[test]
fn a_device_fits_its_allocators_256_byte_class() {
    // Boxed in the book: a byte more and each one takes 320.
    assert!(
        std::mem::size_of::<Device>() <= 256,
        "{}",
        std::mem::size_of::<Device>()
    );
}
