//! The single implementation of the variable-length output convention (PKCS#11 3.0 §5.2):
//! a NULL buffer gets the needed length and CKR_OK; a short one gets the needed length and
//! CKR_BUFFER_TOO_SMALL; otherwise the data is copied and its length written back.
//! Never writes past the caller's stated capacity, never reads the caller's buffer.

use std::marker::PhantomData;

use cryptoki_sys::CK_ULONG;
use keyward_core::types::{OutCap, Output};
use keyward_core::{Code, Result};

use super::ptr;

/// A caller's (pBuf, pulLen) pair, with the capacity read once on entry.
pub(crate) struct OutBuf<'a, T> {
    buf: *mut T,
    len: *mut CK_ULONG,
    cap: OutCap,
    _caller: PhantomData<&'a mut [T]>,
}

impl<'a, T: Copy> OutBuf<'a, T> {
    /// Take the caller's buffer and length pointer. `len` NULL is CKR_ARGUMENTS_BAD; `buf`
    /// NULL is a length query (`cap() == None`).
    ///
    /// # Safety
    /// `len`, if not NULL, must be valid for reading and writing a CK_ULONG for `'a`; `buf`, if
    /// not NULL, must be valid for writing `*len` elements of `T` for `'a`.
    pub(crate) unsafe fn new(buf: *mut T, len: *mut CK_ULONG) -> Result<OutBuf<'a, T>> {
        // SAFETY: the caller's contract covers reading `*len`; NULL is refused inside.
        let n = unsafe { ptr::read(len.cast_const()) }?;
        let cap = if buf.is_null() {
            None
        } else {
            Some(ptr::to_usize(n)?)
        };
        Ok(OutBuf {
            buf,
            len,
            cap,
            _caller: PhantomData,
        })
    }

    /// The room the caller gave, in elements; `None` for a length query.
    pub(crate) fn cap(&self) -> OutCap {
        self.cap
    }

    fn set_len(&self, n: usize) -> Result<()> {
        let n = ptr::to_ulong(n)?;
        // SAFETY: `len` was checked non-NULL in `new` and is writable for 'a by its contract.
        unsafe { ptr::write(self.len, n) }
    }

    /// Apply the convention to a complete answer.
    pub(crate) fn put(self, data: &[T]) -> Result<()> {
        match self.cap {
            None => self.set_len(data.len()),
            Some(cap) if cap < data.len() => {
                self.set_len(data.len())?;
                Err(Code::BufferTooSmall.err(format!(
                    "output needs {} elements, buffer holds {cap}",
                    data.len()
                )))
            }
            Some(_) => {
                // SAFETY: `buf` is non-NULL (cap is Some) and holds at least `cap` >=
                // `data.len()` elements by the contract of `new`.
                unsafe { ptr::copy_out(self.buf, data) };
                self.set_len(data.len())
            }
        }
    }
}

impl OutBuf<'_, u8> {
    /// Write back an engine [`Output`].
    pub(crate) fn finish(self, out: Output) -> Result<()> {
        match out {
            Output::Len(n) => self.set_len(n),
            Output::TooSmall(n) => {
                self.set_len(n)?;
                Err(Code::BufferTooSmall.err(format!("output needs {n} bytes")))
            }
            // The capacity is checked again: the engine's answer is not trusted to fit.
            Output::Data(d) => self.put(&d),
        }
    }
}

/// A blank-padded, not NUL-terminated string field of a CK_*_INFO structure; cut at a
/// character boundary when too long.
pub(crate) fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    const GUARD: u8 = 0xA5;

    fn data(n: u8) -> Output {
        Output::Data(Zeroizing::new((1..=n).collect()))
    }

    #[test]
    fn null_buffer_gets_length_and_ok() {
        let mut len: CK_ULONG = 0;
        // SAFETY: `len` is a live local; NULL buffer is a length query.
        let out = unsafe { OutBuf::<u8>::new(std::ptr::null_mut(), &mut len) }.unwrap();
        assert_eq!(out.cap(), None);
        out.finish(Output::Len(40)).unwrap();
        assert_eq!(len, 40);
    }

    #[test]
    fn short_buffer_untouched_with_needed_length() {
        let mut buf = [GUARD; 8];
        let mut len: CK_ULONG = 4;
        // SAFETY: `buf` holds 8 >= 4 bytes.
        let out = unsafe { OutBuf::new(buf.as_mut_ptr(), &mut len) }.unwrap();
        assert_eq!(out.cap(), Some(4));
        let e = out.finish(Output::TooSmall(6)).unwrap_err();
        assert_eq!(e.rv(), cryptoki_sys::CKR_BUFFER_TOO_SMALL);
        assert_eq!(len, 6);
        assert_eq!(buf, [GUARD; 8]);
    }

    #[test]
    fn data_is_copied_without_touching_guard_bytes() {
        let mut buf = [GUARD; 8];
        let mut len: CK_ULONG = 5;
        // SAFETY: `buf` holds 8 >= 5 bytes.
        let out = unsafe { OutBuf::new(buf.as_mut_ptr(), &mut len) }.unwrap();
        out.finish(data(5)).unwrap();
        assert_eq!(len, 5);
        assert_eq!(buf, [1, 2, 3, 4, 5, GUARD, GUARD, GUARD]);
    }

    #[test]
    fn oversized_engine_data_is_refused_not_overflowed() {
        let mut buf = [GUARD; 8];
        let mut len: CK_ULONG = 3;
        // SAFETY: `buf` holds 8 >= 3 bytes.
        let out = unsafe { OutBuf::new(buf.as_mut_ptr(), &mut len) }.unwrap();
        let e = out.finish(data(4)).unwrap_err();
        assert_eq!(e.code(), Code::BufferTooSmall);
        assert_eq!(len, 4);
        assert_eq!(buf, [GUARD; 8]);
    }

    #[test]
    fn null_length_pointer_is_arguments_bad() {
        let mut buf = [0u8; 4];
        // SAFETY: NULL length pointer is refused before any access.
        let e = unsafe { OutBuf::new(buf.as_mut_ptr(), std::ptr::null_mut()) }
            .err()
            .unwrap();
        assert_eq!(e.code(), Code::ArgumentsBad);
    }

    #[test]
    fn arrays_of_ulong() {
        let mut list = [CK_ULONG::MAX; 3];
        let mut count: CK_ULONG = 2;
        // SAFETY: `list` holds 3 >= 2 elements.
        let out = unsafe { OutBuf::new(list.as_mut_ptr(), &mut count) }.unwrap();
        assert_eq!(
            out.put(&[7, 8, 9]).unwrap_err().code(),
            Code::BufferTooSmall
        );
        assert_eq!(count, 3);
        assert_eq!(list, [CK_ULONG::MAX; 3]);
        // SAFETY: now the caller states 3 elements, which `list` holds.
        let out = unsafe { OutBuf::new(list.as_mut_ptr(), &mut count) }.unwrap();
        out.put(&[7, 8, 9]).unwrap();
        assert_eq!(list, [7, 8, 9]);
    }

    #[test]
    fn padding() {
        assert_eq!(&padded::<8>("Key"), b"Key     ");
        assert_eq!(&padded::<4>("Keyward"), b"Keyw");
        // "é" is two bytes: never cut in the middle of a character.
        assert_eq!(&padded::<4>("abcé"), b"abc ");
    }
}
