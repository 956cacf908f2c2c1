//! PBKDF2-HMAC-SHA256 (SP 800-132) from the private library context, for PIN-derived keys
//! when only FIPS-approved algorithms may be used.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::ptr::NonNull;

use openssl_sys as sys;

use crate::ffi::{check, libctx_ptr, ossl_error};
use crate::{Error, Result};

unsafe extern "C" {
    fn OSSL_PARAM_construct_utf8_string(
        key: *const c_char,
        buf: *mut c_char,
        bsize: libc::size_t,
    ) -> sys::OSSL_PARAM;
    fn OSSL_PARAM_construct_int(key: *const c_char, buf: *mut c_int) -> sys::OSSL_PARAM;
}

struct Kdf(NonNull<sys::EVP_KDF>);

impl Drop for Kdf {
    fn drop(&mut self) {
        // SAFETY: we own this reference to the fetched KDF.
        unsafe { sys::EVP_KDF_free(self.0.as_ptr()) }
    }
}

struct KdfCtx(NonNull<sys::EVP_KDF_CTX>);

impl Drop for KdfCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context; freeing it also clears the provider's copy of the password.
        unsafe { sys::EVP_KDF_CTX_free(self.0.as_ptr()) }
    }
}

/// Fill `out` with PBKDF2-HMAC-SHA256(`password`, `salt`, `iterations`).
///
/// OpenSSL's SP 800-132 lower-bound checks (1000 iterations, 128-bit salt) are switched off
/// so that published test vectors run; the caller's policy sets the real floors.
pub fn pbkdf2_hmac_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    out: &mut [u8],
) -> Result<()> {
    if iterations == 0 {
        return Err(Error("PBKDF2 needs at least one iteration".into()));
    }
    if out.is_empty() {
        return Err(Error("PBKDF2 output length is zero".into()));
    }
    let ctx = libctx_ptr()?;
    // SAFETY: `ctx` is the live private context; name and property query are NUL-terminated.
    let kdf =
        NonNull::new(unsafe { sys::EVP_KDF_fetch(ctx, c"PBKDF2".as_ptr(), std::ptr::null()) })
            .map(Kdf)
            .ok_or_else(|| ossl_error("EVP_KDF_fetch(PBKDF2)"))?;
    // SAFETY: `kdf` is a live fetched KDF.
    let kctx = NonNull::new(unsafe { sys::EVP_KDF_CTX_new(kdf.0.as_ptr()) })
        .map(KdfCtx)
        .ok_or_else(|| ossl_error("EVP_KDF_CTX_new"))?;

    // OpenSSL only reads these buffers during EVP_KDF_derive; a dummy byte stands in for an
    // empty slice so that no parameter carries a dangling pointer.
    let mut empty = 0u8;
    let pass_ptr: *mut c_void = if password.is_empty() {
        (&raw mut empty).cast()
    } else {
        password.as_ptr().cast_mut().cast()
    };
    let mut digest = *b"SHA256\0";
    let mut iter: c_uint = iterations;
    let mut no_checks: c_int = 1;
    let salt_ptr: *mut c_void = if salt.is_empty() {
        (&raw mut empty).cast()
    } else {
        salt.as_ptr().cast_mut().cast()
    };
    // SAFETY: every constructor only records the key and buffer pointers; all buffers outlive
    // the derive call below and OpenSSL only reads them (the `*mut` casts are for the constructors' signatures).
    let params = unsafe {
        [
            sys::OSSL_PARAM_construct_octet_string(c"pass".as_ptr(), pass_ptr, password.len()),
            sys::OSSL_PARAM_construct_octet_string(c"salt".as_ptr(), salt_ptr, salt.len()),
            sys::OSSL_PARAM_construct_uint(c"iter".as_ptr(), &raw mut iter),
            OSSL_PARAM_construct_utf8_string(
                c"digest".as_ptr(),
                digest.as_mut_ptr().cast(),
                digest.len() - 1,
            ),
            OSSL_PARAM_construct_int(c"pkcs5".as_ptr(), &raw mut no_checks),
            sys::OSSL_PARAM_construct_end(),
        ]
    };
    // SAFETY: `kctx` is live, `out` is writable for its length, and `params` is an
    // end-terminated array whose buffers are alive for the duration of the call.
    let rc = unsafe {
        sys::EVP_KDF_derive(
            kctx.0.as_ptr(),
            out.as_mut_ptr(),
            out.len(),
            params.as_ptr(),
        )
    };
    check(rc, "EVP_KDF_derive(PBKDF2)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7914_vectors() {
        // RFC 7914 section 11, PBKDF2-HMAC-SHA256 test vectors.
        let mut out = [0u8; 64];
        pbkdf2_hmac_sha256(b"passwd", b"salt", 1, &mut out).unwrap();
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
        pbkdf2_hmac_sha256(b"Password", b"NaCl", 80000, &mut out).unwrap();
        assert_eq!(
            hex::encode(out),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
             a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
        );
    }

    #[test]
    fn matches_independent_implementation() {
        // Python hashlib.pbkdf2_hmac('sha256', b'pin-1234', b'0123456789abcdef', 1000, 32).
        let mut out = [0u8; 32];
        pbkdf2_hmac_sha256(b"pin-1234", b"0123456789abcdef", 1000, &mut out).unwrap();
        assert_eq!(
            hex::encode(out),
            "9cf5b92b30f0a0c0370eb6bff985462caecd7b674a4e4f1ff6edd6c8546b6abf"
        );
    }

    #[test]
    fn refuses_zero_iterations_and_empty_output() {
        let mut out = [0u8; 32];
        assert!(pbkdf2_hmac_sha256(b"p", b"s", 0, &mut out).is_err());
        assert!(pbkdf2_hmac_sha256(b"p", b"s", 1, &mut []).is_err());
    }
}
