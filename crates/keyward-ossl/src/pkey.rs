//! Asymmetric keys (EC on named prime curves, RSA): generation, import from and export to
//! components, SPKI encoding, and ECDSA / RSA (PKCS#1 v1.5, PSS, raw) signatures and RSA
//! (OAEP, PKCS#1 v1.5) encryption through per-key pools of ready-initialised contexts.

use std::ffi::{CStr, c_char, c_int, c_long, c_void};
use std::fmt;
use std::ptr::{self, NonNull};
use std::sync::Mutex;

use openssl_sys as sys;
use zeroize::Zeroizing;

use crate::der;
use crate::digest::{self, DigestAlg};
use crate::ffi::{self, Bn, ParamBuilder, PkeyCtx, check, clear_errors, ossl_error};
use crate::{Error, Result};

/// A named prime curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1, prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
    /// secp256k1.
    Secp256k1,
}

impl Curve {
    /// Every supported curve.
    pub const ALL: [Curve; 4] = [Curve::P256, Curve::P384, Curve::P521, Curve::Secp256k1];

    /// OpenSSL's group name.
    pub const fn group_name(self) -> &'static CStr {
        match self {
            Curve::P256 => c"prime256v1",
            Curve::P384 => c"secp384r1",
            Curve::P521 => c"secp521r1",
            Curve::Secp256k1 => c"secp256k1",
        }
    }

    fn nid(self) -> c_int {
        match self {
            Curve::P256 => sys::NID_X9_62_prime256v1,
            Curve::P384 => sys::NID_secp384r1,
            Curve::P521 => sys::NID_secp521r1,
            Curve::Secp256k1 => sys::NID_secp256k1,
        }
    }

    /// The size of the field (and of the group order) in bits.
    pub const fn bits(self) -> usize {
        match self {
            Curve::P256 | Curve::Secp256k1 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// Bytes of a field element or scalar: the width of CKA_VALUE and of r and s.
    pub const fn field_len(self) -> usize {
        self.bits().div_ceil(8)
    }

    /// Length of an uncompressed point (0x04 ‖ x ‖ y).
    pub const fn point_len(self) -> usize {
        1 + 2 * self.field_len()
    }

    /// The DER encoding of the curve's OBJECT IDENTIFIER (what CKA_EC_PARAMS holds).
    pub const fn oid_der(self) -> &'static [u8] {
        match self {
            // 1.2.840.10045.3.1.7
            Curve::P256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            // 1.3.132.0.34
            Curve::P384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            // 1.3.132.0.35
            Curve::P521 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
            // 1.3.132.0.10
            Curve::Secp256k1 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
        }
    }

    /// The curve whose DER OID is exactly `der`.
    pub fn from_oid_der(der: &[u8]) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.oid_der() == der)
    }

    /// The curve of a name as PKCS#11 3.0's PrintableString form of CKA_EC_PARAMS carries it
    /// (SEC 2, X9.62 or NIST names).
    pub fn from_name(name: &[u8]) -> Option<Curve> {
        Curve::from_group_name(std::str::from_utf8(name).ok()?)
    }

    fn from_group_name(name: &str) -> Option<Curve> {
        match name {
            "prime256v1" | "P-256" | "secp256r1" => Some(Curve::P256),
            "secp384r1" | "P-384" => Some(Curve::P384),
            "secp521r1" | "P-521" => Some(Curve::P521),
            "secp256k1" => Some(Curve::Secp256k1),
            _ => None,
        }
    }
}

/// What kind of key a [`PKey`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// An EC key on a named curve.
    Ec(Curve),
    /// An RSA key.
    Rsa,
}

/// RSA components for import, big-endian. Without `crt` the key signs through the private
/// exponent alone, which is several times slower.
pub struct RsaComponents<'a> {
    /// Modulus.
    pub n: &'a [u8],
    /// Public exponent.
    pub e: &'a [u8],
    /// Private exponent.
    pub d: &'a [u8],
    /// The CRT values, when known.
    pub crt: Option<RsaCrt<'a>>,
}

impl RsaComponents<'_> {
    /// Whether the CRT values agree with each other and with n, e and d: n = pq,
    /// d ≡ dP (mod p−1), d ≡ dQ (mod q−1), e·dP ≡ 1 (mod p−1), e·dQ ≡ 1 (mod q−1) and
    /// q·qInv ≡ 1 (mod p). Plain big-number arithmetic, unlike OpenSSL's pairwise check, which
    /// also tests p and q for primality (about a second for a 4096-bit key). `None` without
    /// CRT values.
    pub fn crt_consistent(&self) -> Result<Option<bool>> {
        use openssl::bn::{BigNum, BigNumContext};
        let Some(crt) = &self.crt else {
            return Ok(None);
        };
        let bn = |b: &[u8]| BigNum::from_slice(b).map_err(|e| Error(format!("BIGNUM: {e}")));
        let fail = |e: openssl::error::ErrorStack| Error(format!("BIGNUM arithmetic: {e}"));
        let mut ctx = BigNumContext::new_secure().map_err(fail)?;
        let (n, e, d) = (bn(self.n)?, bn(self.e)?, bn(self.d)?);
        let (p, q) = (bn(crt.p)?, bn(crt.q)?);
        let (dp, dq, qinv) = (bn(crt.dp)?, bn(crt.dq)?, bn(crt.qinv)?);
        let one = BigNum::from_u32(1).map_err(fail)?;
        let mut pq = BigNum::new().map_err(fail)?;
        pq.checked_mul(&p, &q, &mut ctx).map_err(fail)?;
        if pq != n {
            return Ok(Some(false));
        }
        let mut r = BigNum::new_secure().map_err(fail)?;
        for (prime, exp) in [(&p, &dp), (&q, &dq)] {
            let mut m = BigNum::new().map_err(fail)?;
            m.checked_sub(prime, &one).map_err(fail)?;
            r.nnmod(&d, &m, &mut ctx).map_err(fail)?;
            if r != *exp {
                return Ok(Some(false));
            }
            r.mod_mul(&e, exp, &m, &mut ctx).map_err(fail)?;
            if r != one {
                return Ok(Some(false));
            }
        }
        r.mod_mul(&q, &qinv, &p, &mut ctx).map_err(fail)?;
        Ok(Some(r == one))
    }
}

/// RSA CRT components, big-endian.
pub struct RsaCrt<'a> {
    /// First prime.
    pub p: &'a [u8],
    /// Second prime.
    pub q: &'a [u8],
    /// d mod (p-1).
    pub dp: &'a [u8],
    /// d mod (q-1).
    pub dq: &'a [u8],
    /// q⁻¹ mod p.
    pub qinv: &'a [u8],
}

/// Exported RSA private components, big-endian without leading zeros; zeroized on drop.
pub struct RsaPrivateParts {
    /// Modulus.
    pub n: Vec<u8>,
    /// Public exponent.
    pub e: Vec<u8>,
    /// Private exponent.
    pub d: Zeroizing<Vec<u8>>,
    /// First prime.
    pub p: Zeroizing<Vec<u8>>,
    /// Second prime.
    pub q: Zeroizing<Vec<u8>>,
    /// d mod (p-1).
    pub dp: Zeroizing<Vec<u8>>,
    /// d mod (q-1).
    pub dq: Zeroizing<Vec<u8>>,
    /// q⁻¹ mod p.
    pub qinv: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for RsaPrivateParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPrivateParts({} bits, ..)", self.n.len() * 8)
    }
}

// Contexts kept per key and operation; more threads than this just create and drop extras.
const POOL_MAX: usize = 16;

/// Contexts already initialised for one operation with one key. OpenSSL 3 lets a context that
/// finished a sign (or verify) run the next one with the same parameters, which saves the
/// context allocation and provider lookup each time.
struct Pool(Mutex<Vec<PkeyCtx>>);

impl Pool {
    fn new() -> Pool {
        Pool(Mutex::new(Vec::new()))
    }

    fn take(&self) -> Option<PkeyCtx> {
        self.0.lock().ok().and_then(|mut v| v.pop())
    }

    fn give_back(&self, ctx: PkeyCtx) {
        if let Ok(mut v) = self.0.lock()
            && v.len() < POOL_MAX
        {
            v.push(ctx);
        }
    }
}

/// The operation a pooled context was initialised for. Operations whose parameters vary per
/// call (PSS, OAEP) set them on every use, which costs far less than a new context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// ECDSA, or RSA PKCS#1 v1.5 signing.
    Sign,
    /// ECDSA verification, or RSA PKCS#1 v1.5 verify-recover.
    Verify,
    /// RSA-PSS signing.
    PssSign,
    /// RSA-PSS verification.
    PssVerify,
    /// Raw RSA with the private key (no padding).
    RawPrivate,
    /// Raw RSA with the public key (no padding).
    RawPublic,
    /// RSA encryption (padding set per call).
    Encrypt,
    /// RSA decryption (padding set per call).
    Decrypt,
    /// Raw RSA decryption (no padding), for padding removed by the caller.
    RawDecrypt,
}

const OP_COUNT: usize = 9;

/// An asymmetric key in the private library context, with pools of contexts per operation.
/// Build it once per key object and share it: it is `Send + Sync`.
pub struct PKey {
    raw: NonNull<sys::EVP_PKEY>,
    kind: KeyKind,
    private: bool,
    bits: usize,
    size: usize,
    pools: [Pool; OP_COUNT],
}

// SAFETY: after construction the EVP_PKEY is only read; OpenSSL allows a key to be used from
// several threads at once (each through its own EVP_PKEY_CTX, which the pools guarantee).
unsafe impl Send for PKey {}
// SAFETY: as above; the pools are behind a mutex.
unsafe impl Sync for PKey {}

impl Drop for PKey {
    fn drop(&mut self) {
        // Contexts hold their own references to the key, so order does not matter.
        // SAFETY: we own one reference to the key.
        unsafe { sys::EVP_PKEY_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for PKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PKey")
            .field("kind", &self.kind)
            .field("bits", &self.bits)
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

unsafe extern "C" {
    fn OSSL_PARAM_construct_utf8_string(
        key: *const c_char,
        buf: *mut c_char,
        bsize: usize,
    ) -> sys::OSSL_PARAM;
    fn OSSL_PARAM_construct_int(key: *const c_char, buf: *mut c_int) -> sys::OSSL_PARAM;
}

/// OpenSSL's name for a digest, as the C string that context parameters take.
fn md_cname(alg: DigestAlg) -> &'static CStr {
    match alg {
        DigestAlg::Sha1 => c"SHA1",
        DigestAlg::Sha224 => c"SHA224",
        DigestAlg::Sha256 => c"SHA256",
        DigestAlg::Sha384 => c"SHA384",
        DigestAlg::Sha512 => c"SHA512",
        DigestAlg::Sha512_224 => c"SHA512-224",
        DigestAlg::Sha512_256 => c"SHA512-256",
        DigestAlg::Sha3_224 => c"SHA3-224",
        DigestAlg::Sha3_256 => c"SHA3-256",
        DigestAlg::Sha3_384 => c"SHA3-384",
        DigestAlg::Sha3_512 => c"SHA3-512",
    }
}

/// A string parameter naming a static value (OpenSSL only reads it).
fn utf8_param(key: &'static CStr, value: &'static CStr) -> sys::OSSL_PARAM {
    // SAFETY: both strings are static and NUL-terminated; the constructor only stores the
    // pointers, and OpenSSL never writes through a parameter passed to a set_params call.
    unsafe {
        OSSL_PARAM_construct_utf8_string(
            key.as_ptr(),
            value.as_ptr().cast_mut(),
            value.to_bytes().len(),
        )
    }
}

/// RSA encryption padding and its parameters.
#[derive(Clone, Copy, Debug)]
pub enum RsaEncPadding<'a> {
    /// PKCS#1 v1.5 (RSAES-PKCS1-v1_5); offered for encryption only.
    Pkcs1,
    /// RSAES-OAEP with a hash, an MGF1 hash and a label.
    Oaep {
        /// The OAEP hash.
        hash: DigestAlg,
        /// The MGF1 hash.
        mgf1: DigestAlg,
        /// The label (possibly empty).
        label: &'a [u8],
    },
}

impl RsaEncPadding<'_> {
    /// The largest message this padding carries in a block of `k` bytes.
    pub fn max_message_len(&self, k: usize) -> usize {
        match self {
            RsaEncPadding::Pkcs1 => k.saturating_sub(11),
            RsaEncPadding::Oaep { hash, .. } => k.saturating_sub(2 * hash.output_len() + 2),
        }
    }
}

impl PKey {
    fn wrap(raw: *mut sys::EVP_PKEY, private: bool) -> Result<PKey> {
        let raw = NonNull::new(raw).ok_or_else(|| ossl_error("no key"))?;
        let p = raw.as_ptr();
        // SAFETY: `p` is a live key we now own (dropped with `PKey` if anything below fails).
        let (bits, size) = unsafe { (sys::EVP_PKEY_get_bits(p), sys::EVP_PKEY_get_size(p)) };
        let mut key = PKey {
            raw,
            kind: KeyKind::Rsa,
            private,
            bits: usize::try_from(bits).unwrap_or(0),
            size: usize::try_from(size).unwrap_or(0),
            pools: std::array::from_fn(|_| Pool::new()),
        };
        if is_a(p, c"RSA") {
            key.kind = KeyKind::Rsa;
        } else if is_a(p, c"EC") {
            let name = key.utf8_param(c"group")?;
            let curve = Curve::from_group_name(&name)
                .ok_or_else(|| Error(format!("EC group {name} is not supported")))?;
            key.kind = KeyKind::Ec(curve);
        } else {
            return Err(Error("only EC and RSA keys are supported".into()));
        }
        if key.bits == 0 || key.size == 0 {
            return Err(Error("key without a size".into()));
        }
        Ok(key)
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::EVP_PKEY {
        self.raw.as_ptr()
    }

    fn generate(alg: &'static CStr, params: ffi::Params) -> Result<PKey> {
        let ctx = PkeyCtx::from_name(alg)?;
        // SAFETY: live context.
        let rc = unsafe { sys::EVP_PKEY_keygen_init(ctx.as_ptr()) };
        check(rc, "EVP_PKEY_keygen_init")?;
        // SAFETY: live context and a parameter array terminated by the builder.
        let rc = unsafe { sys::EVP_PKEY_CTX_set_params(ctx.as_ptr(), params.as_ptr()) };
        check(rc, "EVP_PKEY_CTX_set_params")?;
        let mut out: *mut sys::EVP_PKEY = ptr::null_mut();
        // SAFETY: live context; `out` receives a new key we own.
        let rc = unsafe { sys::EVP_PKEY_generate(ctx.as_ptr(), &mut out) };
        check(rc, "EVP_PKEY_generate")?;
        PKey::wrap(out, true)
    }

    /// Generate an EC key pair on `curve`.
    pub fn generate_ec(curve: Curve) -> Result<PKey> {
        let mut b = ParamBuilder::new()?;
        b.push_utf8(c"group", curve.group_name())?;
        PKey::generate(c"EC", b.build()?)
    }

    /// Generate an RSA key pair with a modulus of `bits` and public exponent `e` (big-endian).
    pub fn generate_rsa(bits: usize, e: &[u8]) -> Result<PKey> {
        let mut b = ParamBuilder::new()?;
        b.push_size(c"bits", bits)?;
        b.push_bn(c"e", e)?;
        PKey::generate(c"RSA", b.build()?)
    }

    fn from_data(
        alg: &'static CStr,
        selection: c_int,
        params: ffi::Params,
        private: bool,
    ) -> Result<PKey> {
        let ctx = PkeyCtx::from_name(alg)?;
        // SAFETY: live context.
        let rc = unsafe { sys::EVP_PKEY_fromdata_init(ctx.as_ptr()) };
        check(rc, "EVP_PKEY_fromdata_init")?;
        let mut out: *mut sys::EVP_PKEY = ptr::null_mut();
        // SAFETY: live context and parameter array; `out` receives a new key we own.
        let rc =
            unsafe { sys::EVP_PKEY_fromdata(ctx.as_ptr(), &mut out, selection, params.as_ptr()) };
        check(rc, "EVP_PKEY_fromdata")?;
        PKey::wrap(out, private)
    }

    /// An EC key from its components: the private scalar (big-endian, any width up to the
    /// field size) and/or the public point (SEC 1 encoding, compressed or not). With both,
    /// they must match; with the scalar alone the point is computed. A point not on the curve
    /// or a scalar outside [1, n-1] is an error.
    pub fn ec_from_components(
        curve: Curve,
        private: Option<&[u8]>,
        public: Option<&[u8]>,
    ) -> Result<PKey> {
        let mut b = ParamBuilder::new()?;
        b.push_utf8(c"group", curve.group_name())?;
        let selection = match private {
            Some(d) => {
                let derived =
                    ec_public_from_private(curve, d, public.and_then(|p| p.first().copied()))?;
                if let Some(given) = public
                    && given != derived.as_slice()
                {
                    return Err(Error(
                        "the EC public point does not match the private value".into(),
                    ));
                }
                b.push_octets(c"pub", &derived)?;
                b.push_bn(c"priv", d)?;
                sys::EVP_PKEY_KEYPAIR
            }
            None => {
                let p = public
                    .ok_or_else(|| Error("an EC key needs a private or a public value".into()))?;
                b.push_octets(c"pub", p)?;
                sys::EVP_PKEY_PUBLIC_KEY
            }
        };
        PKey::from_data(c"EC", selection, b.build()?, private.is_some())
    }

    /// An RSA private key from its components.
    pub fn rsa_private_from_components(c: &RsaComponents<'_>) -> Result<PKey> {
        let mut b = ParamBuilder::new()?;
        b.push_bn(c"n", c.n)?;
        b.push_bn(c"e", c.e)?;
        b.push_bn(c"d", c.d)?;
        if let Some(crt) = &c.crt {
            b.push_bn(c"rsa-factor1", crt.p)?;
            b.push_bn(c"rsa-factor2", crt.q)?;
            b.push_bn(c"rsa-exponent1", crt.dp)?;
            b.push_bn(c"rsa-exponent2", crt.dq)?;
            b.push_bn(c"rsa-coefficient1", crt.qinv)?;
        }
        PKey::from_data(c"RSA", sys::EVP_PKEY_KEYPAIR, b.build()?, true)
    }

    /// An RSA public key from modulus and public exponent.
    pub fn rsa_public_from_components(n: &[u8], e: &[u8]) -> Result<PKey> {
        let mut b = ParamBuilder::new()?;
        b.push_bn(c"n", n)?;
        b.push_bn(c"e", e)?;
        PKey::from_data(c"RSA", sys::EVP_PKEY_PUBLIC_KEY, b.build()?, false)
    }

    /// A public key from a DER SubjectPublicKeyInfo (EC on a supported curve, or RSA).
    pub fn from_spki_der(der: &[u8]) -> Result<PKey> {
        let len = c_long::try_from(der.len()).map_err(|_| Error("SPKI too long".into()))?;
        let lib = ffi::libctx_ptr()?;
        let mut p = der.as_ptr();
        // SAFETY: `p` points at `len` readable bytes; d2i advances it and returns a new key.
        let k = unsafe { ffi::d2i_PUBKEY_ex(ptr::null_mut(), &mut p, len, lib, ptr::null()) };
        if k.is_null() {
            return Err(ossl_error("cannot parse SubjectPublicKeyInfo"));
        }
        let key = PKey::wrap(k, false)?;
        // SAFETY: both pointers come from the same slice; d2i never advances past its end.
        let used = unsafe { p.offset_from(der.as_ptr()) };
        if usize::try_from(used).ok() != Some(der.len()) {
            return Err(Error("trailing bytes after SubjectPublicKeyInfo".into()));
        }
        Ok(key)
    }

    /// EC or RSA, and the curve.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key size in bits (modulus for RSA, group order for EC).
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Whether the key has its private half.
    pub fn has_private(&self) -> bool {
        self.private
    }

    /// The fixed length of a signature: k for RSA, 2 × the scalar length for ECDSA (r ‖ s).
    pub fn signature_len(&self) -> usize {
        match self.kind {
            KeyKind::Rsa => self.size,
            KeyKind::Ec(_) => 2 * self.bits.div_ceil(8),
        }
    }

    fn curve(&self) -> Result<Curve> {
        match self.kind {
            KeyKind::Ec(c) => Ok(c),
            KeyKind::Rsa => Err(Error("not an EC key".into())),
        }
    }

    fn need_rsa(&self) -> Result<()> {
        match self.kind {
            KeyKind::Rsa => Ok(()),
            KeyKind::Ec(_) => Err(Error("not an RSA key".into())),
        }
    }

    fn need_private(&self) -> Result<()> {
        if self.private {
            Ok(())
        } else {
            Err(Error("a public key cannot sign".into()))
        }
    }

    fn utf8_param(&self, name: &'static CStr) -> Result<String> {
        let mut buf = [0u8; 80];
        let mut len = 0usize;
        // SAFETY: live key; `buf` has room for `buf.len()` bytes including the NUL.
        let rc = unsafe {
            sys::EVP_PKEY_get_utf8_string_param(
                self.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut len,
            )
        };
        check(rc, "EVP_PKEY_get_utf8_string_param")?;
        let s = buf
            .get(..len)
            .ok_or_else(|| Error("parameter longer than its buffer".into()))?;
        Ok(String::from_utf8_lossy(s).into_owned())
    }

    fn bn_param(&self, name: &'static CStr) -> Result<Bn> {
        let mut bn: *mut sys::BIGNUM = ptr::null_mut();
        // SAFETY: live key; on success `bn` is a new BIGNUM we own.
        let rc = unsafe { sys::EVP_PKEY_get_bn_param(self.as_ptr(), name.as_ptr(), &mut bn) };
        check(rc, "EVP_PKEY_get_bn_param")?;
        Bn::from_raw(bn).ok_or_else(|| Error("no value".into()))
    }

    /// The EC public point, uncompressed (0x04 ‖ x ‖ y).
    pub fn ec_public_point(&self) -> Result<Vec<u8>> {
        let curve = self.curve()?;
        let mut buf = vec![0u8; curve.point_len()];
        let mut len = 0usize;
        // SAFETY: live key; `buf` is writable for its length.
        let rc = unsafe {
            sys::EVP_PKEY_get_octet_string_param(
                self.as_ptr(),
                c"pub".as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
            )
        };
        check(rc, "EVP_PKEY_get_octet_string_param")?;
        if len != buf.len() || buf.first() != Some(&0x04) {
            return Err(Error("EC public point is not uncompressed".into()));
        }
        Ok(buf)
    }

    /// The EC private scalar, big-endian, padded to the field size.
    pub fn ec_private_value(&self) -> Result<Zeroizing<Vec<u8>>> {
        let curve = self.curve()?;
        self.need_private()?;
        let bn = self.bn_param(c"priv")?;
        bn.to_be_padded(curve.field_len())
            .map(Zeroizing::new)
            .ok_or_else(|| Error("EC private value wider than the field".into()))
    }

    /// RSA modulus and public exponent, big-endian without leading zeros.
    pub fn rsa_public_parts(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        self.need_rsa()?;
        Ok((self.bn_param(c"n")?.to_be(), self.bn_param(c"e")?.to_be()))
    }

    /// All RSA private components (the key must have been built with its CRT values).
    pub fn rsa_private_parts(&self) -> Result<RsaPrivateParts> {
        self.need_rsa()?;
        self.need_private()?;
        let secret = |name| -> Result<Zeroizing<Vec<u8>>> {
            Ok(Zeroizing::new(self.bn_param(name)?.to_be()))
        };
        Ok(RsaPrivateParts {
            n: self.bn_param(c"n")?.to_be(),
            e: self.bn_param(c"e")?.to_be(),
            d: secret(c"d")?,
            p: secret(c"rsa-factor1")?,
            q: secret(c"rsa-factor2")?,
            dp: secret(c"rsa-exponent1")?,
            dq: secret(c"rsa-exponent2")?,
            qinv: secret(c"rsa-coefficient1")?,
        })
    }

    /// The public key as a DER SubjectPublicKeyInfo (RFC 5480 for EC, RFC 8017 for RSA),
    /// written directly.
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        // id-ecPublicKey (1.2.840.10045.2.1) and rsaEncryption (1.2.840.113549.1.1.1).
        const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        const RSA_ENCRYPTION: &[u8] = &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ];
        const NULL: &[u8] = &[0x05, 0x00];
        Ok(match self.kind {
            KeyKind::Ec(curve) => der::sequence(&[
                &der::sequence(&[EC_PUBLIC_KEY, curve.oid_der()]),
                &der::bit_string(&self.ec_public_point()?),
            ]),
            KeyKind::Rsa => {
                let (n, e) = self.rsa_public_parts()?;
                let key = der::sequence(&[&der::unsigned_integer(&n), &der::unsigned_integer(&e)]);
                der::sequence(&[
                    &der::sequence(&[RSA_ENCRYPTION, NULL]),
                    &der::bit_string(&key),
                ])
            }
        })
    }

    /// The same through OpenSSL's encoder: the independent reference for `spki_der`.
    #[cfg(test)]
    pub(crate) fn spki_der_openssl(&self) -> Result<Vec<u8>> {
        // SAFETY: live key; a NULL output pointer asks for the length only.
        let len = unsafe { sys::i2d_PUBKEY(self.as_ptr(), ptr::null_mut()) };
        let n = usize::try_from(len).map_err(|_| ossl_error("i2d_PUBKEY"))?;
        if n == 0 {
            return Err(ossl_error("i2d_PUBKEY"));
        }
        let mut out = vec![0u8; n];
        let mut p = out.as_mut_ptr();
        // SAFETY: `out` has the `n` bytes i2d_PUBKEY asked for; it advances `p` past them.
        let written = unsafe { sys::i2d_PUBKEY(self.as_ptr(), &mut p) };
        if written != len {
            return Err(ossl_error("i2d_PUBKEY"));
        }
        Ok(out)
    }

    /// Whether the private and public halves belong together (OpenSSL's pairwise check).
    pub fn check_pair(&self) -> Result<bool> {
        self.need_private()?;
        let ctx = PkeyCtx::from_pkey(self.as_ptr())?;
        // SAFETY: live context bound to this key.
        let rc = unsafe { ffi::EVP_PKEY_pairwise_check(ctx.as_ptr()) };
        if rc != 1 {
            clear_errors();
        }
        Ok(rc == 1)
    }

    fn new_ctx(&self, op: Op) -> Result<PkeyCtx> {
        let ctx = PkeyCtx::from_pkey(self.as_ptr())?;
        let rsa = self.kind == KeyKind::Rsa;
        // RSA PKCS#1 v1.5 verification recovers the padded payload and compares it here:
        // OpenSSL's EVP_PKEY_verify refuses an empty payload, which CKM_RSA_PKCS allows.
        // SAFETY: live context bound to this key.
        let rc = unsafe {
            match op {
                Op::Sign | Op::PssSign | Op::RawPrivate => sys::EVP_PKEY_sign_init(ctx.as_ptr()),
                Op::Verify if rsa => sys::EVP_PKEY_verify_recover_init(ctx.as_ptr()),
                Op::RawPublic => sys::EVP_PKEY_verify_recover_init(ctx.as_ptr()),
                Op::Verify | Op::PssVerify => sys::EVP_PKEY_verify_init(ctx.as_ptr()),
                Op::Encrypt => sys::EVP_PKEY_encrypt_init(ctx.as_ptr()),
                Op::Decrypt | Op::RawDecrypt => sys::EVP_PKEY_decrypt_init(ctx.as_ptr()),
            }
        };
        check(rc, "EVP_PKEY_*_init")?;
        let padding = match op {
            Op::Sign | Op::Verify if rsa => Some(sys::RSA_PKCS1_PADDING),
            Op::RawPrivate | Op::RawPublic | Op::RawDecrypt => Some(sys::RSA_NO_PADDING),
            // PSS, OAEP and PKCS#1 encryption set their padding on every call.
            _ => None,
        };
        if let Some(padding) = padding {
            // SAFETY: live context initialised for an RSA operation.
            let rc = unsafe { sys::EVP_PKEY_CTX_set_rsa_padding(ctx.as_ptr(), padding) };
            check(rc, "EVP_PKEY_CTX_set_rsa_padding")?;
        }
        Ok(ctx)
    }

    /// Run `f` with a pooled context; the context goes back to the pool unless `f` failed.
    fn with_ctx<R>(&self, op: Op, f: impl FnOnce(&PkeyCtx) -> Result<R>) -> Result<R> {
        let pool = &self.pools[op as usize];
        let ctx = match pool.take() {
            Some(c) => c,
            None => self.new_ctx(op)?,
        };
        let r = f(&ctx)?;
        pool.give_back(ctx);
        Ok(r)
    }

    /// Set the PSS parameters on a signing or verifying context (they change per call).
    fn set_pss(ctx: &PkeyCtx, hash: DigestAlg, mgf1: DigestAlg, salt_len: usize) -> Result<()> {
        let mut salt =
            c_int::try_from(salt_len).map_err(|_| Error("PSS salt length too large".into()))?;
        // SAFETY: `salt` outlives the set_params call below, which only reads it.
        let salt_param = unsafe { OSSL_PARAM_construct_int(c"saltlen".as_ptr(), &mut salt) };
        let params = [
            utf8_param(c"pad-mode", c"pss"),
            utf8_param(c"digest", md_cname(hash)),
            utf8_param(c"mgf1-digest", md_cname(mgf1)),
            salt_param,
            // SAFETY: no preconditions.
            unsafe { sys::OSSL_PARAM_construct_end() },
        ];
        // SAFETY: live context; `params` is END-terminated and every pointer in it is live.
        let rc = unsafe { sys::EVP_PKEY_CTX_set_params(ctx.as_ptr(), params.as_ptr()) };
        check(rc, "EVP_PKEY_CTX_set_params (PSS)")
    }

    /// Set the encryption padding on an encrypting or decrypting context.
    fn set_enc_padding(ctx: &PkeyCtx, padding: &RsaEncPadding<'_>) -> Result<()> {
        // SAFETY: no preconditions.
        let end = unsafe { sys::OSSL_PARAM_construct_end() };
        let rc = match padding {
            RsaEncPadding::Pkcs1 => {
                let params = [utf8_param(c"pad-mode", c"pkcs1"), end];
                // SAFETY: live context and an END-terminated array of static strings.
                unsafe { sys::EVP_PKEY_CTX_set_params(ctx.as_ptr(), params.as_ptr()) }
            }
            RsaEncPadding::Oaep { hash, mgf1, label } => {
                // The provider copies the label, so a slice borrowed for the call suffices.
                // SAFETY: `label` is readable for its length and outlives the call below;
                // OpenSSL does not write through parameters it is given to set.
                let label_param = unsafe {
                    sys::OSSL_PARAM_construct_octet_string(
                        c"oaep-label".as_ptr(),
                        label.as_ptr().cast_mut().cast::<c_void>(),
                        label.len(),
                    )
                };
                let params = [
                    utf8_param(c"pad-mode", c"oaep"),
                    utf8_param(c"digest", md_cname(*hash)),
                    utf8_param(c"mgf1-digest", md_cname(*mgf1)),
                    label_param,
                    end,
                ];
                // SAFETY: live context; END-terminated array whose pointers are all live.
                unsafe { sys::EVP_PKEY_CTX_set_params(ctx.as_ptr(), params.as_ptr()) }
            }
        };
        check(rc, "EVP_PKEY_CTX_set_params (encryption padding)")
    }

    fn raw_sign(&self, tbs: &[u8], out: &mut [u8]) -> Result<usize> {
        self.with_ctx(Op::Sign, |ctx| {
            let mut len = out.len();
            // SAFETY: live sign context; `out` is writable for `len` bytes and `tbs` readable.
            let rc = unsafe {
                sys::EVP_PKEY_sign(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut len,
                    tbs.as_ptr(),
                    tbs.len(),
                )
            };
            check(rc, "EVP_PKEY_sign")?;
            Ok(len)
        })
    }

    fn raw_verify(&self, tbs: &[u8], sig: &[u8]) -> Result<bool> {
        self.with_ctx(Op::Verify, |ctx| {
            // SAFETY: live verify context; both slices are readable for their lengths.
            let rc = unsafe {
                sys::EVP_PKEY_verify(
                    ctx.as_ptr(),
                    sig.as_ptr(),
                    sig.len(),
                    tbs.as_ptr(),
                    tbs.len(),
                )
            };
            // OpenSSL's ECDSA reports some well-formed wrong signatures as errors (-1): those
            // whose u1·G + u2·Q is the point at infinity (Wycheproof "point at infinity during
            // verify"). A verification that fails either way is a signature that does not verify.
            if rc == 1 {
                Ok(true)
            } else {
                clear_errors();
                Ok(false)
            }
        })
    }

    /// ECDSA over a digest of any length (truncated to the order's size as FIPS 186 says);
    /// returns r ‖ s, each padded to the scalar length.
    pub fn ecdsa_sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        self.curve()?;
        self.need_private()?;
        // Large enough for a DER ECDSA-Sig-Value on P-521 (at most 139 bytes).
        let mut der = [0u8; 160];
        let n = self.raw_sign(digest, &mut der)?;
        let der = der
            .get(..n)
            .ok_or_else(|| Error("signature longer than its buffer".into()))?;
        der_to_rs(der, self.signature_len() / 2)
            .ok_or_else(|| Error("malformed ECDSA signature from OpenSSL".into()))
    }

    /// Verify an r ‖ s ECDSA signature over a digest: `Ok(false)` for a wrong signature
    /// (including a wrong length), `Err` only for OpenSSL failures.
    pub fn ecdsa_verify_digest(&self, digest: &[u8], signature: &[u8]) -> Result<bool> {
        self.curve()?;
        if signature.len() != self.signature_len() {
            return Ok(false);
        }
        let mut der = [0u8; 160];
        let n = rs_to_der(signature, &mut der).ok_or_else(|| Error("signature too long".into()))?;
        self.raw_verify(digest, der.get(..n).unwrap_or_default())
    }

    /// ECDSA with SHA-256 over a message; r ‖ s.
    pub fn ecdsa_sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.ecdsa_sign_digest(&digest::digest(DigestAlg::Sha256, message)?)
    }

    /// Verify ECDSA with SHA-256 over a message.
    pub fn ecdsa_verify_sha256(&self, message: &[u8], signature: &[u8]) -> Result<bool> {
        self.ecdsa_verify_digest(&digest::digest(DigestAlg::Sha256, message)?, signature)
    }

    /// RSA PKCS#1 v1.5 signature over caller-formatted data (normally a DigestInfo): only the
    /// EMSA padding is added. `data` must be at most k - 11 bytes.
    pub fn rsa_pkcs1_sign_raw(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.need_rsa()?;
        self.need_private()?;
        if data.len() + 11 > self.size {
            return Err(Error(format!(
                "{} bytes do not fit a PKCS#1 v1.5 block of {}",
                data.len(),
                self.size
            )));
        }
        let mut out = vec![0u8; self.size];
        let n = self.raw_sign(data, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Verify an RSA PKCS#1 v1.5 signature over caller-formatted data: `Ok(false)` for a
    /// wrong signature, `Err` only for OpenSSL failures.
    pub fn rsa_pkcs1_verify_raw(&self, data: &[u8], signature: &[u8]) -> Result<bool> {
        self.need_rsa()?;
        if signature.len() != self.size || data.len() + 11 > self.size {
            return Ok(false);
        }
        let mut recovered = vec![0u8; self.size];
        self.with_ctx(Op::Verify, |ctx| {
            let mut len = recovered.len();
            // SAFETY: live verify-recover context; `recovered` is writable for `len` bytes and
            // `signature` readable for its length.
            let rc = unsafe {
                sys::EVP_PKEY_verify_recover(
                    ctx.as_ptr(),
                    recovered.as_mut_ptr(),
                    &mut len,
                    signature.as_ptr(),
                    signature.len(),
                )
            };
            if rc == 1 {
                Ok(recovered.get(..len) == Some(data))
            } else {
                // A signature that is not a valid PKCS#1 v1.5 block (or not below the modulus).
                clear_errors();
                Ok(false)
            }
        })
    }

    /// RSA PKCS#1 v1.5 with `alg` over a message.
    pub fn rsa_pkcs1_sign(&self, alg: DigestAlg, message: &[u8]) -> Result<Vec<u8>> {
        let d = digest::digest(alg, message)?;
        self.rsa_pkcs1_sign_raw(&digest::digest_info(alg, &d)?)
    }

    /// Verify RSA PKCS#1 v1.5 with `alg` over a message.
    pub fn rsa_pkcs1_verify(
        &self,
        alg: DigestAlg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        let d = digest::digest(alg, message)?;
        self.rsa_pkcs1_verify_raw(&digest::digest_info(alg, &d)?, signature)
    }

    /// RSASSA-PSS over a digest computed by the caller with `hash` (its length must match),
    /// with MGF1 over `mgf1` and a random salt of `salt_len` bytes.
    pub fn rsa_pss_sign(
        &self,
        hash: DigestAlg,
        mgf1: DigestAlg,
        salt_len: usize,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        self.need_rsa()?;
        self.need_private()?;
        if digest.len() != hash.output_len() {
            return Err(Error(format!(
                "a {} digest is {} bytes, not {}",
                hash.name(),
                hash.output_len(),
                digest.len()
            )));
        }
        let mut out = vec![0u8; self.size];
        let n = self.with_ctx(Op::PssSign, |ctx| {
            PKey::set_pss(ctx, hash, mgf1, salt_len)?;
            let mut len = out.len();
            // SAFETY: live sign context; `out` is writable for `len` bytes and `digest` readable.
            let rc = unsafe {
                sys::EVP_PKEY_sign(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut len,
                    digest.as_ptr(),
                    digest.len(),
                )
            };
            check(rc, "EVP_PKEY_sign (PSS)")?;
            Ok(len)
        })?;
        out.truncate(n);
        Ok(out)
    }

    /// Verify an RSASSA-PSS signature over a digest with exactly `salt_len` bytes of salt:
    /// `Ok(false)` for a wrong signature (including a wrong length), `Err` only for OpenSSL
    /// failures.
    pub fn rsa_pss_verify(
        &self,
        hash: DigestAlg,
        mgf1: DigestAlg,
        salt_len: usize,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        self.need_rsa()?;
        if signature.len() != self.size || digest.len() != hash.output_len() {
            return Ok(false);
        }
        self.with_ctx(Op::PssVerify, |ctx| {
            PKey::set_pss(ctx, hash, mgf1, salt_len)?;
            // SAFETY: live verify context; both slices are readable for their lengths.
            let rc = unsafe {
                sys::EVP_PKEY_verify(
                    ctx.as_ptr(),
                    signature.as_ptr(),
                    signature.len(),
                    digest.as_ptr(),
                    digest.len(),
                )
            };
            match rc {
                1 => Ok(true),
                0 => {
                    clear_errors();
                    Ok(false)
                }
                _ => Err(ossl_error("EVP_PKEY_verify (PSS)")),
            }
        })
    }

    /// Raw RSA with the private key: `block`^d mod n. `block` must be exactly k bytes and
    /// numerically below the modulus.
    pub fn rsa_raw_private(&self, block: &[u8]) -> Result<Vec<u8>> {
        self.need_rsa()?;
        self.need_private()?;
        if block.len() != self.size {
            return Err(Error(format!("a raw RSA block is {} bytes", self.size)));
        }
        let mut out = vec![0u8; self.size];
        let n = self.with_ctx(Op::RawPrivate, |ctx| {
            let mut len = out.len();
            // SAFETY: live sign context without padding; `out` is writable for `len` bytes.
            let rc = unsafe {
                sys::EVP_PKEY_sign(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut len,
                    block.as_ptr(),
                    block.len(),
                )
            };
            check(rc, "EVP_PKEY_sign (raw)")?;
            Ok(len)
        })?;
        if n != self.size {
            return Err(Error("raw RSA result of the wrong length".into()));
        }
        Ok(out)
    }

    /// Raw RSA decryption: `ciphertext`^d mod n as k bytes, for a caller that removes the
    /// padding itself in constant time (PKCS#1 v1.5 with implicit rejection). `ciphertext` must
    /// be exactly k bytes and below the modulus (the caller checks; both are public).
    ///
    /// This is OpenSSL's RSA decryption without padding rather than the signing path of
    /// [`PKey::rsa_raw_private`]: the same blinded CRT exponentiation, but the path OpenSSL
    /// hardened and tests against the Marvin timing oracle (CVE-2022-4304: constant-time
    /// unblinding and k-byte serialisation, reworked in 3.0.9), which matters here because the
    /// result is a secret, unlike a signature.
    pub fn rsa_raw_decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.need_rsa()?;
        self.need_private()?;
        if ciphertext.len() != self.size {
            return Err(Error(format!("an RSA ciphertext is {} bytes", self.size)));
        }
        let mut out = Zeroizing::new(vec![0u8; self.size]);
        let n = self.with_ctx(Op::RawDecrypt, |ctx| {
            let mut len = out.len();
            // SAFETY: live decrypt context without padding; `out` is writable for `len` bytes
            // and `ciphertext` readable for its length.
            let rc = unsafe {
                sys::EVP_PKEY_decrypt(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut len,
                    ciphertext.as_ptr(),
                    ciphertext.len(),
                )
            };
            check(rc, "EVP_PKEY_decrypt (raw)")?;
            Ok(len)
        })?;
        // Without padding OpenSSL always writes the full k bytes, leading zeros included.
        if n != self.size {
            return Err(Error("raw RSA decryption of the wrong length".into()));
        }
        Ok(out)
    }

    /// Raw RSA with the public key: `block`^e mod n, k bytes. `None` when `block` is not k
    /// bytes or not below the modulus.
    pub fn rsa_raw_public(&self, block: &[u8]) -> Result<Option<Vec<u8>>> {
        self.need_rsa()?;
        if block.len() != self.size {
            return Ok(None);
        }
        let mut out = vec![0u8; self.size];
        self.with_ctx(Op::RawPublic, |ctx| {
            let mut len = out.len();
            // SAFETY: live verify-recover context without padding; `out` is writable for
            // `len` bytes and `block` readable for its length.
            let rc = unsafe {
                sys::EVP_PKEY_verify_recover(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut len,
                    block.as_ptr(),
                    block.len(),
                )
            };
            if rc == 1 && len == out.len() {
                Ok(Some(()))
            } else {
                clear_errors();
                Ok(None)
            }
        })
        .map(|r| r.map(|()| out))
    }

    /// RSA encryption with the public key. The message must fit the padding
    /// ([`RsaEncPadding::max_message_len`]); the result is k bytes.
    pub fn rsa_encrypt(&self, padding: &RsaEncPadding<'_>, message: &[u8]) -> Result<Vec<u8>> {
        self.need_rsa()?;
        if message.len() > padding.max_message_len(self.size) {
            return Err(Error(format!(
                "{} bytes do not fit an RSA block of {} with this padding",
                message.len(),
                self.size
            )));
        }
        let mut out = vec![0u8; self.size];
        let n = self.with_ctx(Op::Encrypt, |ctx| {
            PKey::set_enc_padding(ctx, padding)?;
            let mut len = out.len();
            // SAFETY: live encrypt context; `out` is writable for `len` bytes and `message`
            // readable for its length.
            let rc = unsafe {
                sys::EVP_PKEY_encrypt(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut len,
                    message.as_ptr(),
                    message.len(),
                )
            };
            check(rc, "EVP_PKEY_encrypt")?;
            Ok(len)
        })?;
        out.truncate(n);
        Ok(out)
    }

    /// RSAES-OAEP decryption. Every way a ciphertext can be wrong (length, value, padding,
    /// label) gives the same `Ok(None)`, and the context goes back to its pool either way, so
    /// the outcome takes one path here. PKCS#1 v1.5 decryption is refused outright: it is a
    /// padding oracle unless done with implicit rejection.
    pub fn rsa_decrypt(
        &self,
        padding: &RsaEncPadding<'_>,
        ciphertext: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.need_rsa()?;
        self.need_private()?;
        if matches!(padding, RsaEncPadding::Pkcs1) {
            return Err(Error("PKCS#1 v1.5 decryption is not offered".into()));
        }
        let mut out = Zeroizing::new(vec![0u8; self.size]);
        let len = self.with_ctx(Op::Decrypt, |ctx| {
            PKey::set_enc_padding(ctx, padding)?;
            let mut len = out.len();
            // SAFETY: live decrypt context; `out` is writable for `len` bytes and `ciphertext`
            // readable for its length (OpenSSL rejects lengths other than k itself).
            let rc = unsafe {
                sys::EVP_PKEY_decrypt(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut len,
                    ciphertext.as_ptr(),
                    ciphertext.len(),
                )
            };
            if rc == 1 {
                Ok(Some(len))
            } else {
                clear_errors();
                Ok(None)
            }
        })?;
        Ok(len.filter(|&n| n <= out.len()).map(|n| {
            out.truncate(n);
            out
        }))
    }
}

fn is_a(p: *mut sys::EVP_PKEY, name: &'static CStr) -> bool {
    // SAFETY: `p` is a live key and `name` a static C string.
    unsafe { sys::EVP_PKEY_is_a(p, name.as_ptr()) == 1 }
}

/// Owned EC_GROUP / EC_POINT / BN_CTX for deriving a public point.
struct EcScratch {
    group: *mut sys::EC_GROUP,
    point: *mut sys::EC_POINT,
    bnctx: *mut sys::BN_CTX,
}

impl Drop for EcScratch {
    fn drop(&mut self) {
        // SAFETY: each pointer is owned here and either NULL (a no-op for these frees) or live.
        unsafe {
            sys::EC_POINT_free(self.point);
            sys::EC_GROUP_free(self.group);
            sys::BN_CTX_free(self.bnctx);
        }
    }
}

/// d·G on `curve`, in the encoding of `form` (0x02/0x03 compressed, else uncompressed); the
/// scalar must lie in [1, n-1].
fn ec_public_from_private(curve: Curve, d: &[u8], form: Option<u8>) -> Result<Vec<u8>> {
    let lib = ffi::libctx_ptr()?;
    let priv_bn = Bn::from_be(d)?;
    let mut s = EcScratch {
        group: ptr::null_mut(),
        point: ptr::null_mut(),
        bnctx: ptr::null_mut(),
    };
    // SAFETY: `lib` is our live context; a NULL property query is allowed.
    s.group = unsafe { ffi::EC_GROUP_new_by_curve_name_ex(lib, ptr::null(), curve.nid()) };
    if s.group.is_null() {
        return Err(ossl_error("EC_GROUP_new_by_curve_name_ex"));
    }
    // SAFETY: `lib` is live.
    s.bnctx = unsafe { ffi::BN_CTX_new_ex(lib) };
    if s.bnctx.is_null() {
        return Err(ossl_error("BN_CTX_new_ex"));
    }
    // SAFETY: live group; the order belongs to it.
    let order = unsafe { ffi::EC_GROUP_get0_order(s.group) };
    // SAFETY: live BIGNUMs.
    let in_range = unsafe {
        ffi::BN_is_zero(priv_bn.as_ptr()) == 0 && sys::BN_cmp(priv_bn.as_ptr(), order) < 0
    };
    if order.is_null() || !in_range {
        return Err(Error("EC private value is not in [1, n-1]".into()));
    }
    // SAFETY: live group.
    s.point = unsafe { sys::EC_POINT_new(s.group) };
    if s.point.is_null() {
        return Err(ossl_error("EC_POINT_new"));
    }
    // SAFETY: live group, point, scalar and BN_CTX; NULL q and m ask for generator × n only.
    let rc = unsafe {
        sys::EC_POINT_mul(
            s.group,
            s.point,
            priv_bn.as_ptr(),
            ptr::null(),
            ptr::null(),
            s.bnctx,
        )
    };
    check(rc, "EC_POINT_mul")?;
    let conv = match form {
        Some(0x02 | 0x03) => sys::point_conversion_form_t::POINT_CONVERSION_COMPRESSED,
        _ => sys::point_conversion_form_t::POINT_CONVERSION_UNCOMPRESSED,
    };
    let mut out = vec![0u8; curve.point_len()];
    // SAFETY: live group and point; `out` is writable for its length.
    let n = unsafe {
        sys::EC_POINT_point2oct(s.group, s.point, conv, out.as_mut_ptr(), out.len(), s.bnctx)
    };
    if n == 0 {
        return Err(ossl_error("EC_POINT_point2oct"));
    }
    out.truncate(n);
    Ok(out)
}

/// Read a DER length at `der[*i..]` (short form or 0x81 only: ECDSA signatures are short).
fn der_len(der: &[u8], i: &mut usize) -> Option<usize> {
    let b = *der.get(*i)?;
    *i += 1;
    match b {
        0..=0x7f => Some(usize::from(b)),
        0x81 => {
            let l = *der.get(*i)?;
            *i += 1;
            if l < 0x80 { None } else { Some(usize::from(l)) }
        }
        _ => None,
    }
}

/// A DER INTEGER at `der[*i..]` as unsigned magnitude without leading zeros.
fn der_uint<'a>(der: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
    if *der.get(*i)? != 0x02 {
        return None;
    }
    *i += 1;
    let len = der_len(der, i)?;
    let v = der.get(*i..i.checked_add(len)?)?;
    *i += len;
    let first = *v.first()?;
    if first & 0x80 != 0 {
        return None;
    }
    let skip = v.iter().take_while(|&&b| b == 0).count();
    Some(&v[skip..])
}

/// ECDSA-Sig-Value (DER) → r ‖ s, each left-padded to `half` bytes.
fn der_to_rs(der: &[u8], half: usize) -> Option<Vec<u8>> {
    let mut i = 0;
    if *der.first()? != 0x30 {
        return None;
    }
    i += 1;
    let len = der_len(der, &mut i)?;
    if i + len != der.len() {
        return None;
    }
    let r = der_uint(der, &mut i)?;
    let s = der_uint(der, &mut i)?;
    if i != der.len() || r.len() > half || s.len() > half {
        return None;
    }
    let mut out = vec![0u8; 2 * half];
    out[half - r.len()..half].copy_from_slice(r);
    out[2 * half - s.len()..].copy_from_slice(s);
    Some(out)
}

/// r ‖ s → ECDSA-Sig-Value (DER) written into `out`; returns its length.
fn rs_to_der(rs: &[u8], out: &mut [u8]) -> Option<usize> {
    let (r, s) = rs.split_at(rs.len() / 2);
    let strip = |v: &[u8]| -> (usize, usize) {
        let skip = v.iter().take_while(|&&b| b == 0).count();
        let body = v.len() - skip;
        // A zero integer is one 0x00; a high first bit needs a 0x00 in front.
        let pad = usize::from(body == 0 || v[skip] & 0x80 != 0);
        (skip, body + pad)
    };
    let (rskip, rlen) = strip(r);
    let (sskip, slen) = strip(s);
    if rlen > 127 || slen > 127 {
        return None;
    }
    let content = 2 + rlen + 2 + slen;
    let mut w = Vec::with_capacity(content + 3);
    w.push(0x30);
    if content < 0x80 {
        w.push(content as u8);
    } else if content <= 0xff {
        w.extend_from_slice(&[0x81, content as u8]);
    } else {
        return None;
    }
    for (v, skip, len) in [(r, rskip, rlen), (s, sskip, slen)] {
        w.extend_from_slice(&[0x02, len as u8]);
        w.extend(std::iter::repeat_n(0u8, len - (v.len() - skip)));
        w.extend_from_slice(&v[skip..]);
    }
    let dst = out.get_mut(..w.len())?;
    dst.copy_from_slice(&w);
    Some(w.len())
}

#[cfg(test)]
mod tests;
