//! Random number generation functions (PKCS#11 3.0 §5.14).

use cryptoki_sys::*;
use keyward_core::Code;

use crate::ffi::{entry, ptr};

/// C_SeedRandom.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    pSeed: CK_BYTE_PTR,
    ulSeedLen: CK_ULONG,
) -> CK_RV {
    entry("C_SeedRandom", |api| {
        // SAFETY: the caller's contract for (pSeed, ulSeedLen).
        let seed = unsafe { ptr::in_slice(pSeed.cast_const(), ulSeedLen) }?;
        api.seed_random(hSession, seed)
    })
}

/// C_GenerateRandom.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: CK_BYTE_PTR,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    entry("C_GenerateRandom", |api| {
        let n = ptr::to_usize(ulRandomLen)?;
        if n > 0 {
            ptr::require(RandomData)?;
        }
        let bytes = api.generate_random(hSession, n)?;
        if bytes.len() != n {
            return Err(Code::GeneralError.err("engine returned the wrong number of random bytes"));
        }
        // SAFETY: `RandomData` is non-NULL when `n > 0` and writable for `n` bytes; nothing
        // is written when `n == 0`.
        unsafe { ptr::copy_out(RandomData, &bytes) };
        Ok(())
    })
}
