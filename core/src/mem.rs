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

/// Columns of at least this many bytes are written with streaming stores
/// ([`append_streaming`]): they are far larger than the caches, so reading their old
/// cache lines in before overwriting them (what an ordinary store does) only doubles
/// the memory traffic. (64 KiB in the crate's unit tests, so that they exercise the
/// streaming path on small batches.)
pub(crate) const STREAM_MIN_BYTES: usize = if cfg!(test) { 64 << 10 } else { 4 << 20 };

/// Append `src` to `v` with non-temporal (streaming) stores when `v`'s free capacity
/// holds it and the destination is 16-byte aligned and `src` a whole number of 16-byte
/// blocks; otherwise an ordinary `extend_from_slice`. The values are the same either
/// way; call [`stream_fence`] after the last streaming append and before the memory
/// is handed to anyone else.
#[inline(always)]
pub(crate) fn append_streaming<T: Copy>(v: &mut Vec<T>, src: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let bytes = std::mem::size_of_val(src);
        let len = v.len();
        let dst = v.spare_capacity_mut();
        if dst.len() >= src.len()
            && bytes.is_multiple_of(16)
            && (dst.as_ptr() as usize).is_multiple_of(16)
        {
            let d = dst.as_mut_ptr().cast::<__m128i>();
            let s = src.as_ptr().cast::<__m128i>();
            for i in 0..bytes / 16 {
                // SAFETY: block i lies inside `src` (bytes / 16 blocks) and inside the
                // free capacity (dst.len() >= src.len() elements); the destination is
                // 16-byte aligned (checked), the source load is unaligned. SSE2 is part
                // of the x86_64 baseline.
                unsafe { _mm_stream_si128(d.add(i), _mm_loadu_si128(s.add(i))) };
            }
            // SAFETY: the loop above initialised elements len .. len + src.len()
            // (all `bytes` bytes of them), which lie within the capacity.
            unsafe { v.set_len(len + src.len()) };
            return;
        }
    }
    v.extend_from_slice(src);
}

/// Order the streaming stores of [`append_streaming`] before any later store (an
/// `sfence`; nothing elsewhere).
#[inline]
pub(crate) fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline; sfence has no other effect.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}
