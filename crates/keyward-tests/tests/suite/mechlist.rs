//! The mechanism list tells the truth: every mechanism C_GetMechanismList names runs every
//! function its CK_MECHANISM_INFO claims, once, with a checked result; key generators make
//! keys at their smallest and largest sizes; the table of exercisers and the list stay equal;
//! and `pkcs11-tool -M` shows the same mechanisms, flags and sizes.

use std::any::Any;
use std::collections::BTreeSet;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::ptr::null_mut;

use cryptoki_sys::*;
use openssl::hash::{MessageDigest, hash};

use super::keys::{P256_OID, P384_OID, P521_OID, der_octet_string_content, rsa_import_templates};
use crate::common::{self, is_keyward, user_session};
use crate::{call, call30};

const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
const X448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6f];

/// Flags that describe a mechanism rather than name a function; every other bit a
/// mechanism sets must be exercised.
const CAPABILITIES: CK_FLAGS = CKF_HW
    | CKF_MULTI_MESSAGE
    | CKF_EC_F_P
    | CKF_EC_F_2M
    | CKF_EC_ECPARAMETERS
    | CKF_EC_OID
    | CKF_EC_UNCOMPRESS
    | CKF_EC_COMPRESS
    | CKF_EC_CURVENAME;

const SV: CK_FLAGS = CKF_SIGN | CKF_VERIFY;
const ED: CK_FLAGS = CKF_ENCRYPT | CKF_DECRYPT;
const WU: CK_FLAGS = CKF_WRAP | CKF_UNWRAP;
const MSG: CK_FLAGS = CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT;

/// Function flags by the names the report uses (and `pkcs11-tool` prints).
const FLAG_NAMES: [(CK_FLAGS, &str); 20] = [
    (CKF_HW, "hw"),
    (CKF_ENCRYPT, "encrypt"),
    (CKF_DECRYPT, "decrypt"),
    (CKF_DIGEST, "digest"),
    (CKF_SIGN, "sign"),
    (CKF_SIGN_RECOVER, "sign_recover"),
    (CKF_VERIFY, "verify"),
    (CKF_VERIFY_RECOVER, "verify_recover"),
    (CKF_GENERATE, "generate"),
    (CKF_GENERATE_KEY_PAIR, "generate_key_pair"),
    (CKF_WRAP, "wrap"),
    (CKF_UNWRAP, "unwrap"),
    (CKF_DERIVE, "derive"),
    (CKF_EC_F_P, "EC F_P"),
    (CKF_EC_F_2M, "EC F_2M"),
    (CKF_EC_ECPARAMETERS, "EC parameters"),
    (CKF_EC_OID, "EC OID"),
    (CKF_EC_UNCOMPRESS, "EC uncompressed"),
    (CKF_EC_COMPRESS, "EC compressed"),
    (CKF_EC_CURVENAME, "EC curve name"),
];

fn flag_names(flags: CK_FLAGS) -> String {
    let mut rest = flags;
    let mut names: Vec<String> = Vec::new();
    for (f, n) in FLAG_NAMES.iter().chain(&[
        (CKF_MESSAGE_ENCRYPT, "message_encrypt"),
        (CKF_MESSAGE_DECRYPT, "message_decrypt"),
    ]) {
        if rest & f != 0 {
            names.push((*n).into());
            rest &= !f;
        }
    }
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names.join("|")
}

/// How a family of mechanisms is exercised.
#[derive(Clone, Copy)]
enum Fam {
    /// A digest, compared with the openssl crate's digest of this name.
    Digest(&'static str),
    /// A MAC over a key of this type with this full output length; `true` for the
    /// *_GENERAL form (CK_MAC_GENERAL_PARAMS).
    Mac(CK_KEY_TYPE, usize, bool),
    /// RSA with the shared 2048-bit pair; PSS parameters (hash, MGF, salt length) if any.
    Rsa(Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)>),
    /// ECDSA with the shared P-256 pair.
    Ecdsa,
    /// Pure EdDSA with the shared Ed25519 pair.
    Eddsa,
    /// A key-pair generator making keys of this type.
    PairGen(CK_KEY_TYPE),
    /// A secret-key generator making keys of this type.
    SecretGen(CK_KEY_TYPE),
    /// ECDH: both parties derive the same secret.
    Ecdh,
    /// Encryption, key wrapping and messages with AES or ChaCha20 keys.
    Cipher,
    /// The KDFs and PKCS#5 PBKDF2.
    Kdf,
}

use Fam::*;

macro_rules! e {
    ($m:ident, $f:expr) => {
        ($m, stringify!($m), $f)
    };
}

const PSS1: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA_1, CKG_MGF1_SHA1, 20));
const PSS224: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA224, CKG_MGF1_SHA224, 28));
const PSS256: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA256, CKG_MGF1_SHA256, 32));
const PSS384: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA384, CKG_MGF1_SHA384, 48));
const PSS512: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA512, CKG_MGF1_SHA512, 64));
const PSS3_224: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA3_224, CKG_MGF1_SHA3_224, 28));
const PSS3_256: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA3_256, CKG_MGF1_SHA3_256, 32));
const PSS3_384: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA3_384, CKG_MGF1_SHA3_384, 48));
const PSS3_512: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)> =
    Some((CKM_SHA3_512, CKG_MGF1_SHA3_512, 64));

const HMAC: CK_KEY_TYPE = CKK_GENERIC_SECRET;

/// Every mechanism the token should list, with its exerciser. Must equal the list.
const TABLE: &[(CK_MECHANISM_TYPE, &str, Fam)] = &[
    // Digests.
    e!(CKM_SHA_1, Digest("SHA1")),
    e!(CKM_SHA224, Digest("SHA224")),
    e!(CKM_SHA256, Digest("SHA256")),
    e!(CKM_SHA384, Digest("SHA384")),
    e!(CKM_SHA512, Digest("SHA512")),
    e!(CKM_SHA512_224, Digest("SHA512-224")),
    e!(CKM_SHA512_256, Digest("SHA512-256")),
    e!(CKM_SHA3_224, Digest("SHA3-224")),
    e!(CKM_SHA3_256, Digest("SHA3-256")),
    e!(CKM_SHA3_384, Digest("SHA3-384")),
    e!(CKM_SHA3_512, Digest("SHA3-512")),
    // HMACs and CMACs.
    e!(CKM_SHA_1_HMAC, Mac(HMAC, 20, false)),
    e!(CKM_SHA_1_HMAC_GENERAL, Mac(HMAC, 20, true)),
    e!(CKM_SHA224_HMAC, Mac(HMAC, 28, false)),
    e!(CKM_SHA224_HMAC_GENERAL, Mac(HMAC, 28, true)),
    e!(CKM_SHA256_HMAC, Mac(HMAC, 32, false)),
    e!(CKM_SHA256_HMAC_GENERAL, Mac(HMAC, 32, true)),
    e!(CKM_SHA384_HMAC, Mac(HMAC, 48, false)),
    e!(CKM_SHA384_HMAC_GENERAL, Mac(HMAC, 48, true)),
    e!(CKM_SHA512_HMAC, Mac(HMAC, 64, false)),
    e!(CKM_SHA512_HMAC_GENERAL, Mac(HMAC, 64, true)),
    e!(CKM_SHA512_224_HMAC, Mac(HMAC, 28, false)),
    e!(CKM_SHA512_224_HMAC_GENERAL, Mac(HMAC, 28, true)),
    e!(CKM_SHA512_256_HMAC, Mac(HMAC, 32, false)),
    e!(CKM_SHA512_256_HMAC_GENERAL, Mac(HMAC, 32, true)),
    e!(CKM_SHA3_224_HMAC, Mac(HMAC, 28, false)),
    e!(CKM_SHA3_224_HMAC_GENERAL, Mac(HMAC, 28, true)),
    e!(CKM_SHA3_256_HMAC, Mac(HMAC, 32, false)),
    e!(CKM_SHA3_256_HMAC_GENERAL, Mac(HMAC, 32, true)),
    e!(CKM_SHA3_384_HMAC, Mac(HMAC, 48, false)),
    e!(CKM_SHA3_384_HMAC_GENERAL, Mac(HMAC, 48, true)),
    e!(CKM_SHA3_512_HMAC, Mac(HMAC, 64, false)),
    e!(CKM_SHA3_512_HMAC_GENERAL, Mac(HMAC, 64, true)),
    e!(CKM_AES_CMAC, Mac(CKK_AES, 16, false)),
    e!(CKM_AES_CMAC_GENERAL, Mac(CKK_AES, 16, true)),
    // RSA.
    e!(CKM_RSA_PKCS_KEY_PAIR_GEN, PairGen(CKK_RSA)),
    e!(CKM_RSA_PKCS, Rsa(None)),
    e!(CKM_RSA_X_509, Rsa(None)),
    e!(CKM_RSA_PKCS_OAEP, Rsa(None)),
    e!(CKM_RSA_PKCS_PSS, Rsa(PSS256)),
    e!(CKM_SHA1_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA224_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA256_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA384_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA512_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA3_224_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA3_256_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA3_384_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA3_512_RSA_PKCS, Rsa(None)),
    e!(CKM_SHA1_RSA_PKCS_PSS, Rsa(PSS1)),
    e!(CKM_SHA224_RSA_PKCS_PSS, Rsa(PSS224)),
    e!(CKM_SHA256_RSA_PKCS_PSS, Rsa(PSS256)),
    e!(CKM_SHA384_RSA_PKCS_PSS, Rsa(PSS384)),
    e!(CKM_SHA512_RSA_PKCS_PSS, Rsa(PSS512)),
    e!(CKM_SHA3_224_RSA_PKCS_PSS, Rsa(PSS3_224)),
    e!(CKM_SHA3_256_RSA_PKCS_PSS, Rsa(PSS3_256)),
    e!(CKM_SHA3_384_RSA_PKCS_PSS, Rsa(PSS3_384)),
    e!(CKM_SHA3_512_RSA_PKCS_PSS, Rsa(PSS3_512)),
    // Elliptic curves.
    e!(CKM_ECDSA_KEY_PAIR_GEN, PairGen(CKK_EC)),
    e!(CKM_ECDSA, Ecdsa),
    e!(CKM_ECDSA_SHA1, Ecdsa),
    e!(CKM_ECDSA_SHA224, Ecdsa),
    e!(CKM_ECDSA_SHA256, Ecdsa),
    e!(CKM_ECDSA_SHA384, Ecdsa),
    e!(CKM_ECDSA_SHA512, Ecdsa),
    e!(CKM_ECDSA_SHA3_224, Ecdsa),
    e!(CKM_ECDSA_SHA3_256, Ecdsa),
    e!(CKM_ECDSA_SHA3_384, Ecdsa),
    e!(CKM_ECDSA_SHA3_512, Ecdsa),
    e!(CKM_ECDH1_DERIVE, Ecdh),
    e!(CKM_ECDH1_COFACTOR_DERIVE, Ecdh),
    e!(CKM_EC_EDWARDS_KEY_PAIR_GEN, PairGen(CKK_EC_EDWARDS)),
    e!(CKM_EC_MONTGOMERY_KEY_PAIR_GEN, PairGen(CKK_EC_MONTGOMERY)),
    e!(CKM_EDDSA, Eddsa),
    // AES and ChaCha20.
    e!(CKM_AES_KEY_GEN, SecretGen(CKK_AES)),
    e!(CKM_AES_ECB, Cipher),
    e!(CKM_AES_CBC, Cipher),
    e!(CKM_AES_CBC_PAD, Cipher),
    e!(CKM_AES_CTR, Cipher),
    e!(CKM_AES_CTS, Cipher),
    e!(CKM_AES_GCM, Cipher),
    e!(CKM_AES_CCM, Cipher),
    e!(CKM_AES_KEY_WRAP, Cipher),
    e!(CKM_AES_KEY_WRAP_PAD, Cipher),
    e!(CKM_AES_KEY_WRAP_KWP, Cipher),
    e!(CKM_CHACHA20_KEY_GEN, SecretGen(CKK_CHACHA20)),
    e!(CKM_CHACHA20_POLY1305, Cipher),
    // Generic secrets and key derivation.
    e!(CKM_GENERIC_SECRET_KEY_GEN, SecretGen(CKK_GENERIC_SECRET)),
    e!(CKM_HKDF_KEY_GEN, SecretGen(CKK_HKDF)),
    e!(CKM_HKDF_DERIVE, Kdf),
    e!(CKM_HKDF_DATA, Kdf),
    e!(CKM_PKCS5_PBKD2, Kdf),
    e!(CKM_SP800_108_COUNTER_KDF, Kdf),
    e!(CKM_CONCATENATE_BASE_AND_KEY, Kdf),
    e!(CKM_CONCATENATE_BASE_AND_DATA, Kdf),
    e!(CKM_CONCATENATE_DATA_AND_BASE, Kdf),
    e!(CKM_AES_ECB_ENCRYPT_DATA, Kdf),
    e!(CKM_AES_CBC_ENCRYPT_DATA, Kdf),
];

// ---- Raw calls --------------------------------------------------------------------------

/// One template attribute: its type and value bytes.
type A = (CK_ATTRIBUTE_TYPE, Vec<u8>);

fn on(ty: CK_ATTRIBUTE_TYPE) -> A {
    (ty, vec![CK_TRUE])
}
fn off(ty: CK_ATTRIBUTE_TYPE) -> A {
    (ty, vec![CK_FALSE])
}
fn ul(ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> A {
    (ty, v.to_ne_bytes().to_vec())
}
fn by(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> A {
    (ty, v.to_vec())
}

/// CK_ATTRIBUTEs over `items`, which must outlive their use.
fn raw_template(items: &mut [A]) -> Vec<CK_ATTRIBUTE> {
    items
        .iter_mut()
        .map(|(ty, v)| CK_ATTRIBUTE {
            type_: *ty,
            pValue: v.as_mut_ptr().cast(),
            ulValueLen: v.len() as CK_ULONG,
        })
        .collect()
}

fn check(rv: CK_RV, what: &str) {
    assert!(rv == CKR_OK, "{what} returned {rv:#x}");
}

fn bare(ty: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: ty,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

fn with<P>(ty: CK_MECHANISM_TYPE, p: &mut P) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: ty,
        pParameter: (p as *mut P).cast::<c_void>(),
        ulParameterLen: size_of::<P>() as CK_ULONG,
    }
}

fn with_bytes(ty: CK_MECHANISM_TYPE, b: &mut [u8]) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: ty,
        pParameter: b.as_mut_ptr().cast(),
        ulParameterLen: b.len() as CK_ULONG,
    }
}

/// A PKCS#11 output: a length query, then the call into a buffer of that length.
fn fetch(what: &str, mut f: impl FnMut(*mut u8, &mut CK_ULONG) -> CK_RV) -> Vec<u8> {
    let mut len: CK_ULONG = 0;
    check(f(null_mut(), &mut len), &format!("{what} (length)"));
    let mut out = vec![0u8; len as usize];
    check(f(out.as_mut_ptr(), &mut len), what);
    out.truncate(len as usize);
    out
}

fn get(s: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    fetch(&format!("C_GetAttributeValue({ty:#x})"), |p, len| {
        let mut t = CK_ATTRIBUTE {
            type_: ty,
            pValue: p.cast(),
            ulValueLen: if p.is_null() { 0 } else { *len },
        };
        let rv = call!(C_GetAttributeValue, s, h, &mut t, 1);
        *len = t.ulValueLen;
        rv
    })
}

fn get_ul(s: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> CK_ULONG {
    let v = get(s, h, ty);
    CK_ULONG::from_ne_bytes(v.as_slice().try_into().expect("a CK_ULONG attribute"))
}

fn gen_key(s: CK_SESSION_HANDLE, m: &mut CK_MECHANISM, t: &[A]) -> CK_OBJECT_HANDLE {
    let mut items = t.to_vec();
    let mut attrs = raw_template(&mut items);
    let mut h = CK_INVALID_HANDLE;
    let n = attrs.len() as CK_ULONG;
    check(
        call!(C_GenerateKey, s, m, attrs.as_mut_ptr(), n, &mut h),
        "C_GenerateKey",
    );
    h
}

fn gen_pair(
    s: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    public: &[A],
    private: &[A],
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let (mut pu, mut pr) = (public.to_vec(), private.to_vec());
    let (mut pu, mut pr) = (raw_template(&mut pu), raw_template(&mut pr));
    let (mut a, mut b) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
    let (npu, npr) = (pu.len() as CK_ULONG, pr.len() as CK_ULONG);
    check(
        call!(
            C_GenerateKeyPair,
            s,
            m,
            pu.as_mut_ptr(),
            npu,
            pr.as_mut_ptr(),
            npr,
            &mut a,
            &mut b
        ),
        "C_GenerateKeyPair",
    );
    (a, b)
}

fn derive(
    s: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    base: CK_OBJECT_HANDLE,
    t: &[A],
) -> CK_OBJECT_HANDLE {
    let mut items = t.to_vec();
    let mut attrs = raw_template(&mut items);
    let mut h = CK_INVALID_HANDLE;
    let n = attrs.len() as CK_ULONG;
    check(
        call!(C_DeriveKey, s, m, base, attrs.as_mut_ptr(), n, &mut h),
        "C_DeriveKey",
    );
    h
}

/// A whole single-part encryption or decryption.
fn crypt(
    s: CK_SESSION_HANDLE,
    encrypt: bool,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    input: &[u8],
) -> Vec<u8> {
    let (inp, n) = (input.as_ptr().cast_mut(), input.len() as CK_ULONG);
    if encrypt {
        check(call!(C_EncryptInit, s, m, key), "C_EncryptInit");
        fetch("C_Encrypt", |o, l| call!(C_Encrypt, s, inp, n, o, l))
    } else {
        check(call!(C_DecryptInit, s, m, key), "C_DecryptInit");
        fetch("C_Decrypt", |o, l| call!(C_Decrypt, s, inp, n, o, l))
    }
}

/// Encrypt then decrypt: the plaintext comes back and the ciphertext differs from it.
fn round_trip(
    s: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    ek: CK_OBJECT_HANDLE,
    dk: CK_OBJECT_HANDLE,
    pt: &[u8],
) {
    let ct = crypt(s, true, m, ek, pt);
    assert_ne!(ct, pt, "the ciphertext is not the plaintext");
    assert_eq!(crypt(s, false, m, dk, &ct), pt, "decrypt(encrypt(x)) = x");
}

/// Sign, verify, and see a flipped signature byte refused; returns the signature.
fn sign_verify(
    s: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    sk: CK_OBJECT_HANDLE,
    vk: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Vec<u8> {
    let (dp, n) = (data.as_ptr().cast_mut(), data.len() as CK_ULONG);
    check(call!(C_SignInit, s, m, sk), "C_SignInit");
    let sig = fetch("C_Sign", |o, l| call!(C_Sign, s, dp, n, o, l));
    let mut verify = |sig: &[u8]| {
        check(call!(C_VerifyInit, s, m, vk), "C_VerifyInit");
        let sl = sig.len() as CK_ULONG;
        call!(C_Verify, s, dp, n, sig.as_ptr().cast_mut(), sl)
    };
    check(verify(&sig), "C_Verify");
    let mut bad = sig.clone();
    *bad.last_mut().expect("a signature") ^= 1;
    assert_eq!(
        verify(&bad),
        CKR_SIGNATURE_INVALID,
        "C_Verify of a flipped signature byte"
    );
    sig
}

/// Wrap the shared AES-128 key, unwrap it, and compare the values.
fn wrap_unwrap(
    cx: &Ctx,
    s: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    wk: CK_OBJECT_HANDLE,
    uk: CK_OBJECT_HANDLE,
) {
    let target = cx.target;
    let blob = fetch("C_WrapKey", |o, l| call!(C_WrapKey, s, m, wk, target, o, l));
    // CKA_VALUE_LEN: CKM_RSA_PKCS unwrap needs it (its blob does not reveal a bad length).
    let mut items = vec![
        ul(CKA_CLASS, CKO_SECRET_KEY),
        ul(CKA_KEY_TYPE, CKK_AES),
        ul(CKA_VALUE_LEN, 16),
        off(CKA_SENSITIVE),
        on(CKA_EXTRACTABLE),
    ];
    let mut attrs = raw_template(&mut items);
    let mut h = CK_INVALID_HANDLE;
    let (bp, bl, n) = (
        blob.as_ptr().cast_mut(),
        blob.len() as CK_ULONG,
        attrs.len() as CK_ULONG,
    );
    check(
        call!(C_UnwrapKey, s, m, uk, bp, bl, attrs.as_mut_ptr(), n, &mut h),
        "C_UnwrapKey",
    );
    assert_eq!(get(s, h, CKA_VALUE), cx.target_value, "unwrap(wrap(k)) = k");
}

/// One message encrypted and decrypted through the 3.0 message functions, with the
/// per-message parameter `p` (its IV/nonce given, its tag written then read).
fn message_round_trip<P>(
    s: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    p: &mut P,
    pt: &[u8],
) {
    let (pp, pl) = ((p as *mut P).cast::<c_void>(), size_of::<P>() as CK_ULONG);
    let mut aad = *b"message header";
    let (ap, al) = (aad.as_mut_ptr(), aad.len() as CK_ULONG);
    check(
        call30!(C_MessageEncryptInit, s, m, key),
        "C_MessageEncryptInit",
    );
    let (ip, il) = (pt.as_ptr().cast_mut(), pt.len() as CK_ULONG);
    let ct = fetch("C_EncryptMessage", |o, l| {
        call30!(C_EncryptMessage, s, pp, pl, ap, al, ip, il, o, l)
    });
    check(call30!(C_MessageEncryptFinal, s), "C_MessageEncryptFinal");
    assert_ne!(ct, pt);
    check(
        call30!(C_MessageDecryptInit, s, m, key),
        "C_MessageDecryptInit",
    );
    let (cp, cl) = (ct.as_ptr().cast_mut(), ct.len() as CK_ULONG);
    let back = fetch("C_DecryptMessage", |o, l| {
        call30!(C_DecryptMessage, s, pp, pl, ap, al, cp, cl, o, l)
    });
    check(call30!(C_MessageDecryptFinal, s), "C_MessageDecryptFinal");
    assert_eq!(back, pt, "message decrypt(encrypt(x)) = x");
}

// ---- Shared keys ------------------------------------------------------------------------

/// Keys made once in the main session and used by every exerciser.
struct Ctx {
    rsa: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    p256: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    p256_peer: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    x25519: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    x25519_peer: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    ed25519: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    /// AES-256: encrypt, decrypt, sign, verify, derive.
    aes: CK_OBJECT_HANDLE,
    /// AES-256: wrap and unwrap only (a key may not both wrap and decrypt).
    aes_kek: CK_OBJECT_HANDLE,
    chacha: CK_OBJECT_HANDLE,
    chacha_kek: CK_OBJECT_HANDLE,
    /// A readable, extractable AES-128 key that gets wrapped.
    target: CK_OBJECT_HANDLE,
    target_value: Vec<u8>,
    /// Generic secrets: a 32-byte HMAC key, a 32-byte derivation base, and a 16-byte second
    /// key for CKM_CONCATENATE_BASE_AND_KEY.
    hmac: CK_OBJECT_HANDLE,
    base: CK_OBJECT_HANDLE,
    other: CK_OBJECT_HANDLE,
}

const RSA_BITS: CK_ULONG = 2048;

impl Ctx {
    fn new(s: CK_SESSION_HANDLE) -> Ctx {
        let rsa = gen_pair(
            s,
            &mut bare(CKM_RSA_PKCS_KEY_PAIR_GEN),
            &[
                ul(CKA_MODULUS_BITS, RSA_BITS),
                by(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
                on(CKA_VERIFY),
                on(CKA_ENCRYPT),
                on(CKA_WRAP),
            ],
            &[on(CKA_SIGN), on(CKA_DECRYPT), on(CKA_UNWRAP)],
        );
        let ec = |oid: &[u8], gen_mech, private: &[A]| {
            gen_pair(
                s,
                &mut bare(gen_mech),
                &[by(CKA_EC_PARAMS, oid), on(CKA_VERIFY)],
                private,
            )
        };
        let secret = |gen_mech, len, flags: &[CK_ATTRIBUTE_TYPE], readable: bool| {
            let mut t: Vec<A> = flags.iter().map(|f| on(*f)).collect();
            if len != 0 {
                t.push(ul(CKA_VALUE_LEN, len));
            }
            if readable {
                t.extend([off(CKA_SENSITIVE), on(CKA_EXTRACTABLE)]);
            }
            gen_key(s, &mut bare(gen_mech), &t)
        };
        let target = secret(CKM_AES_KEY_GEN, 16, &[CKA_ENCRYPT], true);
        Ctx {
            rsa,
            p256: ec(
                P256_OID,
                CKM_EC_KEY_PAIR_GEN,
                &[on(CKA_SIGN), on(CKA_DERIVE)],
            ),
            p256_peer: ec(P256_OID, CKM_EC_KEY_PAIR_GEN, &[on(CKA_DERIVE)]),
            x25519: ec(
                X25519_OID,
                CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
                &[on(CKA_DERIVE)],
            ),
            x25519_peer: ec(
                X25519_OID,
                CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
                &[on(CKA_DERIVE)],
            ),
            ed25519: ec(ED25519_OID, CKM_EC_EDWARDS_KEY_PAIR_GEN, &[on(CKA_SIGN)]),
            aes: secret(
                CKM_AES_KEY_GEN,
                32,
                &[CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY, CKA_DERIVE],
                false,
            ),
            aes_kek: secret(CKM_AES_KEY_GEN, 32, &[CKA_WRAP, CKA_UNWRAP], false),
            chacha: secret(CKM_CHACHA20_KEY_GEN, 0, &[CKA_ENCRYPT, CKA_DECRYPT], false),
            chacha_kek: secret(CKM_CHACHA20_KEY_GEN, 0, &[CKA_WRAP, CKA_UNWRAP], false),
            target_value: get(s, target, CKA_VALUE),
            target,
            hmac: secret(
                CKM_GENERIC_SECRET_KEY_GEN,
                32,
                &[CKA_SIGN, CKA_VERIFY],
                false,
            ),
            base: secret(CKM_GENERIC_SECRET_KEY_GEN, 32, &[CKA_DERIVE], false),
            other: secret(CKM_GENERIC_SECRET_KEY_GEN, 16, &[CKA_DERIVE], false),
        }
    }
}

// ---- Exercisers -------------------------------------------------------------------------

/// The flags a mechanism claims and the ones run so far.
struct Run {
    claimed: CK_FLAGS,
    done: CK_FLAGS,
}

impl Run {
    /// Run `body` when the mechanism claims any of `flags`; it exercises all of them.
    fn when(&mut self, flags: CK_FLAGS, body: impl FnOnce()) {
        if self.claimed & flags != 0 {
            body();
            self.done |= flags;
        }
    }
}

const DATA: &[u8; 32] = b"thirty-two bytes of message data";

/// Exercise every function `info` claims for `mech`; returns the flags exercised.
fn exercise(
    cx: &Ctx,
    s: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    fam: Fam,
    info: &CK_MECHANISM_INFO,
) -> CK_FLAGS {
    let mut run = Run {
        claimed: info.flags & !CAPABILITIES,
        done: 0,
    };
    match fam {
        Digest(name) => run.when(CKF_DIGEST, || {
            check(call!(C_DigestInit, s, &mut bare(mech)), "C_DigestInit");
            let (dp, n) = (DATA.as_ptr().cast_mut(), DATA.len() as CK_ULONG);
            let d = fetch("C_Digest", |o, l| call!(C_Digest, s, dp, n, o, l));
            let md = MessageDigest::from_name(name).expect("an openssl digest");
            let want = hash(md, DATA).expect("openssl digest").to_vec();
            assert_eq!(d, want, "the digest equals openssl's");
        }),
        Mac(key_type, full, general) => run.when(SV, || {
            let key = if key_type == CKK_AES { cx.aes } else { cx.hmac };
            let mut len: CK_MAC_GENERAL_PARAMS = (full - 4) as CK_ULONG;
            let mut m = if general {
                with(mech, &mut len)
            } else {
                bare(mech)
            };
            let sig = sign_verify(s, &mut m, key, key, DATA);
            let want = if general { full - 4 } else { full };
            assert_eq!(sig.len(), want, "MAC length");
        }),
        Rsa(pss) => rsa(cx, s, mech, pss, info, &mut run),
        Ecdsa => run.when(SV, || {
            sign_verify(s, &mut bare(mech), cx.p256.1, cx.p256.0, DATA);
        }),
        Eddsa => run.when(SV, || {
            let sig = sign_verify(s, &mut bare(mech), cx.ed25519.1, cx.ed25519.0, DATA);
            assert_eq!(sig.len(), 64, "an Ed25519 signature");
            if info.flags & CKF_EC_CURVENAME != 0 {
                let (public, private) = named_pair(s, CKK_EC_EDWARDS, &[on(CKA_SIGN)]);
                sign_verify(s, &mut bare(mech), private, public, DATA);
            }
        }),
        PairGen(key_type) => run.when(CKF_GENERATE_KEY_PAIR, || {
            pair_gen(cx, s, mech, key_type, info)
        }),
        SecretGen(key_type) => run.when(CKF_GENERATE, || {
            // The generic secret's sizes are in bits (PKCS#11 3.0 §2.36.2), the others' in bytes.
            let unit = if mech == CKM_GENERIC_SECRET_KEY_GEN {
                8
            } else {
                1
            };
            assert_eq!(info.ulMinKeySize % unit, 0, "whole bytes");
            for len in [info.ulMinKeySize / unit, info.ulMaxKeySize / unit] {
                let k = gen_key(s, &mut bare(mech), &[ul(CKA_VALUE_LEN, len)]);
                assert_eq!(get_ul(s, k, CKA_CLASS), CKO_SECRET_KEY);
                assert_eq!(get_ul(s, k, CKA_KEY_TYPE), key_type, "key type");
                assert_eq!(get_ul(s, k, CKA_VALUE_LEN), len, "CKA_VALUE_LEN");
            }
        }),
        Ecdh => run.when(CKF_DERIVE, || {
            agree(s, mech, cx.p256, cx.p256_peer, false);
            if info.flags & CKF_EC_COMPRESS != 0 {
                agree(s, mech, cx.p256, cx.p256_peer, true);
            }
            if mech == CKM_ECDH1_DERIVE {
                agree(s, mech, cx.x25519, cx.x25519_peer, false);
                if info.flags & CKF_EC_CURVENAME != 0 {
                    let named = named_pair(s, CKK_EC_MONTGOMERY, &[on(CKA_DERIVE)]);
                    agree(s, mech, named, cx.x25519_peer, false);
                }
            }
        }),
        Cipher => cipher(cx, s, mech, &mut run),
        Kdf => kdf(cx, s, mech, info, &mut run),
    }
    run.done
}

fn rsa(
    cx: &Ctx,
    s: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    pss: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)>,
    info: &CK_MECHANISM_INFO,
    run: &mut Run,
) {
    let (public, private) = cx.rsa;
    if mech == CKM_RSA_PKCS {
        // The smallest modulus the verifying RSA mechanisms take (1024 bits), imported:
        // such keys only verify (old signatures), so openssl signs. The largest (16384 bits)
        // is left out, as slow to make as to use.
        run.when(SV, || {
            let k = openssl::rsa::Rsa::generate(info.ulMinKeySize as u32).expect("openssl RSA");
            let mut sig = vec![0u8; k.size() as usize];
            let n = k
                .private_encrypt(DATA, &mut sig, openssl::rsa::Padding::PKCS1)
                .expect("openssl PKCS#1 signature");
            assert_eq!(n, sig.len());
            let (public, private) = rsa_import_templates(&k);
            let (public, private) = (create(s, public), create(s, private));
            let verify = |sig: &mut [u8]| {
                check(
                    call!(C_VerifyInit, s, &mut bare(mech), public),
                    "C_VerifyInit",
                );
                let (dp, sp) = (DATA.as_ptr().cast_mut(), sig.as_mut_ptr());
                call!(C_Verify, s, dp, 32, sp, n as CK_ULONG)
            };
            check(verify(&mut sig), "C_Verify with the smallest key");
            sig[n - 1] ^= 1;
            assert_eq!(verify(&mut sig), CKR_SIGNATURE_INVALID, "a flipped byte");
            assert_eq!(
                call!(C_SignInit, s, &mut bare(mech), private),
                CKR_KEY_SIZE_RANGE,
                "keys under 2048 bits do not sign"
            );
        });
    }
    run.when(SV, || {
        let mut p = pss.map(|(hash, mgf, salt)| CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: hash,
            mgf,
            sLen: salt,
        });
        let mut m = match &mut p {
            Some(p) => with(mech, p),
            None => bare(mech),
        };
        // Raw RSA signs a whole modulus-sized block (here one below the modulus); the others
        // take 32 bytes (a SHA-256 hash for raw PSS and ECDSA).
        let mut x509 = vec![0x5au8; (RSA_BITS / 8) as usize];
        x509[0] = 0;
        let data: &[u8] = if mech == CKM_RSA_X_509 { &x509 } else { DATA };
        let sig = sign_verify(s, &mut m, private, public, data);
        assert_eq!(sig.len(), (RSA_BITS / 8) as usize, "an RSA signature");
    });
    let mut label = *b"label";
    let mut oaep = CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        source: CKZ_DATA_SPECIFIED,
        pSourceData: label.as_mut_ptr().cast(),
        ulSourceDataLen: label.len() as CK_ULONG,
    };
    let mut m = if mech == CKM_RSA_PKCS_OAEP {
        with(mech, &mut oaep)
    } else {
        bare(mech)
    };
    run.when(ED, || round_trip(s, &mut m, public, private, DATA));
    run.when(WU, || wrap_unwrap(cx, s, &mut m, public, private));
}

/// A session object made by C_CreateObject from a cryptoki template.
fn create(s: CK_SESSION_HANDLE, t: Vec<cryptoki::object::Attribute>) -> CK_OBJECT_HANDLE {
    let mut raw: Vec<CK_ATTRIBUTE> = t.iter().map(CK_ATTRIBUTE::from).collect();
    let (mut h, n) = (CK_INVALID_HANDLE, raw.len() as CK_ULONG);
    check(
        call!(C_CreateObject, s, raw.as_mut_ptr(), n, &mut h),
        "C_CreateObject",
    );
    h
}

/// Both parties of an ECDH derive a 32-byte generic secret; the two values are equal.
/// `compress` gives each peer's point in compressed form (CKF_EC_COMPRESS).
fn agree(
    s: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    a: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    b: (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE),
    compress: bool,
) {
    let side = |mine: CK_OBJECT_HANDLE, peer_public: CK_OBJECT_HANDLE| {
        let mut point = der_octet_string_content(&get(s, peer_public, CKA_EC_POINT)).to_vec();
        if compress {
            // 04 || X || Y becomes 02 or 03 (the parity of Y) || X.
            assert_eq!(point[0], 4, "an uncompressed point");
            let odd = point.last().expect("a point") & 1;
            point.truncate(1 + (point.len() - 1) / 2);
            point[0] = 2 | odd;
        }
        let mut p = CK_ECDH1_DERIVE_PARAMS {
            kdf: CKD_NULL,
            ulSharedDataLen: 0,
            pSharedData: null_mut(),
            ulPublicDataLen: point.len() as CK_ULONG,
            pPublicData: point.as_mut_ptr(),
        };
        let k = derive(s, &mut with(mech, &mut p), mine, &readable_secret(32));
        assert_eq!(get_ul(s, k, CKA_VALUE_LEN), 32, "the asked length");
        get(s, k, CKA_VALUE)
    };
    assert_eq!(side(a.1, b.0), side(b.1, a.0), "both parties agree");
}

fn readable_secret(len: CK_ULONG) -> Vec<A> {
    vec![
        ul(CKA_CLASS, CKO_SECRET_KEY),
        ul(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
        ul(CKA_VALUE_LEN, len),
        off(CKA_SENSITIVE),
        on(CKA_EXTRACTABLE),
    ]
}

/// The curve of an EC key type with this size in bits.
fn curve(key_type: CK_KEY_TYPE, bits: CK_ULONG) -> Option<&'static [u8]> {
    match (key_type, bits) {
        (CKK_EC, 256) => Some(P256_OID),
        (CKK_EC, 384) => Some(P384_OID),
        (CKK_EC, 521) => Some(P521_OID),
        (CKK_EC_EDWARDS, 255) => Some(ED25519_OID),
        (CKK_EC_EDWARDS, 448) => Some(ED448_OID),
        (CKK_EC_MONTGOMERY, 255) => Some(X25519_OID),
        (CKK_EC_MONTGOMERY, 448) => Some(X448_OID),
        _ => None,
    }
}

/// A key pair on the 255-bit Edwards or Montgomery curve, its CKA_EC_PARAMS the curve's
/// PKCS#11 3.0 name (a DER PrintableString), as CKF_EC_CURVENAME promises.
fn named_pair(
    s: CK_SESSION_HANDLE,
    key_type: CK_KEY_TYPE,
    private: &[A],
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let (mech, name): (_, &[u8]) = match key_type {
        CKK_EC_EDWARDS => (CKM_EC_EDWARDS_KEY_PAIR_GEN, b"edwards25519"),
        CKK_EC_MONTGOMERY => (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, b"curve25519"),
        _ => (CKM_EC_KEY_PAIR_GEN, b"prime256v1"),
    };
    let mut der = vec![0x13, name.len() as u8];
    der.extend_from_slice(name);
    let public = [by(CKA_EC_PARAMS, &der), on(CKA_VERIFY)];
    let public = if key_type != CKK_EC_MONTGOMERY {
        &public[..]
    } else {
        &public[..1]
    };
    gen_pair(s, &mut bare(mech), public, private)
}

/// Key pairs at the smallest and largest size: both halves have the right class and type.
fn pair_gen(
    cx: &Ctx,
    s: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    key_type: CK_KEY_TYPE,
    info: &CK_MECHANISM_INFO,
) {
    let mut pairs: Vec<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> = if key_type == CKK_RSA {
        // The shared pair was made with this mechanism at 2048 bits; the largest size
        // (8192) takes too long to generate for a test that runs on every build.
        assert!(
            (info.ulMinKeySize..=info.ulMaxKeySize).contains(&RSA_BITS),
            "2048 bits in range"
        );
        assert_eq!(get_ul(s, cx.rsa.0, CKA_MODULUS_BITS), RSA_BITS);
        vec![cx.rsa]
    } else {
        [info.ulMinKeySize, info.ulMaxKeySize]
            .into_iter()
            .map(|bits| {
                let oid = curve(key_type, bits).unwrap_or_else(|| {
                    panic!("no curve of {bits} bits for key type {key_type:#x}")
                });
                gen_pair(s, &mut bare(mech), &[by(CKA_EC_PARAMS, oid)], &[])
            })
            .collect()
    };
    if info.flags & CKF_EC_CURVENAME != 0 {
        pairs.push(named_pair(s, key_type, &[]));
    }
    for (public, private) in pairs {
        assert_eq!(get_ul(s, public, CKA_CLASS), CKO_PUBLIC_KEY);
        assert_eq!(get_ul(s, private, CKA_CLASS), CKO_PRIVATE_KEY);
        for h in [public, private] {
            assert_eq!(get_ul(s, h, CKA_KEY_TYPE), key_type, "key type");
            assert_eq!(get_ul(s, h, CKA_KEY_GEN_MECHANISM), mech);
        }
    }
}

fn cipher(cx: &Ctx, s: CK_SESSION_HANDLE, mech: CK_MECHANISM_TYPE, run: &mut Run) {
    let (key, kek) = if mech == CKM_CHACHA20_POLY1305 {
        (cx.chacha, cx.chacha_kek)
    } else {
        (cx.aes, cx.aes_kek)
    };
    let mut iv = [7u8; 16];
    let mut nonce = [9u8; 12];
    let mut aad = *b"associated data";
    let mut ctr = CK_AES_CTR_PARAMS {
        ulCounterBits: 128,
        cb: [3; 16],
    };
    let mut gcm = CK_GCM_PARAMS {
        pIv: nonce.as_mut_ptr(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: aad.len() as CK_ULONG,
        ulTagBits: 128,
    };
    // CCM states the length of what it encrypts: the data, or the wrapped AES-128 key.
    let ccm = |len: usize, nonce: &mut [u8], aad: &mut [u8]| CK_CCM_PARAMS {
        ulDataLen: len as CK_ULONG,
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: nonce.len() as CK_ULONG,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: aad.len() as CK_ULONG,
        ulMACLen: 16,
    };
    let mut ccm_data = ccm(DATA.len(), &mut nonce, &mut aad);
    let mut ccm_key = ccm(16, &mut nonce, &mut aad);
    let mut chacha = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: aad.len() as CK_ULONG,
    };
    let mut m = match mech {
        CKM_AES_CBC | CKM_AES_CBC_PAD | CKM_AES_CTS => with_bytes(mech, &mut iv),
        CKM_AES_CTR => with(mech, &mut ctr),
        CKM_AES_GCM => with(mech, &mut gcm),
        CKM_AES_CCM => with(mech, &mut ccm_data),
        CKM_CHACHA20_POLY1305 => with(mech, &mut chacha),
        _ => bare(mech),
    };
    run.when(ED, || round_trip(s, &mut m, key, key, DATA));
    if mech == CKM_AES_CCM {
        m = with(mech, &mut ccm_key);
    }
    run.when(WU, || wrap_unwrap(cx, s, &mut m, kek, kek));
    run.when(MSG, || {
        let mut m = bare(mech);
        let (mut iv, mut tag) = ([5u8; 12], [0u8; 16]);
        match mech {
            CKM_AES_GCM => message_round_trip(
                s,
                &mut m,
                key,
                &mut CK_GCM_MESSAGE_PARAMS {
                    pIv: iv.as_mut_ptr(),
                    ulIvLen: 12,
                    ulIvFixedBits: 0,
                    ivGenerator: CKG_NO_GENERATE,
                    pTag: tag.as_mut_ptr(),
                    ulTagBits: 128,
                },
                DATA,
            ),
            CKM_AES_CCM => message_round_trip(
                s,
                &mut m,
                key,
                &mut CK_CCM_MESSAGE_PARAMS {
                    ulDataLen: DATA.len() as CK_ULONG,
                    pNonce: iv.as_mut_ptr(),
                    ulNonceLen: 12,
                    ulNonceFixedBits: 0,
                    nonceGenerator: CKG_NO_GENERATE,
                    pMAC: tag.as_mut_ptr(),
                    ulMACLen: 16,
                },
                DATA,
            ),
            CKM_CHACHA20_POLY1305 => message_round_trip(
                s,
                &mut m,
                key,
                &mut CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS {
                    pNonce: iv.as_mut_ptr(),
                    ulNonceLen: 12,
                    pTag: tag.as_mut_ptr(),
                },
                DATA,
            ),
            _ => panic!("no per-message parameter known for this mechanism"),
        }
        assert_ne!(tag, [0u8; 16], "the tag was written");
    });
}

fn kdf(
    cx: &Ctx,
    s: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    info: &CK_MECHANISM_INFO,
    run: &mut Run,
) {
    let mut data = *DATA;
    let mut string = CK_KEY_DERIVATION_STRING_DATA {
        pData: data.as_mut_ptr(),
        ulLen: data.len() as CK_ULONG,
    };
    let mut other = cx.other;
    let mut cbc = CK_AES_CBC_ENCRYPT_DATA_PARAMS {
        iv: [1; 16],
        pData: data.as_mut_ptr(),
        length: data.len() as CK_ULONG,
    };
    let mut salt = *b"salt";
    let mut info_bytes = *b"info";
    let mut hkdf = CK_HKDF_PARAMS {
        bExtract: CK_TRUE,
        bExpand: CK_TRUE,
        prfHashMechanism: CKM_SHA256,
        ulSaltType: CKF_HKDF_SALT_DATA,
        pSalt: salt.as_mut_ptr(),
        ulSaltLen: salt.len() as CK_ULONG,
        hSaltKey: CK_INVALID_HANDLE,
        pInfo: info_bytes.as_mut_ptr(),
        ulInfoLen: info_bytes.len() as CK_ULONG,
    };
    let mut counter = CK_SP800_108_COUNTER_FORMAT {
        bLittleEndian: CK_FALSE,
        ulWidthInBits: 32,
    };
    let mut fixed = *b"label and context";
    let mut prf_data = [
        CK_PRF_DATA_PARAM {
            type_: CK_SP800_108_ITERATION_VARIABLE,
            pValue: (&raw mut counter).cast(),
            ulValueLen: size_of::<CK_SP800_108_COUNTER_FORMAT>() as CK_ULONG,
        },
        CK_PRF_DATA_PARAM {
            type_: CK_SP800_108_BYTE_ARRAY,
            pValue: fixed.as_mut_ptr().cast(),
            ulValueLen: fixed.len() as CK_ULONG,
        },
    ];
    let mut sp800 = CK_SP800_108_KDF_PARAMS {
        prfType: CKM_SHA256_HMAC,
        ulNumberOfDataParams: 2,
        pDataParams: prf_data.as_mut_ptr(),
        ulAdditionalDerivedKeys: 0,
        pAdditionalDerivedKeys: null_mut(),
    };
    let mut password = *b"password";
    let mut pbkdf2 = CK_PKCS5_PBKD2_PARAMS2 {
        saltSource: CKZ_SALT_SPECIFIED,
        pSaltSourceData: salt.as_mut_ptr().cast(),
        ulSaltSourceDataLen: salt.len() as CK_ULONG,
        iterations: 1,
        prf: CKP_PKCS5_PBKD2_HMAC_SHA256,
        pPrfData: null_mut(),
        ulPrfDataLen: 0,
        pPassword: password.as_mut_ptr(),
        ulPasswordLen: password.len() as CK_ULONG,
    };
    let (mut m, base) = match mech {
        CKM_CONCATENATE_BASE_AND_KEY => (with(mech, &mut other), cx.base),
        CKM_CONCATENATE_BASE_AND_DATA | CKM_CONCATENATE_DATA_AND_BASE => {
            (with(mech, &mut string), cx.base)
        }
        CKM_AES_ECB_ENCRYPT_DATA => (with(mech, &mut string), cx.aes),
        CKM_AES_CBC_ENCRYPT_DATA => (with(mech, &mut cbc), cx.aes),
        CKM_HKDF_DERIVE | CKM_HKDF_DATA => (with(mech, &mut hkdf), cx.base),
        CKM_SP800_108_COUNTER_KDF => (with(mech, &mut sp800), cx.base),
        CKM_PKCS5_PBKD2 => (with(mech, &mut pbkdf2), CK_INVALID_HANDLE),
        _ => (bare(mech), CK_INVALID_HANDLE),
    };
    run.when(CKF_DERIVE, || {
        assert_ne!(base, CK_INVALID_HANDLE, "no base key known for this KDF");
        if mech == CKM_HKDF_DATA {
            let d = derive(s, &mut m, base, &[off(CKA_TOKEN), ul(CKA_VALUE_LEN, 42)]);
            assert_eq!(get_ul(s, d, CKA_CLASS), CKO_DATA);
            assert_eq!(get(s, d, CKA_VALUE).len(), 42, "the asked length");
            return;
        }
        // Shorter than every input here (the concatenations make 48 and 64 bytes).
        let k = derive(
            s,
            &mut m,
            base,
            &[
                ul(CKA_CLASS, CKO_SECRET_KEY),
                ul(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
                ul(CKA_VALUE_LEN, 24),
            ],
        );
        assert_eq!(get_ul(s, k, CKA_KEY_TYPE), CKK_GENERIC_SECRET);
        assert_eq!(get_ul(s, k, CKA_VALUE_LEN), 24, "the asked length");
    });
    run.when(CKF_GENERATE, || {
        for len in [info.ulMinKeySize, info.ulMaxKeySize] {
            let k = gen_key(
                s,
                &mut m,
                &[ul(CKA_KEY_TYPE, CKK_GENERIC_SECRET), ul(CKA_VALUE_LEN, len)],
            );
            assert_eq!(get_ul(s, k, CKA_KEY_TYPE), CKK_GENERIC_SECRET);
            assert_eq!(get_ul(s, k, CKA_VALUE_LEN), len, "the asked length");
        }
    });
}

// ---- The tests --------------------------------------------------------------------------

fn mechanism_list(slot: CK_SLOT_ID) -> Vec<CK_MECHANISM_TYPE> {
    let mut n: CK_ULONG = 0;
    check(
        call!(C_GetMechanismList, slot, null_mut(), &mut n),
        "C_GetMechanismList",
    );
    let mut list = vec![0; n as usize];
    check(
        call!(C_GetMechanismList, slot, list.as_mut_ptr(), &mut n),
        "C_GetMechanismList",
    );
    list.truncate(n as usize);
    list
}

fn mechanism_info(slot: CK_SLOT_ID, mech: CK_MECHANISM_TYPE) -> CK_MECHANISM_INFO {
    let mut info = CK_MECHANISM_INFO::default();
    check(
        call!(C_GetMechanismInfo, slot, mech, &mut info),
        &format!("C_GetMechanismInfo({mech:#x})"),
    );
    info
}

fn panic_text(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "a panic".into())
}

#[test]
fn every_listed_mechanism_does_every_function_it_claims() {
    if !is_keyward() {
        return; // the table is Keyward's mechanism list
    }
    let slot = common::fresh_token();
    let id = common::slot_id(slot);
    let main = user_session(slot);
    let cx = Ctx::new(main.handle());
    let listed = mechanism_list(id);
    let mut failures = Vec::new();
    if listed.iter().collect::<BTreeSet<_>>().len() != listed.len() {
        failures.push("the list names a mechanism twice".to_string());
    }
    for (mech, name, _) in TABLE {
        if !listed.contains(mech) {
            failures.push(format!("{name}: in the table but not listed"));
        }
    }
    for &mech in &listed {
        let Some(&(_, name, fam)) = TABLE.iter().find(|e| e.0 == mech) else {
            failures.push(format!("{mech:#x}: listed but not exercised"));
            continue;
        };
        let info = mechanism_info(id, mech);
        if info.ulMinKeySize > info.ulMaxKeySize {
            failures.push(format!(
                "{name}: key sizes {}..{}",
                info.ulMinKeySize, info.ulMaxKeySize
            ));
        }
        // Each mechanism in a session of its own: what it creates goes with the session, and
        // an operation a failure leaves active cannot disturb the next mechanism.
        let mut s = CK_INVALID_HANDLE;
        let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        check(
            call!(C_OpenSession, id, flags, null_mut(), None, &mut s),
            "C_OpenSession",
        );
        let result = catch_unwind(AssertUnwindSafe(|| exercise(&cx, s, mech, fam, &info)));
        check(call!(C_CloseSession, s), "C_CloseSession");
        let claimed = info.flags & !CAPABILITIES;
        match result {
            Err(p) => failures.push(format!(
                "{name} ({}): {}",
                flag_names(claimed),
                panic_text(p.as_ref())
            )),
            Ok(done) => {
                if claimed & !done != 0 {
                    failures.push(format!(
                        "{name}: claims {} which the table cannot exercise",
                        flag_names(claimed & !done)
                    ));
                }
                if done & !claimed != 0 {
                    failures.push(format!(
                        "{name}: {} works but is not claimed",
                        flag_names(done & !claimed)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} listed mechanisms are not what the list says:\n  {}",
        failures.len(),
        listed.len(),
        failures.join("\n  ")
    );
}

/// The flags `pkcs11-tool -M` prints on one line (after the name), with its key sizes.
fn tool_line(items: &[&str]) -> (CK_FLAGS, Option<(CK_ULONG, CK_ULONG)>) {
    let mut flags = 0;
    let mut sizes = None;
    for item in items {
        if let Some(r) = item
            .strip_prefix("keySize={")
            .and_then(|r| r.strip_suffix('}'))
        {
            let (a, b) = r.split_once(',').expect("keySize={min,max}");
            sizes = Some((a.parse().expect("min"), b.parse().expect("max")));
        } else if let Some(hex) = item.strip_prefix("other flags=0x") {
            flags |= CK_FLAGS::from_str_radix(hex, 16).expect("hex flags");
        } else if let Some((f, _)) = FLAG_NAMES.iter().find(|(_, n)| n == item) {
            flags |= f;
        } else {
            panic!("pkcs11-tool prints an unknown item {item:?}");
        }
    }
    (flags, sizes)
}

#[test]
fn pkcs11_tool_lists_the_same_mechanisms() {
    if !is_keyward() {
        return;
    }
    let id = common::slot_id(common::fresh_token());
    let listed = mechanism_list(id);
    // The tool is a process of its own over a storage directory of its own.
    let dir = common::env().dir.join("mechlist-tool");
    std::fs::create_dir_all(&dir).expect("the tool's directory");
    let conf = dir.join("keyward.toml");
    std::fs::write(
        &conf,
        format!("storage_dir = \"{}\"\n", dir.join("tokens").display()),
    )
    .expect("the tool's configuration");
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(common::module_path())
        .arg("-M")
        .env("KEYWARD_CONF", &conf)
        .output()
        .expect("pkcs11-tool (Debian package opensc) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pkcs11-tool -M: {stdout}");
    let lines: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Supported mechanisms:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(
        lines.len(),
        listed.len(),
        "pkcs11-tool prints as many mechanisms as C_GetMechanismList returns:\n{stdout}"
    );
    let mut seen = BTreeSet::new();
    for line in lines {
        let items: Vec<&str> = line.trim().split(", ").collect();
        let name = items[0];
        // The tool prints the names it knows with '-' for '_' and no CKM_, the others in hex.
        let mech = match name.strip_prefix("mechtype-0x") {
            Some(hex) => CK_MECHANISM_TYPE::from_str_radix(hex, 16).expect("hex"),
            None => {
                TABLE
                    .iter()
                    .find(|(_, n, _)| n.trim_start_matches("CKM_").replace('_', "-") == name)
                    .unwrap_or_else(|| panic!("pkcs11-tool names {name:?}, which the table lacks"))
                    .0
            }
        };
        assert!(listed.contains(&mech), "{line}: not in the list");
        assert!(seen.insert(mech), "{line}: printed twice");
        let info = mechanism_info(id, mech);
        let (flags, sizes) = tool_line(&items[1..]);
        assert_eq!(flags, info.flags, "{line}: the flags");
        let want = (info.ulMinKeySize != 0 || info.ulMaxKeySize != 0)
            .then_some((info.ulMinKeySize, info.ulMaxKeySize));
        assert_eq!(sizes, want, "{line}: the key sizes");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
