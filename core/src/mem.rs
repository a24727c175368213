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

/// Hint the CPU to bring `items` into cache (one prefetch per 64-byte line; no effect
/// on results, nothing is read). A columnar pass calls it for the next chunk's input
/// while it computes the current one, so that the input's memory latency overlaps
/// with the arithmetic instead of stalling a load-only loop.
#[inline(always)]
pub(crate) fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = items.as_ptr().cast::<i8>();
        for at in (0..std::mem::size_of_val(items)).step_by(64) {
            // SAFETY: prefetching never faults and reads nothing; the address lies
            // inside `items` anyway. SSE is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(at)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}
