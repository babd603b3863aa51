//! An overall cap on a run's memory (issue 15): the engine's limits bound
//! each value (16 MiB strings, 100,000 array or map entries), not how many a
//! playbook keeps alive, so 30 call frames of 15 MiB strings reached 1.8 GB.
//! The binary counts its heap (an allocator that adds and subtracts sizes,
//! one atomic operation each), and the engine stops the script between two
//! operations once the heap exceeds the cap. One operation allocates at most
//! a few values' worth, so the heap ends within ~100 MiB above the cap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The cap when `MESH_RUN_MAX_MEMORY` is not set: far above a real run
/// (~100 MB), far below what a runaway script would take.
pub const DEFAULT_LIMIT: usize = 2 << 30;

static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes in use. Installed by the binary.
pub struct CountingAllocator;

// SAFETY: every call is forwarded to `System` unchanged; only a counter is kept.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_add(new_size, Ordering::Relaxed);
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

/// Heap bytes in use; 0 when the counting allocator is not installed (tests).
pub fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

/// The cap: `MESH_RUN_MAX_MEMORY` (`512MiB`, `4GiB`, or bytes), else [`DEFAULT_LIMIT`].
pub fn limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("MESH_RUN_MAX_MEMORY")
            .ok()
            .and_then(|v| parse_size(&v))
            .unwrap_or(DEFAULT_LIMIT)
    })
}

fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" => 10,
        "MiB" | "M" => 20,
        "GiB" | "G" => 30,
        _ => return None,
    };
    number.parse::<usize>().ok()?.checked_mul(1 << shift)
}

/// `1.5 GiB`-style, for the error.
pub fn human(bytes: usize) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("1MB"), None);
        assert_eq!(human(300 << 20), "300 MiB");
    }
}
