//! Private keys as PKCS#8 PrivateKeyInfo DER (RFC 5208, RFC 5915 for EC, RFC 8410 for the
//! Edwards and Montgomery curves): written from key components and read back into them,
//! through OpenSSL's encoders and decoders in the private context.
//!
//! The keys built here live only for one encoding or decoding; operations use [`PKey`] and
//! [`EdKey`](crate::edwards::EdKey), which callers build from the components.

use std::ffi::{CStr, c_char, c_int, c_long, c_void};
use std::fmt;
use std::ptr::{self, NonNull};

use openssl_sys as sys;
use zeroize::Zeroizing;

use crate::edwards::EdCurve;
use crate::ffi::{self, Bn, ParamBuilder, PkeyCtx, check, clear_errors, ossl_error};
use crate::pkey::{Curve, PKey, RsaComponents, RsaPrivateParts};
use crate::{Error, Result};

unsafe extern "C" {
    fn EVP_PKCS82PKEY_ex(
        p8: *const sys::PKCS8_PRIV_KEY_INFO,
        libctx: *mut sys::OSSL_LIB_CTX,
        propq: *const c_char,
    ) -> *mut sys::EVP_PKEY;
    fn CRYPTO_clear_free(ptr: *mut c_void, num: usize, file: *const c_char, line: c_int);
}

/// The components of a private key read from a PrivateKeyInfo.
pub enum PrivateKeyParts {
    /// A two-prime RSA key with all CRT values.
    Rsa(RsaPrivateParts),
    /// An EC key on a supported named curve.
    Ec {
        /// The curve.
        curve: Curve,
        /// The private scalar, big-endian, padded to the field size.
        private: Zeroizing<Vec<u8>>,
        /// The SEC 1 public point the encoding carried (OpenSSL computes it when absent).
        public: Vec<u8>,
    },
    /// An Ed25519, Ed448, X25519 or X448 key.
    Ed {
        /// The curve.
        curve: EdCurve,
        /// The raw private key (RFC 8032 seed or RFC 7748 scalar).
        private: Zeroizing<Vec<u8>>,
    },
}

impl fmt::Debug for PrivateKeyParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivateKeyParts::Rsa(p) => write!(f, "Rsa({p:?})"),
            PrivateKeyParts::Ec { curve, .. } => write!(f, "Ec({curve:?}, ..)"),
            PrivateKeyParts::Ed { curve, .. } => write!(f, "Ed({curve:?}, ..)"),
        }
    }
}

/// An owned EVP_PKEY used only within this module.
struct Key(NonNull<sys::EVP_PKEY>);

impl Key {
    fn new(p: *mut sys::EVP_PKEY, what: &str) -> Result<Key> {
        NonNull::new(p).map(Key).ok_or_else(|| ossl_error(what))
    }

    fn as_ptr(&self) -> *mut sys::EVP_PKEY {
        self.0.as_ptr()
    }

    fn is_a(&self, name: &CStr) -> bool {
        // SAFETY: live key and a NUL-terminated name.
        unsafe { sys::EVP_PKEY_is_a(self.as_ptr(), name.as_ptr()) == 1 }
    }

    fn bn(&self, name: &'static CStr) -> Result<Bn> {
        let mut bn: *mut sys::BIGNUM = ptr::null_mut();
        // SAFETY: live key; on success `bn` is a new BIGNUM we own.
        let rc = unsafe { sys::EVP_PKEY_get_bn_param(self.as_ptr(), name.as_ptr(), &mut bn) };
        check(rc, "EVP_PKEY_get_bn_param")?;
        Bn::from_raw(bn).ok_or_else(|| Error(format!("no {}", name.to_string_lossy())))
    }

    fn has_bn(&self, name: &'static CStr) -> bool {
        let found = self.bn(name).is_ok();
        if !found {
            clear_errors();
        }
        found
    }

    fn utf8(&self, name: &'static CStr) -> Result<String> {
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

    fn octets(&self, name: &'static CStr, max: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let mut len = 0usize;
        // SAFETY: live key; `buf` is writable for its length.
        let rc = unsafe {
            sys::EVP_PKEY_get_octet_string_param(
                self.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
            )
        };
        check(rc, "EVP_PKEY_get_octet_string_param")?;
        buf.truncate(len.min(max));
        Ok(buf)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: we own one reference to the key.
        unsafe { sys::EVP_PKEY_free(self.0.as_ptr()) }
    }
}

/// An owned PKCS8_PRIV_KEY_INFO (OpenSSL clears the key octets when freeing it).
struct P8(NonNull<sys::PKCS8_PRIV_KEY_INFO>);

impl Drop for P8 {
    fn drop(&mut self) {
        // SAFETY: we own the structure.
        unsafe { sys::PKCS8_PRIV_KEY_INFO_free(self.0.as_ptr()) }
    }
}

fn from_data(alg: &'static CStr, params: ffi::Params) -> Result<Key> {
    let ctx = PkeyCtx::from_name(alg)?;
    // SAFETY: live context.
    let rc = unsafe { sys::EVP_PKEY_fromdata_init(ctx.as_ptr()) };
    check(rc, "EVP_PKEY_fromdata_init")?;
    let mut out: *mut sys::EVP_PKEY = ptr::null_mut();
    // SAFETY: live context and parameter array; `out` receives a new key we own.
    let rc = unsafe {
        sys::EVP_PKEY_fromdata(
            ctx.as_ptr(),
            &mut out,
            sys::EVP_PKEY_KEYPAIR,
            params.as_ptr(),
        )
    };
    check(rc, "EVP_PKEY_fromdata")?;
    Key::new(out, "EVP_PKEY_fromdata")
}

/// The PrivateKeyInfo DER of `key`.
fn encode(key: &Key) -> Result<Zeroizing<Vec<u8>>> {
    // SAFETY: live key and static strings; the context takes its own reference to the key.
    let ctx = unsafe {
        sys::OSSL_ENCODER_CTX_new_for_pkey(
            key.as_ptr(),
            sys::EVP_PKEY_KEYPAIR,
            c"DER".as_ptr(),
            c"PrivateKeyInfo".as_ptr(),
            ptr::null(),
        )
    };
    let ctx = NonNull::new(ctx).ok_or_else(|| ossl_error("OSSL_ENCODER_CTX_new_for_pkey"))?;
    let mut data: *mut u8 = ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: live context; with `data` NULL OpenSSL allocates the output and sets its length.
    let rc = unsafe { sys::OSSL_ENCODER_to_data(ctx.as_ptr(), &mut data, &mut len) };
    // SAFETY: we own the context and no longer use it.
    unsafe { sys::OSSL_ENCODER_CTX_free(ctx.as_ptr()) };
    check(rc, "OSSL_ENCODER_to_data (PrivateKeyInfo)")?;
    let Some(data) = NonNull::new(data) else {
        return Err(Error("PrivateKeyInfo encoder produced nothing".into()));
    };
    // SAFETY: OpenSSL allocated `len` bytes at `data` and wrote the DER there.
    let der = Zeroizing::new(unsafe { std::slice::from_raw_parts(data.as_ptr(), len) }.to_vec());
    // SAFETY: `data` came from OpenSSL's allocator and is `len` bytes; it is wiped and freed
    // once, and not used afterwards.
    unsafe { CRYPTO_clear_free(data.as_ptr().cast(), len, c"".as_ptr(), 0) };
    Ok(der)
}

/// The PrivateKeyInfo of a two-prime RSA key; every CRT value is needed (RSAPrivateKey has
/// no optional fields).
pub fn rsa_to_der(c: &RsaComponents<'_>) -> Result<Zeroizing<Vec<u8>>> {
    let crt = c
        .crt
        .as_ref()
        .ok_or_else(|| Error("an RSA key without its CRT values has no PKCS#8 form".into()))?;
    let mut b = ParamBuilder::new()?;
    b.push_bn(c"n", c.n)?;
    b.push_bn(c"e", c.e)?;
    b.push_bn(c"d", c.d)?;
    b.push_bn(c"rsa-factor1", crt.p)?;
    b.push_bn(c"rsa-factor2", crt.q)?;
    b.push_bn(c"rsa-exponent1", crt.dp)?;
    b.push_bn(c"rsa-exponent2", crt.dq)?;
    b.push_bn(c"rsa-coefficient1", crt.qinv)?;
    encode(&from_data(c"RSA", b.build()?)?)
}

/// The PrivateKeyInfo of an EC key (the named curve in the algorithm identifier, the public
/// point in the ECPrivateKey), from its private scalar.
pub fn ec_to_der(curve: Curve, private: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    // Also checks that the scalar is in [1, n-1].
    let point = PKey::ec_from_components(curve, Some(private), None)?.ec_public_point()?;
    let mut b = ParamBuilder::new()?;
    b.push_utf8(c"group", curve.group_name())?;
    b.push_bn(c"priv", private)?;
    b.push_octets(c"pub", &point)?;
    encode(&from_data(c"EC", b.build()?)?)
}

const fn ed_alg(curve: EdCurve) -> &'static CStr {
    match curve {
        EdCurve::Ed25519 => c"ED25519",
        EdCurve::Ed448 => c"ED448",
        EdCurve::X25519 => c"X25519",
        EdCurve::X448 => c"X448",
    }
}

/// The PrivateKeyInfo of an Edwards or Montgomery key from its raw private key.
pub fn ed_to_der(curve: EdCurve, private: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if private.len() != curve.key_len() {
        return Err(Error(format!(
            "a {curve:?} private key is {} bytes",
            curve.key_len()
        )));
    }
    let lib = ffi::libctx_ptr()?;
    // SAFETY: live library context, static name, and `private` readable for its length
    // (OpenSSL copies it).
    let k = unsafe {
        sys::EVP_PKEY_new_raw_private_key_ex(
            lib,
            ed_alg(curve).as_ptr(),
            ptr::null(),
            private.as_ptr(),
            private.len(),
        )
    };
    encode(&Key::new(k, "EVP_PKEY_new_raw_private_key_ex")?)
}

fn curve_of_group(name: &str) -> Option<Curve> {
    match name {
        "prime256v1" | "P-256" | "secp256r1" => Some(Curve::P256),
        "secp384r1" | "P-384" => Some(Curve::P384),
        "secp521r1" | "P-521" => Some(Curve::P521),
        "secp256k1" => Some(Curve::Secp256k1),
        _ => None,
    }
}

/// Read a PrivateKeyInfo (exactly: no other key format, no trailing bytes) into the key's
/// components. RSA (two primes, not RSA-PSS-restricted), EC on the supported named curves,
/// and the four RFC 8410 curves are understood; anything else is an error.
pub fn from_der(der: &[u8]) -> Result<PrivateKeyParts> {
    let len = c_long::try_from(der.len()).map_err(|_| Error("PrivateKeyInfo too long".into()))?;
    let mut p = der.as_ptr();
    // SAFETY: `p` points at `len` readable bytes; d2i advances it and returns a new structure.
    let p8 = unsafe { sys::d2i_PKCS8_PRIV_KEY_INFO(ptr::null_mut(), &mut p, len) };
    let p8 = P8(NonNull::new(p8).ok_or_else(|| ossl_error("not a PrivateKeyInfo"))?);
    // SAFETY: both pointers come from the same slice; d2i never advances past its end.
    let used = unsafe { p.offset_from(der.as_ptr()) };
    if usize::try_from(used).ok() != Some(der.len()) {
        return Err(Error("trailing bytes after PrivateKeyInfo".into()));
    }
    let lib = ffi::libctx_ptr()?;
    // SAFETY: live structure and library context; the result is a new key we own.
    let k = unsafe { EVP_PKCS82PKEY_ex(p8.0.as_ptr(), lib, ptr::null()) };
    let key = Key::new(k, "cannot decode the PrivateKeyInfo key")?;
    drop(p8);

    if key.is_a(c"RSA") {
        if key.has_bn(c"rsa-factor3") {
            return Err(Error("multi-prime RSA keys are not supported".into()));
        }
        let secret =
            |name| -> Result<Zeroizing<Vec<u8>>> { Ok(Zeroizing::new(key.bn(name)?.to_be())) };
        return Ok(PrivateKeyParts::Rsa(RsaPrivateParts {
            n: key.bn(c"n")?.to_be(),
            e: key.bn(c"e")?.to_be(),
            d: secret(c"d")?,
            p: secret(c"rsa-factor1")?,
            q: secret(c"rsa-factor2")?,
            dp: secret(c"rsa-exponent1")?,
            dq: secret(c"rsa-exponent2")?,
            qinv: secret(c"rsa-coefficient1")?,
        }));
    }
    if key.is_a(c"EC") {
        let group = key
            .utf8(c"group")
            .map_err(|_| Error("EC key without a named curve".into()))?;
        let curve = curve_of_group(&group)
            .ok_or_else(|| Error(format!("EC curve {group} is not supported")))?;
        let private = key
            .bn(c"priv")?
            .to_be_padded(curve.field_len())
            .map(Zeroizing::new)
            .ok_or_else(|| Error("EC private value wider than the field".into()))?;
        let public = key.octets(c"pub", curve.point_len()).unwrap_or_else(|_| {
            clear_errors();
            Vec::new()
        });
        return Ok(PrivateKeyParts::Ec {
            curve,
            private,
            public,
        });
    }
    for curve in EdCurve::ALL {
        if key.is_a(ed_alg(curve)) {
            let mut private = Zeroizing::new(vec![0u8; curve.key_len()]);
            let mut n = private.len();
            // SAFETY: live key; `private` is writable for `n` bytes.
            let rc = unsafe {
                sys::EVP_PKEY_get_raw_private_key(key.as_ptr(), private.as_mut_ptr(), &mut n)
            };
            check(rc, "EVP_PKEY_get_raw_private_key")?;
            if n != curve.key_len() {
                return Err(Error("private key of an unexpected length".into()));
            }
            return Ok(PrivateKeyParts::Ed { curve, private });
        }
    }
    Err(Error(
        "the PrivateKeyInfo holds a key type that is not supported".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edwards::EdKey;
    use crate::pkey::RsaCrt;
    use openssl::pkey::PKey as OsslKey;

    fn rsa_der(parts: &RsaPrivateParts) -> Zeroizing<Vec<u8>> {
        rsa_to_der(&RsaComponents {
            n: &parts.n,
            e: &parts.e,
            d: &parts.d,
            crt: Some(RsaCrt {
                p: &parts.p,
                q: &parts.q,
                dp: &parts.dp,
                dq: &parts.dq,
                qinv: &parts.qinv,
            }),
        })
        .unwrap()
    }

    #[test]
    fn rsa_round_trip_matches_openssl() {
        let key = PKey::generate_rsa(2048, &[1, 0, 1]).unwrap();
        let parts = key.rsa_private_parts().unwrap();
        let der = rsa_der(&parts);
        // The openssl crate (default context) reads it as the same key.
        let theirs = OsslKey::private_key_from_pkcs8(&der).unwrap();
        let rsa = theirs.rsa().unwrap();
        assert_eq!(rsa.n().to_vec(), parts.n);
        assert_eq!(rsa.d().to_vec(), parts.d.to_vec());
        assert_eq!(rsa.iqmp().unwrap().to_vec(), parts.qinv.to_vec());
        // And its own PKCS#8 reads back into the same components.
        let PrivateKeyParts::Rsa(back) = from_der(&theirs.private_key_to_pkcs8().unwrap()).unwrap()
        else {
            panic!("not RSA");
        };
        assert_eq!(back.n, parts.n);
        assert_eq!(back.e, parts.e);
        for (a, b) in [
            (&back.d, &parts.d),
            (&back.p, &parts.p),
            (&back.q, &parts.q),
            (&back.dp, &parts.dp),
            (&back.dq, &parts.dq),
            (&back.qinv, &parts.qinv),
        ] {
            assert_eq!(a.as_slice(), b.as_slice());
        }
        assert!(
            rsa_to_der(&RsaComponents {
                n: &parts.n,
                e: &parts.e,
                d: &parts.d,
                crt: None
            })
            .is_err()
        );
    }

    #[test]
    fn ec_round_trip_carries_curve_and_point() {
        for curve in Curve::ALL {
            let key = PKey::generate_ec(curve).unwrap();
            let d = key.ec_private_value().unwrap();
            let der = ec_to_der(curve, &d).unwrap();
            let theirs = OsslKey::private_key_from_pkcs8(&der).unwrap();
            let ec = theirs.ec_key().unwrap();
            let mut bn_ctx = openssl::bn::BigNumContext::new().unwrap();
            let point = ec
                .public_key()
                .to_bytes(
                    ec.group(),
                    openssl::ec::PointConversionForm::UNCOMPRESSED,
                    &mut bn_ctx,
                )
                .unwrap();
            assert_eq!(point, key.ec_public_point().unwrap());
            // The algorithm identifier names the curve by OID.
            let oid = curve.oid_der();
            assert!(der.windows(oid.len()).any(|w| w == oid), "{curve:?}");
            let PrivateKeyParts::Ec {
                curve: c,
                private,
                public,
            } = from_der(&der).unwrap()
            else {
                panic!("not EC");
            };
            assert_eq!(c, curve);
            assert_eq!(private.as_slice(), d.as_slice());
            assert_eq!(public, point);
        }
        assert!(ec_to_der(Curve::P256, &[0u8; 32]).is_err());
    }

    #[test]
    fn edwards_round_trip_is_rfc8410() {
        // RFC 8410 §10.3: the Ed25519 example private key.
        let rfc = hex::decode(
            "302e020100300506032b657004220420d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842",
        )
        .unwrap();
        let seed = &rfc[16..];
        assert_eq!(
            ed_to_der(EdCurve::Ed25519, seed).unwrap().as_slice(),
            rfc.as_slice()
        );
        let PrivateKeyParts::Ed { curve, private } = from_der(&rfc).unwrap() else {
            panic!("not Ed");
        };
        assert_eq!(curve, EdCurve::Ed25519);
        assert_eq!(private.as_slice(), seed);
        for curve in EdCurve::ALL {
            let key = EdKey::generate(curve).unwrap();
            let der = ed_to_der(curve, &key.private_raw().unwrap()).unwrap();
            let theirs = OsslKey::private_key_from_pkcs8(&der).unwrap();
            assert_eq!(
                theirs.raw_private_key().unwrap(),
                key.private_raw().unwrap().to_vec()
            );
            let PrivateKeyParts::Ed { curve: c, private } = from_der(&der).unwrap() else {
                panic!("not Ed");
            };
            assert_eq!(c, curve);
            assert_eq!(private.as_slice(), key.private_raw().unwrap().as_slice());
        }
    }

    #[test]
    fn garbage_and_other_formats_are_refused() {
        assert!(from_der(&[]).is_err());
        assert!(from_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        let key = PKey::generate_ec(Curve::P256).unwrap();
        let der = ec_to_der(Curve::P256, &key.ec_private_value().unwrap()).unwrap();
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert!(from_der(&trailing).is_err());
        assert!(from_der(&der[..der.len() - 1]).is_err());
        // A traditional (RFC 5915 ECPrivateKey) encoding is not a PrivateKeyInfo.
        let theirs = OsslKey::private_key_from_pkcs8(&der).unwrap();
        let sec1 = theirs.ec_key().unwrap().private_key_to_der().unwrap();
        assert!(from_der(&sec1).is_err());
        // An unsupported curve.
        let p224 = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP224R1).unwrap(),
        )
        .unwrap();
        let p224 = OsslKey::from_ec_key(p224)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap();
        assert!(from_der(&p224).is_err());
    }
}
