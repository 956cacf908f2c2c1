//! Random bytes from the private context's DRBG.

use foreign_types::ForeignTypeRef;

use crate::{Error, Result, ctx};

unsafe extern "C" {
    fn RAND_bytes_ex(
        ctx: *mut openssl_sys::OSSL_LIB_CTX,
        buf: *mut u8,
        num: libc::size_t,
        strength: libc::c_uint,
    ) -> libc::c_int;
    fn RAND_priv_bytes_ex(
        ctx: *mut openssl_sys::OSSL_LIB_CTX,
        buf: *mut u8,
        num: libc::size_t,
        strength: libc::c_uint,
    ) -> libc::c_int;
}

/// Fill `buf` with random bytes for public values (nonces, serials, C_GenerateRandom).
pub fn fill(buf: &mut [u8]) -> Result<()> {
    let ctx = ctx::libctx()?;
    // SAFETY: `ctx` is a live library context and `buf` is a valid writable slice of
    // `buf.len()` bytes for the duration of the call.
    let rc = unsafe { RAND_bytes_ex(ctx.as_ptr(), buf.as_mut_ptr(), buf.len(), 256) };
    if rc == 1 {
        Ok(())
    } else {
        Err(Error(format!(
            "RAND_bytes_ex failed: {}",
            openssl::error::ErrorStack::get()
        )))
    }
}

/// Fill `buf` with random bytes for secret values (keys), from the private DRBG.
pub fn fill_private(buf: &mut [u8]) -> Result<()> {
    let ctx = ctx::libctx()?;
    // SAFETY: as in `fill`.
    let rc = unsafe { RAND_priv_bytes_ex(ctx.as_ptr(), buf.as_mut_ptr(), buf.len(), 256) };
    if rc == 1 {
        Ok(())
    } else {
        Err(Error(format!(
            "RAND_priv_bytes_ex failed: {}",
            openssl::error::ErrorStack::get()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill(&mut a).unwrap();
        fill_private(&mut b).unwrap();
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }
}
