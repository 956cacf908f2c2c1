//! Keys are imported (and generated) with our provider even when the host process made an
//! ENGINE the default for EC and RSA, as `openssl -engine pkcs11`, curl and nginx do with
//! libp11's engine, whose methods are OpenSSL's own ones with token keys diverted: such a
//! legacy method cannot import a key from its components. The engine table is process-wide,
//! so this runs in its own test binary.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Once;

use keyward_ossl::digest::DigestAlg;
use keyward_ossl::pkey::{Curve, PKey, RsaComponents};

type Engine = c_void;
type PkeyMethod = c_void;
type PkeyMeths =
    unsafe extern "C" fn(*mut Engine, *mut *const PkeyMethod, *mut *const c_int, c_int) -> c_int;

unsafe extern "C" {
    fn ENGINE_new() -> *mut Engine;
    fn ENGINE_set_id(e: *mut Engine, id: *const c_char) -> c_int;
    fn ENGINE_set_name(e: *mut Engine, name: *const c_char) -> c_int;
    fn ENGINE_set_pkey_meths(e: *mut Engine, f: PkeyMeths) -> c_int;
    fn ENGINE_set_default_pkey_meths(e: *mut Engine) -> c_int;
    fn EVP_PKEY_meth_new(id: c_int, flags: c_int) -> *mut PkeyMethod;
    fn EVP_PKEY_meth_find(id: c_int) -> *const PkeyMethod;
    fn EVP_PKEY_meth_copy(dst: *mut PkeyMethod, src: *const PkeyMethod);
}

const EVP_PKEY_RSA: c_int = 6;
const EVP_PKEY_EC: c_int = 408;
static NIDS: [c_int; 2] = [EVP_PKEY_RSA, EVP_PKEY_EC];

/// Copies of OpenSSL's built-in legacy methods, as libp11 registers them.
unsafe extern "C" fn pkey_meths(
    _e: *mut Engine,
    pmeth: *mut *const PkeyMethod,
    nids: *mut *const c_int,
    nid: c_int,
) -> c_int {
    if pmeth.is_null() {
        // SAFETY: OpenSSL passes a valid out-pointer when it asks for the NID list.
        unsafe { *nids = NIDS.as_ptr() };
        return NIDS.len() as c_int;
    }
    if !NIDS.contains(&nid) {
        // SAFETY: `pmeth` is OpenSSL's non-null out-pointer.
        unsafe { *pmeth = std::ptr::null() };
        return 0;
    }
    // SAFETY: `pmeth` is OpenSSL's non-null out-pointer; the built-in method for a NID we
    // list exists, and the copy lives for the rest of the process.
    unsafe {
        let m = EVP_PKEY_meth_new(nid, 0);
        EVP_PKEY_meth_copy(m, EVP_PKEY_meth_find(nid));
        *pmeth = m;
    }
    1
}

fn default_engine() {
    static ONCE: Once = Once::new();
    // SAFETY: plain ENGINE set-up calls on an engine we own and never free.
    ONCE.call_once(|| unsafe {
        let e = ENGINE_new();
        assert!(!e.is_null());
        assert_eq!(ENGINE_set_id(e, c"legacy".as_ptr()), 1);
        assert_eq!(
            ENGINE_set_name(e, c"default EC and RSA methods".as_ptr()),
            1
        );
        assert_eq!(ENGINE_set_pkey_meths(e, pkey_meths), 1);
        assert_eq!(ENGINE_set_default_pkey_meths(e), 1);
    });
}

#[test]
fn ec_keys_ignore_a_default_engine() {
    default_engine();
    let key = PKey::generate_ec(Curve::P256).unwrap();
    let d = key.ec_private_value().unwrap();
    let point = key.ec_public_point().unwrap();
    let again = PKey::ec_from_components(Curve::P256, Some(&d), None).unwrap();
    let sig = again.ecdsa_sign_sha256(b"data").unwrap();
    let public = PKey::ec_from_components(Curve::P256, None, Some(&point)).unwrap();
    assert!(public.ecdsa_verify_sha256(b"data", &sig).unwrap());
}

#[test]
fn rsa_keys_ignore_a_default_engine() {
    default_engine();
    let generated = PKey::generate_rsa(2048, &[1, 0, 1]).unwrap();
    let p = generated.rsa_private_parts().unwrap();
    let key = PKey::rsa_private_from_components(&RsaComponents {
        n: &p.n,
        e: &p.e,
        d: &p.d,
        crt: None,
    })
    .unwrap();
    let sig = key.rsa_pkcs1_sign(DigestAlg::Sha256, b"data").unwrap();
    let public = PKey::rsa_public_from_components(&p.n, &p.e).unwrap();
    assert!(
        public
            .rsa_pkcs1_verify(DigestAlg::Sha256, b"data", &sig)
            .unwrap()
    );
}
