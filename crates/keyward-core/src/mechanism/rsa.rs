//! RSA keys and mechanisms (PKCS#11 3.0 §6.1): CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS
//! (sign, verify, encrypt, decrypt), CKM_SHA*_RSA_PKCS, CKM_RSA_PKCS_PSS and
//! CKM_SHA*_RSA_PKCS_PSS, CKM_RSA_X_509 (sign and verify) and CKM_RSA_PKCS_OAEP.
//!
//! CKM_RSA_PKCS decryption uses implicit rejection (draft-irtf-cfrg-rsa-guidance, as OpenSSL
//! 3.2+ and NSS do, see `keyward_ossl::rsa_pkcs1`): a ciphertext of the right length and below
//! the modulus always decrypts with CKR_OK, to the message or, when the padding is wrong, to a
//! synthetic message fixed by the key and the ciphertext, so the token is no Bleichenbacher /
//! Marvin padding oracle. It unwraps secret keys only, and the engine replaces a message of the
//! wrong length by a random key of the expected one, so unwrapping is no oracle either. SHA-1
//! and SHA-3 variants sign and verify; keys under 2048 bits are accepted for import and
//! verification only.

use std::sync::{Arc, OnceLock};

use cryptoki_sys::*;
use keyward_ossl::digest::{Digest, DigestAlg, digest_info};
use keyward_ossl::pkey::{KeyKind, PKey, RsaComponents, RsaCrt, RsaEncPadding};
use keyward_ossl::rsa_pkcs1::ImplicitRejection;
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::{Bytes, CipherOp, Mech, Registry, SignOp, VerifyOp};
use crate::object::Object;
use crate::types::{AttrValue, Attrs, MechParams, Mechanism, MechanismInfo};

/// Modulus sizes a new key may have.
const GEN_MIN_BITS: usize = 2048;
const GEN_MAX_BITS: usize = 8192;
/// Modulus sizes an existing key may have to be imported and to verify.
const USE_MIN_BITS: usize = 1024;
const USE_MAX_BITS: usize = 16384;
/// The smallest modulus that may sign, encrypt or decrypt (SP 800-131A: 1024-bit RSA only
/// for checking old signatures).
const STRONG_MIN_BITS: usize = 2048;
/// PKCS#1 v1.5 padding takes at least 11 bytes of the block.
const PKCS1_OVERHEAD: usize = 11;
/// OpenSSL refuses larger public exponents for large moduli; 64 bits covers every real use.
const MAX_EXPONENT_LEN: usize = 8;

fn strip(b: &[u8]) -> &[u8] {
    let skip = b.iter().take_while(|&&x| x == 0).count();
    &b[skip..]
}

fn required<'a>(attrs: &'a Attrs, ty: CK_ATTRIBUTE_TYPE, what: &str) -> Result<&'a [u8]> {
    attrs
        .get_bytes(ty)
        .filter(|v| !strip(v).is_empty())
        .ok_or_else(|| Code::TemplateIncomplete.err(format!("RSA key without {what}")))
}

fn build_rsa(attrs: &Attrs) -> Result<PKey> {
    let n = required(attrs, CKA_MODULUS, "CKA_MODULUS")?;
    let e = required(attrs, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT")?;
    let bits = strip(n).len() * 8;
    if !(USE_MIN_BITS - 7..=USE_MAX_BITS).contains(&bits) {
        return Err(Code::KeySizeRange.err(format!("RSA modulus of about {bits} bits")));
    }
    let key = match attrs.get_ulong(CKA_CLASS) {
        Some(CKO_PRIVATE_KEY) => {
            let d = required(attrs, CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT")?;
            let crt_attrs = [
                CKA_PRIME_1,
                CKA_PRIME_2,
                CKA_EXPONENT_1,
                CKA_EXPONENT_2,
                CKA_COEFFICIENT,
            ];
            let crt_vals: Vec<Option<&[u8]>> =
                crt_attrs.iter().map(|t| attrs.get_bytes(*t)).collect();
            let crt = match crt_vals.as_slice() {
                [Some(p), Some(q), Some(dp), Some(dq), Some(qinv)] => {
                    Some(RsaCrt { p, q, dp, dq, qinv })
                }
                // Without every CRT value the key still works through d, only slower.
                _ => None,
            };
            PKey::rsa_private_from_components(&RsaComponents { n, e, d, crt })
        }
        Some(CKO_PUBLIC_KEY) => PKey::rsa_public_from_components(n, e),
        _ => return Err(Code::KeyTypeInconsistent.err("not an RSA public or private key")),
    };
    key.map_err(|err| Code::AttributeValueInvalid.err(format!("RSA key: {err}")))
}

/// What an RSA key object caches: the parsed key, and the implicit-rejection state that
/// CKM_RSA_PKCS decryption derives from the private exponent, made on first use.
struct CachedRsa {
    key: Arc<PKey>,
    implicit_rejection: OnceLock<Arc<ImplicitRejection>>,
}

fn cached_rsa(key: &Object) -> Result<Arc<CachedRsa>> {
    if key.key_type() != Some(CKK_RSA) {
        return Err(Code::KeyTypeInconsistent.err("not an RSA key"));
    }
    let c = key.cached(|attrs| {
        Ok(CachedRsa {
            key: Arc::new(build_rsa(attrs)?),
            implicit_rejection: OnceLock::new(),
        })
    })?;
    let k = &c.key;
    if k.kind() != KeyKind::Rsa || !(USE_MIN_BITS..=USE_MAX_BITS).contains(&k.bits()) {
        return Err(
            Code::KeySizeRange.err(format!("RSA keys of {} bits are not supported", k.bits()))
        );
    }
    Ok(c)
}

/// The parsed key of an RSA key object, built once per object and shared (every family that
/// uses RSA keys must go through this so that the object's cache holds one type).
pub fn rsa_key(key: &Object) -> Result<Arc<PKey>> {
    Ok(cached_rsa(key)?.key.clone())
}

/// The implicit-rejection state of an RSA private key object: SHA-256 of its private exponent
/// as an HMAC key, computed once per object.
fn implicit_rejection(key: &Object) -> Result<Arc<ImplicitRejection>> {
    let c = cached_rsa(key)?;
    if let Some(ir) = c.implicit_rejection.get() {
        return Ok(ir.clone());
    }
    let d = required(key.attrs(), CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT")?;
    let built = Arc::new(ImplicitRejection::new(&c.key, d)?);
    // Another thread may have stored its own first; both are the same.
    Ok(c.implicit_rejection.get_or_init(|| built).clone())
}

/// Check an RSA key's attributes the way an operation will read them (for object creation).
/// The SubjectPublicKeyInfo of an RSA key object's attributes. A private key must also be
/// consistent, so that a mistyped import fails here rather than signing garbage later: its CRT
/// values must agree with n, e and d, and without them one signature must verify.
pub fn public_info(attrs: &Attrs) -> Result<Vec<u8>> {
    let key = build_rsa(attrs)?;
    if key.has_private() {
        let bytes = |ty| attrs.get_bytes(ty).unwrap_or_default();
        let crt = match [
            CKA_PRIME_1,
            CKA_PRIME_2,
            CKA_EXPONENT_1,
            CKA_EXPONENT_2,
            CKA_COEFFICIENT,
        ]
        .map(|ty| attrs.get_bytes(ty))
        {
            [Some(p), Some(q), Some(dp), Some(dq), Some(qinv)] => {
                Some(RsaCrt { p, q, dp, dq, qinv })
            }
            _ => None,
        };
        let parts = RsaComponents {
            n: bytes(CKA_MODULUS),
            e: bytes(CKA_PUBLIC_EXPONENT),
            d: bytes(CKA_PRIVATE_EXPONENT),
            crt,
        };
        let consistent = match parts.crt_consistent()? {
            Some(ok) => ok,
            None => pairwise_test(&key).is_ok(),
        };
        if !consistent {
            return Err(
                Code::AttributeValueInvalid.err("the RSA private key components do not agree")
            );
        }
    }
    Ok(key.spki_der()?)
}

pub fn validate_rsa_key(attrs: &Attrs) -> Result<()> {
    build_rsa(attrs).map(|_| ())
}

/// The public exponent for a new key: CKA_PUBLIC_EXPONENT of the template, else 65537.
fn public_exponent(template: &Attrs) -> Result<Vec<u8>> {
    let Some(v) = template.get(CKA_PUBLIC_EXPONENT) else {
        return Ok(vec![1, 0, 1]);
    };
    let AttrValue::Bytes(b) = v else {
        return Err(Code::AttributeValueInvalid.err("CKA_PUBLIC_EXPONENT is a big integer"));
    };
    let e = strip(b);
    let odd = e.last().is_some_and(|l| l & 1 == 1);
    if !odd || e == [1] || e.len() > MAX_EXPONENT_LEN {
        return Err(Code::AttributeValueInvalid
            .err("CKA_PUBLIC_EXPONENT must be odd, at least 3 and at most 64 bits"));
    }
    Ok(e.to_vec())
}

struct RsaKeyPairGen;

impl Mech for RsaKeyPairGen {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: GEN_MIN_BITS as CK_ULONG,
            max_key_size: GEN_MAX_BITS as CK_ULONG,
            flags: CKF_GENERATE_KEY_PAIR,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_RSA]
    }

    fn generate_key_pair(
        &self,
        mech: &Mechanism,
        public: &Attrs,
        _private: &Attrs,
    ) -> Result<(Attrs, Attrs)> {
        no_params(mech)?;
        let bits = public.get_ulong(CKA_MODULUS_BITS).ok_or_else(|| {
            Code::TemplateIncomplete.err("CKA_MODULUS_BITS missing from the public-key template")
        })?;
        let bits = usize::try_from(bits)
            .ok()
            .filter(|b| (GEN_MIN_BITS..=GEN_MAX_BITS).contains(b))
            .ok_or_else(|| {
                Code::KeySizeRange.err(format!(
                    "RSA keys are {GEN_MIN_BITS} to {GEN_MAX_BITS} bits"
                ))
            })?;
        let e = public_exponent(public)?;
        let key = PKey::generate_rsa(bits, &e)?;
        pairwise_test(&key)?;
        let parts = key.rsa_private_parts()?;
        let spki = key.spki_der()?;

        let mut pubattrs = Attrs::new();
        pubattrs.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_RSA));
        pubattrs.set(CKA_MODULUS, AttrValue::bytes(parts.n.clone()));
        pubattrs.set(CKA_MODULUS_BITS, AttrValue::Ulong(key.bits() as CK_ULONG));
        pubattrs.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(parts.e.clone()));
        pubattrs.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki.clone()));
        let mut privattrs = Attrs::new();
        privattrs.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_RSA));
        privattrs.set(CKA_MODULUS, AttrValue::bytes(parts.n.clone()));
        privattrs.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(parts.e.clone()));
        privattrs.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki));
        for (ty, v) in [
            (CKA_PRIVATE_EXPONENT, &parts.d),
            (CKA_PRIME_1, &parts.p),
            (CKA_PRIME_2, &parts.q),
            (CKA_EXPONENT_1, &parts.dp),
            (CKA_EXPONENT_2, &parts.dq),
            (CKA_COEFFICIENT, &parts.qinv),
        ] {
            privattrs.set(ty, AttrValue::Bytes(v.clone()));
        }
        Ok((pubattrs, privattrs))
    }
}

/// Pair-wise consistency test of a new key pair (FIPS 140-3 conditional self-test).
fn pairwise_test(key: &PKey) -> Result<()> {
    let tbs = digest_info(DigestAlg::Sha256, &[0x5a; 32])?;
    let sig = key.rsa_pkcs1_sign_raw(&tbs)?;
    if key.rsa_pkcs1_verify_raw(&tbs, &sig)? {
        Ok(())
    } else {
        Err(Code::FipsSelfTestFailed.err("RSA key pair failed its pair-wise consistency test"))
    }
}

/// An RSA key that may sign, encrypt or decrypt: at least 2048 bits.
fn strong(key: Arc<PKey>) -> Result<Arc<PKey>> {
    if key.bits() < STRONG_MIN_BITS {
        return Err(Code::KeySizeRange.err(format!(
            "{}-bit RSA keys only verify; other operations need {STRONG_MIN_BITS} bits",
            key.bits()
        )));
    }
    Ok(key)
}

/// The private RSA key of `key`, strong enough to sign or decrypt.
fn private_key(key: &Object, what: &str) -> Result<Arc<PKey>> {
    let k = rsa_key(key)?;
    if !k.has_private() {
        return Err(Code::KeyTypeInconsistent.err(format!("{what} needs an RSA private key")));
    }
    strong(k)
}

fn unsupported(what: &str) -> crate::error::Error {
    Code::MechanismInvalid.err(format!("this RSA mechanism does not {what}"))
}

fn param_invalid(why: &str) -> crate::error::Error {
    Code::MechanismParamInvalid.err(why.to_owned())
}

/// The hash a CK_RSA_PKCS_PSS_PARAMS / CK_RSA_PKCS_OAEP_PARAMS hashAlg names.
fn hash_of_mech(m: CK_MECHANISM_TYPE) -> Option<DigestAlg> {
    match m {
        CKM_SHA_1 => Some(DigestAlg::Sha1),
        CKM_SHA224 => Some(DigestAlg::Sha224),
        CKM_SHA256 => Some(DigestAlg::Sha256),
        CKM_SHA384 => Some(DigestAlg::Sha384),
        CKM_SHA512 => Some(DigestAlg::Sha512),
        CKM_SHA3_224 => Some(DigestAlg::Sha3_224),
        CKM_SHA3_256 => Some(DigestAlg::Sha3_256),
        CKM_SHA3_384 => Some(DigestAlg::Sha3_384),
        CKM_SHA3_512 => Some(DigestAlg::Sha3_512),
        _ => None,
    }
}

/// The hash of a CKG_MGF1_* mask generation function.
fn hash_of_mgf(g: CK_ULONG) -> Option<DigestAlg> {
    match g {
        CKG_MGF1_SHA1 => Some(DigestAlg::Sha1),
        CKG_MGF1_SHA224 => Some(DigestAlg::Sha224),
        CKG_MGF1_SHA256 => Some(DigestAlg::Sha256),
        CKG_MGF1_SHA384 => Some(DigestAlg::Sha384),
        CKG_MGF1_SHA512 => Some(DigestAlg::Sha512),
        CKG_MGF1_SHA3_224 => Some(DigestAlg::Sha3_224),
        CKG_MGF1_SHA3_256 => Some(DigestAlg::Sha3_256),
        CKG_MGF1_SHA3_384 => Some(DigestAlg::Sha3_384),
        CKG_MGF1_SHA3_512 => Some(DigestAlg::Sha3_512),
        _ => None,
    }
}

/// Checked CK_RSA_PKCS_PSS_PARAMS.
#[derive(Clone, Copy, Debug)]
struct PssParams {
    hash: DigestAlg,
    mgf1: DigestAlg,
    salt_len: usize,
}

/// The PSS parameters of `mech` for `key`; `fixed` is the hash of a CKM_SHA*_RSA_PKCS_PSS
/// mechanism, which hashAlg must repeat.
fn pss_params(mech: &Mechanism, fixed: Option<DigestAlg>, key: &PKey) -> Result<PssParams> {
    let MechParams::Pss {
        hash,
        mgf,
        salt_len,
    } = &mech.params
    else {
        return Err(param_invalid("PSS needs CK_RSA_PKCS_PSS_PARAMS"));
    };
    let hash = hash_of_mech(*hash)
        .ok_or_else(|| param_invalid("PSS hashAlg must be CKM_SHA_1 or a SHA-2 hash"))?;
    if fixed.is_some_and(|f| f != hash) {
        return Err(param_invalid(
            "PSS hashAlg differs from the mechanism's hash",
        ));
    }
    let mgf1 = hash_of_mgf(*mgf).ok_or_else(|| param_invalid("PSS mgf must be CKG_MGF1_*"))?;
    // RFC 8017 §9.1.1: emLen = ceil((modBits - 1) / 8) must hold hLen + sLen + 2 bytes; for
    // moduli of a whole number of bytes this is the k - hLen - 2 of PKCS#11.
    let em_len = key.bits().saturating_sub(1).div_ceil(8);
    let max = em_len.saturating_sub(hash.output_len() + 2);
    let salt_len = usize::try_from(*salt_len)
        .ok()
        .filter(|s| *s <= max)
        .ok_or_else(|| {
            Code::MechanismParamInvalid.err(format!(
                "PSS salt of {salt_len} bytes; at most {max} with this key and hash"
            ))
        })?;
    Ok(PssParams {
        hash,
        mgf1,
        salt_len,
    })
}

/// Checked CK_RSA_PKCS_OAEP_PARAMS (the label is the CKZ_DATA_SPECIFIED source data).
struct OaepParams {
    hash: DigestAlg,
    mgf1: DigestAlg,
    label: Vec<u8>,
}

fn oaep_params(mech: &Mechanism) -> Result<OaepParams> {
    let MechParams::Oaep { hash, mgf, label } = &mech.params else {
        return Err(param_invalid("OAEP needs CK_RSA_PKCS_OAEP_PARAMS"));
    };
    let hash = hash_of_mech(*hash)
        .ok_or_else(|| param_invalid("OAEP hashAlg must be CKM_SHA_1 or a SHA-2 hash"))?;
    let mgf1 = hash_of_mgf(*mgf).ok_or_else(|| param_invalid("OAEP mgf must be CKG_MGF1_*"))?;
    Ok(OaepParams {
        hash,
        mgf1,
        label: label.clone(),
    })
}

/// Encryption padding: PKCS#1 v1.5 (`None`) or OAEP.
struct EncParams(Option<OaepParams>);

impl EncParams {
    fn padding(&self) -> RsaEncPadding<'_> {
        match &self.0 {
            None => RsaEncPadding::Pkcs1,
            Some(o) => RsaEncPadding::Oaep {
                hash: o.hash,
                mgf1: o.mgf1,
                label: &o.label,
            },
        }
    }
}

/// Which RSA scheme a mechanism uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// PKCS#1 v1.5: signatures, and encryption for CKM_RSA_PKCS.
    Pkcs1,
    /// RSASSA-PSS.
    Pss,
    /// Raw RSA (CKM_RSA_X_509).
    X509,
    /// RSAES-OAEP.
    Oaep,
}

/// One RSA mechanism: its scheme, the hash it applies to the data (`None`: the caller's
/// input is signed as given) and the operations it offers.
struct Rsa {
    scheme: Scheme,
    hash: Option<DigestAlg>,
    flags: CK_FLAGS,
}

/// A signature scheme with its checked parameters.
enum Sig {
    Pkcs1,
    Pss(PssParams),
    /// Raw RSA; the modulus (k bytes, big-endian) to keep inputs below it.
    X509(Vec<u8>),
}

impl Rsa {
    fn sig(&self, mech: &Mechanism, key: &PKey) -> Result<Sig> {
        match self.scheme {
            Scheme::Pkcs1 => no_params(mech).map(|()| Sig::Pkcs1),
            Scheme::Pss => pss_params(mech, self.hash, key).map(Sig::Pss),
            Scheme::X509 => {
                no_params(mech)?;
                let (n, _) = key.rsa_public_parts()?;
                let k = key.signature_len();
                let mut modulus = vec![0u8; k.saturating_sub(n.len())];
                modulus.extend_from_slice(&n);
                Ok(Sig::X509(modulus))
            }
            Scheme::Oaep => Err(unsupported("sign or verify")),
        }
    }

    fn input(&self, sig: &Sig, key: &PKey) -> Result<Input> {
        let k = key.signature_len();
        Input::new(
            self.hash,
            match sig {
                Sig::Pkcs1 => k.saturating_sub(PKCS1_OVERHEAD),
                Sig::Pss(p) => p.hash.output_len(),
                Sig::X509(_) => k,
            },
        )
    }

    fn enc_params(&self, mech: &Mechanism) -> Result<EncParams> {
        match self.scheme {
            Scheme::Pkcs1 => no_params(mech).map(|()| EncParams(None)),
            Scheme::Oaep => oaep_params(mech).map(|o| EncParams(Some(o))),
            Scheme::Pss | Scheme::X509 => Err(unsupported("encrypt or decrypt")),
        }
    }
}

enum Input {
    /// Caller-formatted data, at most `max` bytes.
    Raw {
        buf: Zeroizing<Vec<u8>>,
        max: usize,
    },
    Hashed(Digest),
}

impl Input {
    fn new(hash: Option<DigestAlg>, max: usize) -> Result<Input> {
        Ok(match hash {
            None => Input::Raw {
                buf: Zeroizing::new(Vec::new()),
                max,
            },
            Some(alg) => Input::Hashed(Digest::new(alg)?),
        })
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Raw { buf, max } => {
                if buf.len() + data.len() > *max {
                    return Err(Code::DataLenRange.err(format!(
                        "this RSA mechanism takes at most {max} bytes of input with this key"
                    )));
                }
                buf.extend_from_slice(data);
                Ok(())
            }
            Input::Hashed(d) => Ok(d.update(data)?),
        }
    }

    /// The data the scheme encodes: the caller's bytes, or the digest (as a DigestInfo for
    /// PKCS#1 v1.5).
    fn take(&mut self, sig: &Sig) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Input::Raw { buf, .. } => Ok(std::mem::take(buf)),
            Input::Hashed(d) => {
                let digest = d.finish()?;
                match sig {
                    Sig::Pkcs1 => Ok(Zeroizing::new(digest_info(d.alg(), &digest)?)),
                    Sig::Pss(_) | Sig::X509(_) => Ok(digest),
                }
            }
        }
    }
}

/// CKM_RSA_PKCS_PSS signs a digest the caller computed: it must have the hash's length.
fn exact_digest(tbs: &[u8], p: &PssParams) -> Result<()> {
    if tbs.len() == p.hash.output_len() {
        Ok(())
    } else {
        Err(Code::DataLenRange.err(format!(
            "a {} digest is {} bytes, not {}",
            p.hash.name(),
            p.hash.output_len(),
            tbs.len()
        )))
    }
}

/// The raw-RSA block for `data`: left-padded with zeros to the modulus length, and
/// numerically below the modulus (CKR_DATA_INVALID otherwise).
fn x509_block(data: &[u8], modulus: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let pad = modulus.len().checked_sub(data.len()).ok_or_else(|| {
        Code::DataLenRange.err(format!(
            "CKM_RSA_X_509 input is at most {} bytes",
            modulus.len()
        ))
    })?;
    let mut block = Zeroizing::new(vec![0u8; pad]);
    block.extend_from_slice(data);
    // Equal-length big-endian strings compare as the numbers they encode.
    if block.as_slice() >= modulus {
        return Err(Code::DataInvalid.err("CKM_RSA_X_509 input is not below the modulus"));
    }
    Ok(block)
}

impl Mech for Rsa {
    fn info(&self) -> MechanismInfo {
        // Keys below 2048 bits are usable only to verify.
        let min = if self.flags & CKF_VERIFY != 0 {
            USE_MIN_BITS
        } else {
            STRONG_MIN_BITS
        };
        MechanismInfo {
            min_key_size: min as CK_ULONG,
            max_key_size: USE_MAX_BITS as CK_ULONG,
            flags: self.flags,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_RSA]
    }

    fn sign_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn SignOp>> {
        if self.flags & CKF_SIGN == 0 {
            return Err(unsupported("sign"));
        }
        let key = private_key(key, "signing")?;
        let sig = self.sig(mech, &key)?;
        let input = self.input(&sig, &key)?;
        Ok(Box::new(RsaSign { key, sig, input }))
    }

    fn verify_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn VerifyOp>> {
        if self.flags & CKF_VERIFY == 0 {
            return Err(unsupported("verify"));
        }
        let key = rsa_key(key)?;
        let sig = self.sig(mech, &key)?;
        let input = self.input(&sig, &key)?;
        Ok(Box::new(RsaVerify { key, sig, input }))
    }

    fn encrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        if self.flags & CKF_ENCRYPT == 0 {
            return Err(unsupported("encrypt"));
        }
        let key = strong(rsa_key(key)?)?;
        let params = self.enc_params(mech)?;
        let max = params.padding().max_message_len(key.signature_len());
        Ok(Box::new(RsaEncrypt {
            key,
            params,
            max,
            buf: Zeroizing::new(Vec::new()),
        }))
    }

    fn decrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        if self.flags & CKF_DECRYPT == 0 {
            return Err(unsupported("decrypt"));
        }
        let pkey = private_key(key, "decryption")?;
        let params = self.enc_params(mech)?;
        if params.0.is_none() {
            return Ok(Box::new(RsaPkcs1Decrypt {
                ir: implicit_rejection(key)?,
                key: pkey,
                buf: Vec::new(),
            }));
        }
        Ok(Box::new(RsaDecrypt {
            key: pkey,
            params,
            buf: Vec::new(),
        }))
    }
}

struct RsaSign {
    key: Arc<PKey>,
    sig: Sig,
    input: Input,
}

impl SignOp for RsaSign {
    fn sig_len(&self) -> usize {
        self.key.signature_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let tbs = self.input.take(&self.sig)?;
        let sig = match &self.sig {
            Sig::Pkcs1 => self.key.rsa_pkcs1_sign_raw(&tbs)?,
            Sig::Pss(p) => {
                exact_digest(&tbs, p)?;
                self.key.rsa_pss_sign(p.hash, p.mgf1, p.salt_len, &tbs)?
            }
            Sig::X509(modulus) => self.key.rsa_raw_private(&x509_block(&tbs, modulus)?)?,
        };
        Ok(Zeroizing::new(sig))
    }
}

struct RsaVerify {
    key: Arc<PKey>,
    sig: Sig,
    input: Input,
}

impl VerifyOp for RsaVerify {
    fn sig_len(&self) -> usize {
        self.key.signature_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.sig_len() {
            return Err(Code::SignatureLenRange.err(format!(
                "an RSA signature with this key is {} bytes, not {}",
                self.sig_len(),
                signature.len()
            )));
        }
        let tbs = self.input.take(&self.sig)?;
        let ok = match &self.sig {
            Sig::Pkcs1 => self.key.rsa_pkcs1_verify_raw(&tbs, signature)?,
            Sig::Pss(p) => {
                exact_digest(&tbs, p)?;
                self.key
                    .rsa_pss_verify(p.hash, p.mgf1, p.salt_len, &tbs, signature)?
            }
            Sig::X509(modulus) => {
                let block = x509_block(&tbs, modulus)?;
                self.key
                    .rsa_raw_public(signature)?
                    .is_some_and(|m| m == block.as_slice())
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Code::SignatureInvalid.err("RSA signature does not verify"))
        }
    }
}

/// RSA encryption; single-part in substance, so parts are gathered until `finish`.
struct RsaEncrypt {
    key: Arc<PKey>,
    params: EncParams,
    max: usize,
    buf: Zeroizing<Vec<u8>>,
}

impl CipherOp for RsaEncrypt {
    fn output_len(&self, _input_len: usize, last: bool) -> usize {
        if last { self.key.signature_len() } else { 0 }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        if self.buf.len() + input.len() > self.max {
            return Err(Code::DataLenRange.err(format!(
                "at most {} bytes fit one RSA block with this key and padding",
                self.max
            )));
        }
        self.buf.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish(&mut self) -> Result<Bytes> {
        let msg = std::mem::take(&mut self.buf);
        Ok(Zeroizing::new(
            self.key.rsa_encrypt(&self.params.padding(), &msg)?,
        ))
    }
}

/// OAEP decryption. Every malformed ciphertext of the right length fails the same way, with
/// CKR_ENCRYPTED_DATA_INVALID, after the same work.
struct RsaDecrypt {
    key: Arc<PKey>,
    params: EncParams,
    buf: Vec<u8>,
}

/// CKR_ENCRYPTED_DATA_LEN_RANGE for a ciphertext that is not k bytes.
fn ct_len_error(key: &PKey) -> crate::error::Error {
    Code::EncryptedDataLenRange.err(format!(
        "an RSA ciphertext with this key is {} bytes",
        key.signature_len()
    ))
}

impl RsaDecrypt {
    fn len_error(&self) -> crate::error::Error {
        ct_len_error(&self.key)
    }
}

impl CipherOp for RsaDecrypt {
    fn output_len(&self, _input_len: usize, last: bool) -> usize {
        if last {
            self.params
                .padding()
                .max_message_len(self.key.signature_len())
        } else {
            0
        }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        if self.buf.len() + input.len() > self.key.signature_len() {
            return Err(self.len_error());
        }
        self.buf.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish(&mut self) -> Result<Bytes> {
        let ct = std::mem::take(&mut self.buf);
        if ct.len() != self.key.signature_len() {
            return Err(self.len_error());
        }
        self.key
            .rsa_decrypt(&self.params.padding(), &ct)?
            .ok_or_else(|| Code::EncryptedDataInvalid.err("RSA-OAEP decryption failed"))
    }
}

/// CKM_RSA_PKCS decryption with implicit rejection. The only errors are the public ones: a
/// ciphertext that is not k bytes (CKR_ENCRYPTED_DATA_LEN_RANGE) or not below the modulus
/// (CKR_ENCRYPTED_DATA_INVALID), both decided before the private key is used. Any ciphertext
/// that passes them gives CKR_OK, with the message or a synthetic one; nothing here branches
/// on which (see `keyward_ossl::rsa_pkcs1`).
struct RsaPkcs1Decrypt {
    key: Arc<PKey>,
    ir: Arc<ImplicitRejection>,
    /// The ciphertext so far (public data).
    buf: Vec<u8>,
}

impl CipherOp for RsaPkcs1Decrypt {
    fn output_len(&self, _input_len: usize, last: bool) -> usize {
        // k bounds every message (at most k - 11 bytes) and is what OpenSSL reports too; a
        // bound that does not depend on the plaintext keeps size queries free of it.
        if last { self.key.signature_len() } else { 0 }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        if self.buf.len() + input.len() > self.key.signature_len() {
            return Err(ct_len_error(&self.key));
        }
        self.buf.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish(&mut self) -> Result<Bytes> {
        let ct = std::mem::take(&mut self.buf);
        if ct.len() != self.key.signature_len() {
            return Err(ct_len_error(&self.key));
        }
        self.ir.decrypt(&self.key, &ct)?.ok_or_else(|| {
            Code::EncryptedDataInvalid.err("RSA ciphertext is not below the modulus")
        })
    }
}

pub(crate) fn register(reg: &mut Registry) {
    const SIGN_VERIFY: CK_FLAGS = CKF_SIGN | CKF_VERIFY;
    let rsa = |scheme, hash, flags| {
        Box::new(Rsa {
            scheme,
            hash,
            flags,
        })
    };
    reg.add(CKM_RSA_PKCS_KEY_PAIR_GEN, Box::new(RsaKeyPairGen));
    // PKCS#1 v1.5 encryption has no integrity, but the mechanism list and old key
    // transport need it; unwrapping with it never reveals a bad padding (engine/keys.rs).
    reg.add(
        CKM_RSA_PKCS,
        rsa(
            Scheme::Pkcs1,
            None,
            SIGN_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        ),
    );
    reg.add(CKM_RSA_PKCS_PSS, rsa(Scheme::Pss, None, SIGN_VERIFY));
    // SHA-1 signatures stay available for interoperability with old verifiers, as for ECDSA;
    // CKA_ALLOWED_MECHANISMS keeps them away from keys that must not use them.
    for (alg, pkcs1, pss) in [
        (DigestAlg::Sha1, CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS),
        (
            DigestAlg::Sha224,
            CKM_SHA224_RSA_PKCS,
            CKM_SHA224_RSA_PKCS_PSS,
        ),
        (
            DigestAlg::Sha256,
            CKM_SHA256_RSA_PKCS,
            CKM_SHA256_RSA_PKCS_PSS,
        ),
        (
            DigestAlg::Sha384,
            CKM_SHA384_RSA_PKCS,
            CKM_SHA384_RSA_PKCS_PSS,
        ),
        (
            DigestAlg::Sha512,
            CKM_SHA512_RSA_PKCS,
            CKM_SHA512_RSA_PKCS_PSS,
        ),
        (
            DigestAlg::Sha3_224,
            CKM_SHA3_224_RSA_PKCS,
            CKM_SHA3_224_RSA_PKCS_PSS,
        ),
        (
            DigestAlg::Sha3_256,
            CKM_SHA3_256_RSA_PKCS,
            CKM_SHA3_256_RSA_PKCS_PSS,
        ),
        (
            DigestAlg::Sha3_384,
            CKM_SHA3_384_RSA_PKCS,
            CKM_SHA3_384_RSA_PKCS_PSS,
        ),
        (
            DigestAlg::Sha3_512,
            CKM_SHA3_512_RSA_PKCS,
            CKM_SHA3_512_RSA_PKCS_PSS,
        ),
    ] {
        reg.add(pkcs1, rsa(Scheme::Pkcs1, Some(alg), SIGN_VERIFY));
        reg.add(pss, rsa(Scheme::Pss, Some(alg), SIGN_VERIFY));
    }
    reg.add(CKM_RSA_X_509, rsa(Scheme::X509, None, SIGN_VERIFY));
    reg.add(
        CKM_RSA_PKCS_OAEP,
        rsa(
            Scheme::Oaep,
            None,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        ),
    );
}

#[cfg(test)]
mod tests;
