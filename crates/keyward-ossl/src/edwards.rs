//! Edwards (Ed25519, Ed448) and Montgomery (X25519, X448) keys: generation, raw import and
//! export, SubjectPublicKeyInfo (RFC 8410), and EdDSA signatures (RFC 8032).

use std::ffi::{CStr, c_char, c_int};
use std::fmt;
use std::ptr::{self, NonNull};
use std::sync::{LazyLock, Mutex};

use openssl_sys as sys;
use zeroize::Zeroizing;

use crate::der;
use crate::ffi::{self, PkeyCtx, check, clear_errors, ossl_error};
use crate::{Error, Result};

unsafe extern "C" {
    fn OSSL_PARAM_construct_utf8_string(
        key: *const c_char,
        buf: *mut c_char,
        bsize: usize,
    ) -> sys::OSSL_PARAM;
    fn EVP_DigestSignInit_ex(
        ctx: *mut sys::EVP_MD_CTX,
        pctx: *mut *mut sys::EVP_PKEY_CTX,
        mdname: *const c_char,
        libctx: *mut sys::OSSL_LIB_CTX,
        props: *const c_char,
        pkey: *mut sys::EVP_PKEY,
        params: *const sys::OSSL_PARAM,
    ) -> c_int;
    fn EVP_DigestVerifyInit_ex(
        ctx: *mut sys::EVP_MD_CTX,
        pctx: *mut *mut sys::EVP_PKEY_CTX,
        mdname: *const c_char,
        libctx: *mut sys::OSSL_LIB_CTX,
        props: *const c_char,
        pkey: *mut sys::EVP_PKEY,
        params: *const sys::OSSL_PARAM,
    ) -> c_int;
}

/// An Edwards or Montgomery curve of RFC 7748 / RFC 8032.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdCurve {
    /// Ed25519 (edwards25519).
    Ed25519,
    /// Ed448 (edwards448).
    Ed448,
    /// X25519 (curve25519).
    X25519,
    /// X448 (curve448).
    X448,
}

impl EdCurve {
    /// Every supported curve.
    pub const ALL: [EdCurve; 4] = [
        EdCurve::Ed25519,
        EdCurve::Ed448,
        EdCurve::X25519,
        EdCurve::X448,
    ];

    /// OpenSSL's algorithm name.
    const fn alg_name(self) -> &'static CStr {
        match self {
            EdCurve::Ed25519 => c"ED25519",
            EdCurve::Ed448 => c"ED448",
            EdCurve::X25519 => c"X25519",
            EdCurve::X448 => c"X448",
        }
    }

    /// Whether the curve is an Edwards (signature) curve rather than a Montgomery one.
    pub const fn is_edwards(self) -> bool {
        matches!(self, EdCurve::Ed25519 | EdCurve::Ed448)
    }

    /// Length of the raw public key and of the raw private key.
    pub const fn key_len(self) -> usize {
        match self {
            EdCurve::Ed25519 | EdCurve::X25519 => 32,
            EdCurve::Ed448 => 57,
            EdCurve::X448 => 56,
        }
    }

    /// The key size in bits as PKCS#11 reports it.
    pub const fn bits(self) -> usize {
        match self {
            EdCurve::Ed25519 | EdCurve::X25519 => 255,
            EdCurve::Ed448 | EdCurve::X448 => 448,
        }
    }

    /// Length of an EdDSA signature (0 for Montgomery curves).
    pub const fn signature_len(self) -> usize {
        match self {
            EdCurve::Ed25519 => 64,
            EdCurve::Ed448 => 114,
            EdCurve::X25519 | EdCurve::X448 => 0,
        }
    }

    /// The DER OBJECT IDENTIFIER of RFC 8410 (id-Ed25519 1.3.101.112 and its siblings).
    pub const fn oid_der(self) -> &'static [u8] {
        match self {
            EdCurve::X25519 => &[0x06, 0x03, 0x2b, 0x65, 0x6e],
            EdCurve::X448 => &[0x06, 0x03, 0x2b, 0x65, 0x6f],
            EdCurve::Ed25519 => &[0x06, 0x03, 0x2b, 0x65, 0x70],
            EdCurve::Ed448 => &[0x06, 0x03, 0x2b, 0x65, 0x71],
        }
    }

    /// The curve name PKCS#11 3.0 allows as a PrintableString in CKA_EC_PARAMS.
    pub const fn curve_name(self) -> &'static str {
        match self {
            EdCurve::Ed25519 => "edwards25519",
            EdCurve::Ed448 => "edwards448",
            EdCurve::X25519 => "curve25519",
            EdCurve::X448 => "curve448",
        }
    }

    /// The curve whose DER OID is exactly `der`.
    pub fn from_oid_der(der: &[u8]) -> Option<EdCurve> {
        EdCurve::ALL.into_iter().find(|c| c.oid_der() == der)
    }

    /// The curve with this PKCS#11 name.
    pub fn from_name(name: &[u8]) -> Option<EdCurve> {
        EdCurve::ALL
            .into_iter()
            .find(|c| c.curve_name().as_bytes() == name)
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Sign,
    Verify,
}

/// The EdDSA instance of RFC 8032 §5.1 / §5.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdVariant<'a> {
    /// Ed25519 or Ed448 with an empty context.
    Pure,
    /// Ed25519ctx (non-empty context) or Ed448 with a context.
    Context(&'a [u8]),
    /// Ed25519ph or Ed448ph with a (possibly empty) context; the message is given whole.
    PreHash(&'a [u8]),
}

/// Whether the OpenSSL in use signs with contexts and pre-hashing: its EdDSA implementation
/// gained the "instance" and "context-string" parameters in 3.2.
pub fn variants_supported() -> bool {
    static SUPPORTED: LazyLock<bool> =
        // SAFETY: OpenSSL_version_num has no preconditions.
        LazyLock::new(|| unsafe { sys::OpenSSL_version_num() } >= 0x3020_0000);
    *SUPPORTED
}

/// An Edwards or Montgomery key in the private library context. Build it once per key
/// object and share it: it is `Send + Sync`.
pub struct EdKey {
    raw: NonNull<sys::EVP_PKEY>,
    curve: EdCurve,
    private: bool,
    // Pure-EdDSA contexts initialised once; each operation runs on a copy, since a
    // digest-sign context is one-shot and copying costs less than initialising.
    sign_template: Mutex<Option<MdCtx>>,
    verify_template: Mutex<Option<MdCtx>>,
}

// SAFETY: after construction the EVP_PKEY is only read, the templates are only read (copied)
// and behind mutexes, and every operation runs on its own EVP_MD_CTX.
unsafe impl Send for EdKey {}
// SAFETY: as above.
unsafe impl Sync for EdKey {}

impl Drop for EdKey {
    fn drop(&mut self) {
        // SAFETY: we own one reference to the key.
        unsafe { sys::EVP_PKEY_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for EdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdKey")
            .field("curve", &self.curve)
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

/// An owned EVP_MD_CTX.
struct MdCtx(NonNull<sys::EVP_MD_CTX>);

// SAFETY: an EVP_MD_CTX has no thread affinity; it is only used by its one owner at a time.
unsafe impl Send for MdCtx {}

impl MdCtx {
    fn new() -> Result<MdCtx> {
        // SAFETY: no preconditions.
        NonNull::new(unsafe { sys::EVP_MD_CTX_new() })
            .map(MdCtx)
            .ok_or_else(|| ossl_error("EVP_MD_CTX_new"))
    }

    fn as_ptr(&self) -> *mut sys::EVP_MD_CTX {
        self.0.as_ptr()
    }
}

impl Drop for MdCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context (and, through it, the EVP_PKEY_CTX it created).
        unsafe { sys::EVP_MD_CTX_free(self.0.as_ptr()) }
    }
}

/// The "instance" and "context-string" parameters for a variant; `None` for pure EdDSA.
/// The returned array borrows `context`.
fn variant_params(curve: EdCurve, variant: EdVariant<'_>) -> Result<Option<[sys::OSSL_PARAM; 3]>> {
    let (instance, context): (&'static CStr, &[u8]) = match (curve, variant) {
        (_, EdVariant::Pure) => return Ok(None),
        (EdCurve::Ed25519, EdVariant::Context(c)) => (c"Ed25519ctx", c),
        (EdCurve::Ed25519, EdVariant::PreHash(c)) => (c"Ed25519ph", c),
        (EdCurve::Ed448, EdVariant::Context(c)) => (c"Ed448", c),
        (EdCurve::Ed448, EdVariant::PreHash(c)) => (c"Ed448ph", c),
        _ => return Err(Error("not an Edwards curve".into())),
    };
    if context.len() > 255 {
        return Err(Error("EdDSA context longer than 255 bytes".into()));
    }
    if !variants_supported() {
        return Err(Error(
            "this OpenSSL supports pure EdDSA only (contexts and pre-hashing need 3.2)".into(),
        ));
    }
    // SAFETY: the strings are static and NUL-terminated, `context` outlives the init call
    // that reads the array, and OpenSSL never writes through parameters it is given to set.
    Ok(Some(unsafe {
        [
            OSSL_PARAM_construct_utf8_string(
                c"instance".as_ptr(),
                instance.as_ptr().cast_mut(),
                instance.to_bytes().len(),
            ),
            sys::OSSL_PARAM_construct_octet_string(
                c"context-string".as_ptr(),
                context.as_ptr().cast_mut().cast(),
                context.len(),
            ),
            sys::OSSL_PARAM_construct_end(),
        ]
    }))
}

impl EdKey {
    fn wrap(raw: *mut sys::EVP_PKEY, curve: EdCurve, private: bool) -> Result<EdKey> {
        let raw = NonNull::new(raw).ok_or_else(|| ossl_error("no key"))?;
        Ok(EdKey {
            raw,
            curve,
            private,
            sign_template: Mutex::new(None),
            verify_template: Mutex::new(None),
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::EVP_PKEY {
        self.raw.as_ptr()
    }

    /// Generate a key pair on `curve`.
    pub fn generate(curve: EdCurve) -> Result<EdKey> {
        let ctx = PkeyCtx::from_name(curve.alg_name())?;
        // SAFETY: live context.
        let rc = unsafe { sys::EVP_PKEY_keygen_init(ctx.as_ptr()) };
        check(rc, "EVP_PKEY_keygen_init")?;
        let mut out: *mut sys::EVP_PKEY = ptr::null_mut();
        // SAFETY: live context; `out` receives a new key we own.
        let rc = unsafe { sys::EVP_PKEY_generate(ctx.as_ptr(), &mut out) };
        check(rc, "EVP_PKEY_generate")?;
        EdKey::wrap(out, curve, true)
    }

    /// A key from its raw private key (RFC 8032 seed / RFC 7748 scalar); the public key is
    /// derived from it.
    pub fn from_private(curve: EdCurve, private: &[u8]) -> Result<EdKey> {
        if private.len() != curve.key_len() {
            return Err(Error(format!(
                "a {:?} private key is {} bytes, not {}",
                curve,
                curve.key_len(),
                private.len()
            )));
        }
        let lib = ffi::libctx_ptr()?;
        // SAFETY: live library context, static name, and `private` readable for its length
        // (OpenSSL copies it into its own secure storage).
        let k = unsafe {
            sys::EVP_PKEY_new_raw_private_key_ex(
                lib,
                curve.alg_name().as_ptr(),
                ptr::null(),
                private.as_ptr(),
                private.len(),
            )
        };
        EdKey::wrap(k, curve, true)
    }

    /// A public key from its raw encoding.
    pub fn from_public(curve: EdCurve, public: &[u8]) -> Result<EdKey> {
        if public.len() != curve.key_len() {
            return Err(Error(format!(
                "a {:?} public key is {} bytes, not {}",
                curve,
                curve.key_len(),
                public.len()
            )));
        }
        let lib = ffi::libctx_ptr()?;
        // SAFETY: live library context, static name, `public` readable for its length.
        let k = unsafe {
            sys::EVP_PKEY_new_raw_public_key_ex(
                lib,
                curve.alg_name().as_ptr(),
                ptr::null(),
                public.as_ptr(),
                public.len(),
            )
        };
        EdKey::wrap(k, curve, false)
    }

    /// The key's curve.
    pub fn curve(&self) -> EdCurve {
        self.curve
    }

    /// Whether the key has its private half.
    pub fn has_private(&self) -> bool {
        self.private
    }

    /// The raw public key.
    pub fn public_raw(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.curve.key_len()];
        let mut len = out.len();
        // SAFETY: live key; `out` is writable for `len` bytes.
        let rc =
            unsafe { sys::EVP_PKEY_get_raw_public_key(self.as_ptr(), out.as_mut_ptr(), &mut len) };
        check(rc, "EVP_PKEY_get_raw_public_key")?;
        if len != out.len() {
            return Err(Error("public key of an unexpected length".into()));
        }
        Ok(out)
    }

    /// The raw private key.
    pub fn private_raw(&self) -> Result<Zeroizing<Vec<u8>>> {
        if !self.private {
            return Err(Error("a public key has no private value".into()));
        }
        let mut out = Zeroizing::new(vec![0u8; self.curve.key_len()]);
        let mut len = out.len();
        // SAFETY: live key; `out` is writable for `len` bytes.
        let rc =
            unsafe { sys::EVP_PKEY_get_raw_private_key(self.as_ptr(), out.as_mut_ptr(), &mut len) };
        check(rc, "EVP_PKEY_get_raw_private_key")?;
        if len != out.len() {
            return Err(Error("private key of an unexpected length".into()));
        }
        Ok(out)
    }

    /// SubjectPublicKeyInfo (RFC 8410: the algorithm OID without parameters).
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        Ok(der::sequence(&[
            &der::sequence(&[self.curve.oid_der()]),
            &der::bit_string(&self.public_raw()?),
        ]))
    }

    fn need_edwards(&self) -> Result<()> {
        if self.curve.is_edwards() {
            Ok(())
        } else {
            Err(Error("a Montgomery key cannot sign".into()))
        }
    }

    /// A digest-sign or digest-verify context ready for one EdDSA operation: a copy of the
    /// key's template for pure EdDSA, a fresh one for the variants (their context differs
    /// per call).
    fn context(&self, dir: Dir, variant: EdVariant<'_>) -> Result<MdCtx> {
        if variant != EdVariant::Pure {
            return self.init_context(dir, variant);
        }
        let template = match dir {
            Dir::Sign => &self.sign_template,
            Dir::Verify => &self.verify_template,
        };
        let mut guard = template
            .lock()
            .map_err(|_| Error("EdDSA context template lock poisoned".into()))?;
        let tmpl = match guard.as_ref() {
            Some(t) => t,
            None => guard.insert(self.init_context(dir, variant)?),
        };
        let ctx = MdCtx::new()?;
        // SAFETY: both contexts are live; the template is initialised and only read.
        let rc = unsafe { sys::EVP_MD_CTX_copy_ex(ctx.as_ptr(), tmpl.as_ptr()) };
        check(rc, "EVP_MD_CTX_copy_ex")?;
        Ok(ctx)
    }

    fn init_context(&self, dir: Dir, variant: EdVariant<'_>) -> Result<MdCtx> {
        let params = variant_params(self.curve, variant)?;
        let pptr = params.as_ref().map_or(ptr::null(), |p| p.as_ptr());
        let ctx = MdCtx::new()?;
        let lib = ffi::libctx_ptr()?;
        let init = match dir {
            Dir::Sign => EVP_DigestSignInit_ex,
            Dir::Verify => EVP_DigestVerifyInit_ex,
        };
        // SAFETY: live MD context, library context and key; `pptr` is NULL or an
        // END-terminated array whose pointers outlive this call; no digest name (EdDSA).
        let rc = unsafe {
            init(
                ctx.as_ptr(),
                ptr::null_mut(),
                ptr::null(),
                lib,
                ptr::null(),
                self.as_ptr(),
                pptr,
            )
        };
        check(rc, "EVP_Digest{Sign,Verify}Init_ex")?;
        Ok(ctx)
    }

    /// An EdDSA signature of `msg`.
    pub fn sign(&self, variant: EdVariant<'_>, msg: &[u8]) -> Result<Vec<u8>> {
        self.need_edwards()?;
        if !self.private {
            return Err(Error("a public key cannot sign".into()));
        }
        let ctx = self.context(Dir::Sign, variant)?;
        let mut out = vec![0u8; self.curve.signature_len()];
        let mut len = out.len();
        // SAFETY: initialised context; `out` is writable for `len` bytes, `msg` readable.
        let rc = unsafe {
            sys::EVP_DigestSign(
                ctx.as_ptr(),
                out.as_mut_ptr(),
                &mut len,
                msg.as_ptr(),
                msg.len(),
            )
        };
        check(rc, "EVP_DigestSign")?;
        if len != out.len() {
            return Err(Error("EdDSA signature of an unexpected length".into()));
        }
        Ok(out)
    }

    /// Whether `sig` is a valid EdDSA signature of `msg` (a signature of the wrong length is
    /// simply invalid).
    pub fn verify(&self, variant: EdVariant<'_>, msg: &[u8], sig: &[u8]) -> Result<bool> {
        self.need_edwards()?;
        if sig.len() != self.curve.signature_len() {
            return Ok(false);
        }
        let ctx = self.context(Dir::Verify, variant)?;
        // SAFETY: initialised context; both slices readable for their lengths.
        let rc = unsafe {
            sys::EVP_DigestVerify(
                ctx.as_ptr(),
                sig.as_ptr(),
                sig.len(),
                msg.as_ptr(),
                msg.len(),
            )
        };
        match rc {
            1 => Ok(true),
            0 => {
                clear_errors();
                Ok(false)
            }
            _ => Err(ossl_error("EVP_DigestVerify")),
        }
    }

    /// Pair-wise consistency: the public key derived again from the private key matches,
    /// and for Edwards keys a signature verifies.
    pub fn check_pair(&self) -> Result<bool> {
        let private = self.private_raw()?;
        let again = EdKey::from_private(self.curve, &private)?;
        if again.public_raw()? != self.public_raw()? {
            return Ok(false);
        }
        if self.curve.is_edwards() {
            let msg = [0xa5u8; 32];
            let sig = self.sign(EdVariant::Pure, &msg)?;
            let public = EdKey::from_public(self.curve, &self.public_raw()?)?;
            return public.verify(EdVariant::Pure, &msg, &sig);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
