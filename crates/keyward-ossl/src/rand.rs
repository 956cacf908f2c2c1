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
    fn RAND_get0_primary(ctx: *mut openssl_sys::OSSL_LIB_CTX) -> *mut libc::c_void;
    fn EVP_RAND_reseed(
        ctx: *mut libc::c_void,
        prediction_resistance: libc::c_int,
        ent: *const u8,
        ent_len: libc::size_t,
        addin: *const u8,
        addin_len: libc::size_t,
    ) -> libc::c_int;
}

/// Mix caller-supplied bytes into the primary DRBG as additional input (C_SeedRandom). The
/// DRBG reseeds from the operating system at the same time, so a poor seed never weakens it;
/// the private and public DRBGs pick the reseed up on their next use.
pub fn seed(bytes: &[u8]) -> Result<()> {
    let ctx = ctx::libctx()?;
    // SAFETY: `ctx` is a live library context; the returned DRBG is owned by it.
    let primary = unsafe { RAND_get0_primary(ctx.as_ptr()) };
    if primary.is_null() {
        return Err(Error(format!(
            "no primary DRBG: {}",
            openssl::error::ErrorStack::get()
        )));
    }
    // SAFETY: `primary` is a live DRBG of our context; `bytes` is valid for its length, and a
    // NULL entropy pointer with length 0 asks the DRBG to fetch entropy itself.
    let rc =
        unsafe { EVP_RAND_reseed(primary, 0, std::ptr::null(), 0, bytes.as_ptr(), bytes.len()) };
    if rc == 1 {
        Ok(())
    } else {
        Err(Error(format!(
            "DRBG reseed failed: {}",
            openssl::error::ErrorStack::get()
        )))
    }
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
    fn seeding_keeps_output_random() {
        seed(b"application entropy").unwrap();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill(&mut a).unwrap();
        fill_private(&mut b).unwrap();
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }
}
