//! OpenSSL 3 entry points that openssl-sys does not declare (the library-context `_ex`
//! variants), plus small owning wrappers for raw OpenSSL objects.

use std::ffi::{c_char, c_int, c_long};
use std::ptr::NonNull;

use foreign_types::ForeignTypeRef;
use openssl_sys as sys;

use crate::{Error, Result, ctx};

unsafe extern "C" {
    pub(crate) fn EVP_PKEY_CTX_new_from_pkey(
        libctx: *mut sys::OSSL_LIB_CTX,
        pkey: *mut sys::EVP_PKEY,
        propquery: *const c_char,
    ) -> *mut sys::EVP_PKEY_CTX;
    pub(crate) fn d2i_PUBKEY_ex(
        a: *mut *mut sys::EVP_PKEY,
        pp: *mut *const u8,
        length: c_long,
        libctx: *mut sys::OSSL_LIB_CTX,
        propq: *const c_char,
    ) -> *mut sys::EVP_PKEY;
    pub(crate) fn EC_GROUP_new_by_curve_name_ex(
        libctx: *mut sys::OSSL_LIB_CTX,
        propq: *const c_char,
        nid: c_int,
    ) -> *mut sys::EC_GROUP;
    pub(crate) fn EC_GROUP_get0_order(group: *const sys::EC_GROUP) -> *const sys::BIGNUM;
    pub(crate) fn BN_CTX_new_ex(libctx: *mut sys::OSSL_LIB_CTX) -> *mut sys::BN_CTX;
    pub(crate) fn BN_is_zero(a: *const sys::BIGNUM) -> c_int;
    pub(crate) fn EVP_PKEY_pairwise_check(ctx: *mut sys::EVP_PKEY_CTX) -> c_int;
}

/// The private library context as a raw pointer.
pub(crate) fn libctx_ptr() -> Result<*mut sys::OSSL_LIB_CTX> {
    Ok(ctx::libctx()?.as_ptr())
}

/// An error carrying OpenSSL's error queue (which this drains).
pub(crate) fn ossl_error(what: &str) -> Error {
    Error(format!("{what}: {}", openssl::error::ErrorStack::get()))
}

/// `Ok(())` when an OpenSSL call returned 1.
pub(crate) fn check(rc: c_int, what: &str) -> Result<()> {
    if rc == 1 {
        Ok(())
    } else {
        Err(ossl_error(what))
    }
}

/// Empty OpenSSL's error queue after an expected failure (a bad signature) so that it is not
/// reported with a later, unrelated error.
pub(crate) fn clear_errors() {
    // SAFETY: ERR_clear_error only touches this thread's error queue.
    unsafe { sys::ERR_clear_error() }
}

/// An owned BIGNUM, cleared on drop because it may hold a private value.
pub(crate) struct Bn(NonNull<sys::BIGNUM>);

impl Bn {
    /// A BIGNUM from big-endian bytes; allocated in OpenSSL's secure heap flavour so that
    /// parameters built from it are cleared when freed.
    pub(crate) fn from_be(bytes: &[u8]) -> Result<Bn> {
        let len = c_int::try_from(bytes.len()).map_err(|_| Error("big integer too long".into()))?;
        // SAFETY: BN_secure_new has no preconditions.
        let bn = NonNull::new(unsafe { sys::BN_secure_new() })
            .ok_or_else(|| ossl_error("BN_secure_new"))?;
        let bn = Bn(bn);
        // SAFETY: `bytes` is valid for `len` bytes and `bn` is a live BIGNUM that receives them.
        let r = unsafe { sys::BN_bin2bn(bytes.as_ptr(), len, bn.as_ptr()) };
        if r.is_null() {
            return Err(ossl_error("BN_bin2bn"));
        }
        // SAFETY: `bn` is live; the flag selects constant-time code paths for secret values.
        unsafe { sys::BN_set_flags(bn.as_ptr(), sys::BN_FLG_CONSTTIME) };
        Ok(bn)
    }

    /// Take ownership of a BIGNUM returned by OpenSSL.
    pub(crate) fn from_raw(p: *mut sys::BIGNUM) -> Option<Bn> {
        NonNull::new(p).map(Bn)
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::BIGNUM {
        self.0.as_ptr()
    }

    /// Big-endian bytes without leading zeros (zero is one 0x00 byte).
    pub(crate) fn to_be(&self) -> Vec<u8> {
        // SAFETY: `self` is a live BIGNUM.
        let bits = unsafe { sys::BN_num_bits(self.as_ptr()) };
        let len = usize::try_from(bits).unwrap_or(0).div_ceil(8).max(1);
        self.to_be_padded(len).unwrap_or_default()
    }

    /// Big-endian bytes left-padded to `len`; `None` when the value does not fit.
    pub(crate) fn to_be_padded(&self, len: usize) -> Option<Vec<u8>> {
        let clen = c_int::try_from(len).ok()?;
        let mut out = vec![0u8; len];
        // SAFETY: `out` has room for `len` bytes; BN_bn2binpad writes at most `tolen` bytes and
        // returns -1 when the value needs more.
        let n = unsafe { sys::BN_bn2binpad(self.as_ptr(), out.as_mut_ptr(), clen) };
        if n < 0 { None } else { Some(out) }
    }
}

impl Drop for Bn {
    fn drop(&mut self) {
        // SAFETY: we own the BIGNUM; BN_clear_free wipes it before freeing.
        unsafe { sys::BN_clear_free(self.as_ptr()) }
    }
}

/// An owned OSSL_PARAM_BLD. The builder records pointers to pushed values and copies them
/// only in `build`, so it owns a copy of every value until then.
pub(crate) struct ParamBuilder {
    bld: NonNull<sys::OSSL_PARAM_BLD>,
    bns: Vec<Bn>,
    octets: Vec<zeroize::Zeroizing<Vec<u8>>>,
}

impl ParamBuilder {
    pub(crate) fn new() -> Result<ParamBuilder> {
        // SAFETY: no preconditions.
        let bld = NonNull::new(unsafe { sys::OSSL_PARAM_BLD_new() })
            .ok_or_else(|| ossl_error("OSSL_PARAM_BLD_new"))?;
        Ok(ParamBuilder {
            bld,
            bns: Vec::new(),
            octets: Vec::new(),
        })
    }

    /// Push a big integer given big-endian.
    pub(crate) fn push_bn(&mut self, key: &'static std::ffi::CStr, be: &[u8]) -> Result<()> {
        let bn = Bn::from_be(be)?;
        let p = bn.as_ptr();
        self.bns.push(bn);
        // SAFETY: the builder is live; `p` stays alive in `self.bns` until `build` copied it,
        // and `key` is static (the built array points at it).
        check(
            unsafe { sys::OSSL_PARAM_BLD_push_BN(self.bld.as_ptr(), key.as_ptr(), p) },
            "OSSL_PARAM_BLD_push_BN",
        )
    }

    pub(crate) fn push_utf8(
        &mut self,
        key: &'static std::ffi::CStr,
        value: &'static std::ffi::CStr,
    ) -> Result<()> {
        // SAFETY: live builder; both strings are static and NUL-terminated.
        check(
            unsafe {
                sys::OSSL_PARAM_BLD_push_utf8_string(
                    self.bld.as_ptr(),
                    key.as_ptr(),
                    value.as_ptr(),
                    0,
                )
            },
            "OSSL_PARAM_BLD_push_utf8_string",
        )
    }

    pub(crate) fn push_octets(&mut self, key: &'static std::ffi::CStr, value: &[u8]) -> Result<()> {
        let copy = zeroize::Zeroizing::new(value.to_vec());
        let (p, len) = (copy.as_ptr(), copy.len());
        self.octets.push(copy);
        // SAFETY: live builder; the heap copy at `p` stays in `self.octets` until `build`.
        check(
            unsafe {
                sys::OSSL_PARAM_BLD_push_octet_string(
                    self.bld.as_ptr(),
                    key.as_ptr(),
                    p.cast(),
                    len,
                )
            },
            "OSSL_PARAM_BLD_push_octet_string",
        )
    }

    pub(crate) fn push_size(&mut self, key: &'static std::ffi::CStr, value: usize) -> Result<()> {
        // SAFETY: live builder and a static key.
        check(
            unsafe { sys::OSSL_PARAM_BLD_push_size_t(self.bld.as_ptr(), key.as_ptr(), value) },
            "OSSL_PARAM_BLD_push_size_t",
        )
    }

    pub(crate) fn build(self) -> Result<Params> {
        // SAFETY: live builder whose recorded values are all still owned by `self`; the result
        // is an independent allocation owned by `Params`.
        NonNull::new(unsafe { sys::OSSL_PARAM_BLD_to_param(self.bld.as_ptr()) })
            .map(Params)
            .ok_or_else(|| ossl_error("OSSL_PARAM_BLD_to_param"))
    }
}

impl Drop for ParamBuilder {
    fn drop(&mut self) {
        // SAFETY: we own the builder.
        unsafe { sys::OSSL_PARAM_BLD_free(self.bld.as_ptr()) }
    }
}

/// An owned OSSL_PARAM array (from a builder); secret entries are cleared when freed.
pub(crate) struct Params(NonNull<sys::OSSL_PARAM>);

impl Params {
    pub(crate) fn as_ptr(&self) -> *mut sys::OSSL_PARAM {
        self.0.as_ptr()
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        // SAFETY: we own the array built by OSSL_PARAM_BLD_to_param.
        unsafe { sys::OSSL_PARAM_free(self.0.as_ptr()) }
    }
}

/// An owned EVP_PKEY_CTX. Not shareable between threads, but movable.
pub(crate) struct PkeyCtx(NonNull<sys::EVP_PKEY_CTX>);

// SAFETY: an EVP_PKEY_CTX has no thread affinity; it is only ever used by its one owner.
unsafe impl Send for PkeyCtx {}

/// The key type's OID, another name the default provider registers for it. A name OpenSSL
/// maps to a NID ("EC", "RSA", ...) makes EVP_PKEY_CTX_new_from_name prefer an ENGINE the host
/// process made the default for that key type, in every library context: in a program that
/// loaded libp11's pkcs11 engine as default (`openssl -engine pkcs11`, curl, nginx) the
/// context would be the engine's legacy one, which cannot import a key from its components
/// (nor generate one with our parameters). A dotted OID has no NID by name, so the key
/// management is always fetched from our provider.
fn provider_only_name(name: &'static std::ffi::CStr) -> &'static std::ffi::CStr {
    match name.to_bytes() {
        b"EC" => c"1.2.840.10045.2.1",
        b"RSA" => c"1.2.840.113549.1.1.1",
        b"X25519" => c"1.3.101.110",
        b"X448" => c"1.3.101.111",
        b"ED25519" => c"1.3.101.112",
        b"ED448" => c"1.3.101.113",
        _ => name,
    }
}

impl PkeyCtx {
    /// A context for an algorithm by name (key generation, import).
    pub(crate) fn from_name(name: &'static std::ffi::CStr) -> Result<PkeyCtx> {
        let lib = libctx_ptr()?;
        let name = provider_only_name(name);
        // SAFETY: `lib` is our live library context and `name` a static C string.
        let p = unsafe { sys::EVP_PKEY_CTX_new_from_name(lib, name.as_ptr(), std::ptr::null()) };
        NonNull::new(p)
            .map(PkeyCtx)
            .ok_or_else(|| ossl_error("EVP_PKEY_CTX_new_from_name"))
    }

    /// A context for operations with `pkey` (it takes its own reference to the key).
    pub(crate) fn from_pkey(pkey: *mut sys::EVP_PKEY) -> Result<PkeyCtx> {
        let lib = libctx_ptr()?;
        // SAFETY: `lib` is live and `pkey` a live key owned by the caller; the context
        // up-references the key.
        let p = unsafe { EVP_PKEY_CTX_new_from_pkey(lib, pkey, std::ptr::null()) };
        NonNull::new(p)
            .map(PkeyCtx)
            .ok_or_else(|| ossl_error("EVP_PKEY_CTX_new_from_pkey"))
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::EVP_PKEY_CTX {
        self.0.as_ptr()
    }
}

impl Drop for PkeyCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context.
        unsafe { sys::EVP_PKEY_CTX_free(self.0.as_ptr()) }
    }
}
