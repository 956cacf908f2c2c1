//! Raw pointer checks shared by every C entry point (PKCS#11 3.0 §5.1): NULL pointers, lengths
//! that overflow `usize`, unaligned reads and writes.

use std::mem::size_of;
use std::ptr;

use cryptoki_sys::CK_ULONG;
use keyward_core::{Code, Result};

/// A caller's CK_ULONG length as `usize`; one that does not fit is CKR_ARGUMENTS_BAD.
pub(crate) fn to_usize(n: CK_ULONG) -> Result<usize> {
    usize::try_from(n).map_err(|_| Code::ArgumentsBad.err("length does not fit in memory"))
}

/// A length for the caller as CK_ULONG.
pub(crate) fn to_ulong(n: usize) -> Result<CK_ULONG> {
    CK_ULONG::try_from(n).map_err(|_| Code::GeneralError.err("length does not fit in CK_ULONG"))
}

/// Borrow `len` elements at `p`. NULL with length 0 is an empty slice; NULL with a non-zero
/// length, a misaligned pointer or a size beyond `isize::MAX` is CKR_ARGUMENTS_BAD.
///
/// # Safety
/// If `p` is not NULL it must point to `len` initialised elements that stay valid and unchanged
/// for `'a`.
pub(crate) unsafe fn in_slice<'a, T>(p: *const T, len: CK_ULONG) -> Result<&'a [T]> {
    let n = to_usize(len)?;
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Code::ArgumentsBad.err("NULL buffer with a non-zero length"));
    }
    if !p.is_aligned() {
        return Err(Code::ArgumentsBad.err("misaligned array"));
    }
    let bytes = n.checked_mul(size_of::<T>());
    if bytes.is_none_or(|b| b > isize::MAX as usize) {
        return Err(Code::ArgumentsBad.err("buffer length too large"));
    }
    // SAFETY: `p` is non-NULL and aligned, the total size fits in isize, and the caller
    // guarantees `n` initialised elements valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Read one value (unaligned); NULL is CKR_ARGUMENTS_BAD.
///
/// # Safety
/// If `p` is not NULL it must be valid for reading a `T`.
pub(crate) unsafe fn read<T: Copy>(p: *const T) -> Result<T> {
    if p.is_null() {
        return Err(Code::ArgumentsBad.err("NULL pointer"));
    }
    // SAFETY: non-NULL and valid for reads by the caller's contract; no alignment assumed.
    Ok(unsafe { ptr::read_unaligned(p) })
}

/// Read one value if `p` is not NULL.
///
/// # Safety
/// As [`read`].
pub(crate) unsafe fn read_opt<T: Copy>(p: *const T) -> Option<T> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and valid for reads by the caller's contract; no alignment assumed.
    Some(unsafe { ptr::read_unaligned(p) })
}

/// Write one value (unaligned); NULL is CKR_ARGUMENTS_BAD.
///
/// # Safety
/// If `p` is not NULL it must be valid for writing a `T`.
pub(crate) unsafe fn write<T>(p: *mut T, v: T) -> Result<()> {
    if p.is_null() {
        return Err(Code::ArgumentsBad.err("NULL output pointer"));
    }
    // SAFETY: non-NULL and valid for writes by the caller's contract; no alignment assumed.
    unsafe { ptr::write_unaligned(p, v) };
    Ok(())
}

/// Fail with CKR_ARGUMENTS_BAD unless `p` is non-NULL; used to reject a call before it has
/// any effect when its output pointer is missing.
pub(crate) fn require<T>(p: *const T) -> Result<()> {
    if p.is_null() {
        return Err(Code::ArgumentsBad.err("NULL output pointer"));
    }
    Ok(())
}

/// Copy `src` to `dst` byte-wise (no alignment assumed). The caller checked the capacity.
///
/// # Safety
/// `dst` must be non-NULL and valid for writing `src.len()` elements of `T`.
pub(crate) unsafe fn copy_out<T: Copy>(dst: *mut T, src: &[T]) {
    if src.is_empty() {
        return;
    }
    // SAFETY: `dst` holds room for `src.len()` elements by the caller's contract; byte copies
    // need no alignment, and a caller buffer never overlaps our owned `src`.
    unsafe {
        ptr::copy_nonoverlapping(
            src.as_ptr().cast::<u8>(),
            dst.cast::<u8>(),
            size_of_val(src),
        )
    };
}

/// Copy `len` bytes at `p` into an owned vector; NULL with a non-zero length is `bad`.
///
/// # Safety
/// If `p` is not NULL it must be valid for reading `len` bytes.
pub(crate) unsafe fn copy_in(p: *const u8, len: usize, bad: Code) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(bad.err("NULL pointer with a non-zero length"));
    }
    if len > isize::MAX as usize {
        return Err(bad.err("length too large"));
    }
    // SAFETY: non-NULL, valid for `len` bytes by the caller's contract; u8 needs no alignment.
    Ok(unsafe { std::slice::from_raw_parts(p, len) }.to_vec())
}

/// The bytes of a NUL-terminated string, reading at most `max` bytes; `None` for NULL.
/// A string without a NUL within `max` bytes is returned cut at `max` (it then matches
/// nothing shorter).
///
/// # Safety
/// If `p` is not NULL it must point to a NUL-terminated string, or to at least `max` readable
/// bytes.
pub(crate) unsafe fn c_str(p: *const u8, max: usize) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    let mut out = Vec::new();
    for i in 0..max {
        // SAFETY: bytes up to and including the terminator are readable, and we stop there.
        let b = unsafe { p.wrapping_add(i).read() };
        if b == 0 {
            break;
        }
        out.push(b);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_slice_rules() {
        // SAFETY: NULL with length 0 is never dereferenced.
        let empty: &[u8] = unsafe { in_slice(ptr::null(), 0) }.unwrap();
        assert!(empty.is_empty());
        // SAFETY: NULL with a length must be refused before any access.
        let e = unsafe { in_slice::<u8>(ptr::null(), 3) }.unwrap_err();
        assert_eq!(e.code(), Code::ArgumentsBad);
        let data = [1u8, 2, 3];
        // SAFETY: `data` has three bytes.
        assert_eq!(unsafe { in_slice(data.as_ptr(), 3) }.unwrap(), &data);
        let words: [CK_ULONG; 2] = [0; 2];
        let mis = words
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<CK_ULONG>();
        // SAFETY: a misaligned pointer is refused before any access.
        let e = unsafe { in_slice(mis, 1) }.unwrap_err();
        assert_eq!(e.code(), Code::ArgumentsBad);
    }

    #[test]
    fn unaligned_read_and_write() {
        let mut buf = [0u8; 3 + size_of::<CK_ULONG>()];
        let p = buf.as_mut_ptr().wrapping_add(3).cast::<CK_ULONG>();
        // SAFETY: `p` has room for one CK_ULONG inside `buf`; access is unaligned.
        let v: CK_ULONG = 0x0102_0304;
        // SAFETY: as above.
        unsafe { write(p, v) }.unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { read(p.cast_const()) }.unwrap(), 0x0102_0304);
        assert_eq!(buf[..3], [0, 0, 0]);
        // SAFETY: NULL is refused before any access.
        let e = unsafe { write(ptr::null_mut::<CK_ULONG>(), 1) }.unwrap_err();
        assert_eq!(e.code(), Code::ArgumentsBad);
    }
}
