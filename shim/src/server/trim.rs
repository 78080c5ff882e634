//! Keeping an idle shim small.
//!
//! The shim is the whole `skiff` binary (one binary to ship), so starting a container faults
//! in megabytes of code and read-only data it will not run again while it idles (ttrpc setup,
//! the runtime, spec parsing), plus the kernel's fault-around neighbours. Those pages are
//! shared page cache, but they count in every shim's RSS. Once the container's process is
//! running, the shim drops its mappings of such pages: what an idle shim touches (poll, waitpid,
//! a Wait reply) faults back in on its next use, straight from the page cache.
//!
//! Only mappings that are file-backed, not writable and hold no private (anonymous) pages are
//! dropped: for those the page cache holds exactly the mapped bytes, so dropping is invisible
//! to the program. RELRO data (relocated, then made read-only) holds private pages and is kept.

use std::fs;

/// Limits glibc to one malloc arena: the shim's threads allocate little, and a per-thread
/// arena costs each thread its own dirty heap pages. Call before any thread starts.
pub(crate) fn one_malloc_arena() {
    // SAFETY: mallopt only sets an allocator tunable; M_ARENA_MAX with a positive value is
    // always valid and no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Drops this process's mappings of clean, read-only, file-backed pages (see the module doc).
/// Best effort: a mapping that cannot be read or advised is left alone.
pub(crate) fn drop_clean_file_pages() {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in droppable(&smaps) {
        // SAFETY: [start, end) is a whole mapping of this process that is read-only,
        // file-backed and has no anonymous pages, so MADV_DONTNEED only removes page-table
        // entries whose contents the page cache still holds; the next access refaults the same
        // bytes. No memory owned by Rust objects is affected.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The address ranges of `/proc/self/smaps` entries that are safe to drop.
fn droppable(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((range, perms, path)) = mapping_header(first, line) {
            current = None;
            let read_only_private =
                perms.starts_with('r') && !perms.contains('w') && perms.ends_with('p');
            if read_only_private && path.starts_with('/') && !path.ends_with("(deleted)") {
                current = range_of(range);
            }
        } else if first == "Anonymous:" {
            let anon = fields.next().and_then(|v| v.parse::<u64>().ok());
            if let (Some(r), Some(0)) = (current.take(), anon) {
                out.push(r);
            }
        }
    }
    out
}

/// `start-end perms offset dev inode path` lines start a mapping; attribute lines end in ':'.
fn mapping_header<'a>(first: &'a str, line: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
    if first.ends_with(':') || !first.contains('-') {
        return None;
    }
    let mut parts = line.splitn(6, ' ');
    let range = parts.next()?;
    let perms = parts.next()?;
    let path = parts.nth(3).map(str::trim).unwrap_or("");
    Some((range, perms, path))
}

fn range_of(range: &str) -> Option<(usize, usize)> {
    let (a, b) = range.split_once('-')?;
    let start = usize::from_str_radix(a, 16).ok()?;
    let end = usize::from_str_radix(b, 16).ok()?;
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5600000000-5600100000 r--p 00000000 fe:01 123 /usr/bin/skiff
Size:               1024 kB
Anonymous:             0 kB
5600100000-5600400000 r-xp 00100000 fe:01 123 /usr/bin/skiff
Size:               3072 kB
Anonymous:             0 kB
5600400000-5600500000 r--p 00400000 fe:01 123 /usr/bin/skiff
Size:               1024 kB
Anonymous:           900 kB
5600500000-5600510000 rw-p 00500000 fe:01 123 /usr/bin/skiff
Anonymous:            64 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
Anonymous:          1024 kB
7f0000200000-7f0000201000 r--p 00000000 fe:01 9 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
7f0000300000-7f0000301000 r--s 00000000 fe:01 10 /dev/shm/x
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_private_file_mappings_are_dropped() {
        assert_eq!(
            droppable(SMAPS),
            vec![
                (0x5600000000, 0x5600100000),
                (0x5600100000, 0x5600400000),
                (0x7f0000200000, 0x7f0000201000),
            ]
        );
    }

    #[test]
    fn dropping_our_own_pages_keeps_the_program_working() {
        let before = std::fs::read_to_string("/proc/self/status").unwrap();
        drop_clean_file_pages();
        // Code, read-only data and libc all fault back in: formatting, allocation, I/O.
        let after = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(before.contains("VmRSS") && after.contains("VmRSS"));
        assert_eq!(format!("{:?}", vec![1, 2, 3]), "[1, 2, 3]");
    }
}
