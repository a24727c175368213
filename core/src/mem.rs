//! Memory helpers shared by the big output buffers (reading columns, distance matrices).

/// On Linux, advise the kernel to back `bytes` bytes from `start` with transparent huge
/// pages when the buffer is 4 MiB or more, before its first touch (as numpy does for its
/// own large arrays): a fresh 16 MB column otherwise costs ~4,000 page faults. Elsewhere,
/// and for smaller buffers, nothing. A failure of the advice is harmless.
pub(crate) fn advise_huge_pages<T>(start: *const T, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        if bytes >= 4 << 20 {
            let start = start as usize;
            let aligned = (start + 4095) & !4095;
            let end = start + bytes;
            if end > aligned {
                // SAFETY: the caller's buffer holds [start, start + bytes), so [aligned, end)
                // lies inside it; MADV_HUGEPAGE only changes how the kernel backs the pages.
                unsafe {
                    libc::madvise(
                        aligned as *mut libc::c_void,
                        end - aligned,
                        libc::MADV_HUGEPAGE,
                    );
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}
