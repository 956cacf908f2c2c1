//! Tests of Edwards and Montgomery keys, cross-checked with the `openssl` crate in the
//! default context and with RFC 8032 vectors.

use openssl::pkey::{Id, PKey as OsslPKey};
use openssl::sign::Verifier;

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

// RFC 8032 §7.1 TEST 1.
const T1_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const T1_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const T1_SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                      5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

fn ossl_id(curve: EdCurve) -> Id {
    match curve {
        EdCurve::Ed25519 => Id::ED25519,
        EdCurve::Ed448 => Id::ED448,
        EdCurve::X25519 => Id::X25519,
        EdCurve::X448 => Id::X448,
    }
}

#[test]
fn generated_keys_round_trip_and_encode_spki_like_openssl() {
    for curve in EdCurve::ALL {
        let key = EdKey::generate(curve).unwrap();
        assert!(key.has_private());
        assert_eq!(key.curve(), curve);
        let public = key.public_raw().unwrap();
        let private = key.private_raw().unwrap();
        assert_eq!(public.len(), curve.key_len());
        assert_eq!(private.len(), curve.key_len());
        assert!(key.check_pair().unwrap(), "{curve:?}");

        let reference = OsslPKey::public_key_from_raw_bytes(&public, ossl_id(curve)).unwrap();
        assert_eq!(
            key.spki_der().unwrap(),
            reference.public_key_to_der().unwrap()
        );
        let again = EdKey::from_private(curve, &private).unwrap();
        assert_eq!(again.public_raw().unwrap(), public);
        let pubonly = EdKey::from_public(curve, &public).unwrap();
        assert!(!pubonly.has_private());
        assert!(pubonly.private_raw().is_err());
    }
}

#[test]
fn curve_identifiers() {
    assert_eq!(
        EdCurve::from_oid_der(&[0x06, 0x03, 0x2b, 0x65, 0x70]),
        Some(EdCurve::Ed25519)
    );
    assert_eq!(
        EdCurve::from_oid_der(&[0x06, 0x03, 0x2b, 0x65, 0x6f]),
        Some(EdCurve::X448)
    );
    assert_eq!(EdCurve::from_oid_der(&[0x06, 0x03, 0x2b, 0x65, 0x72]), None);
    assert_eq!(EdCurve::from_name(b"edwards448"), Some(EdCurve::Ed448));
    assert_eq!(EdCurve::from_name(b"curve25519"), Some(EdCurve::X25519));
    assert_eq!(EdCurve::from_name(b"ed25519"), None);
}

#[test]
fn wrong_lengths_are_refused() {
    assert!(EdKey::from_private(EdCurve::Ed25519, &[1; 31]).is_err());
    assert!(EdKey::from_public(EdCurve::Ed448, &[1; 56]).is_err());
    assert!(EdKey::from_private(EdCurve::X448, &[1; 57]).is_err());
}

#[test]
fn ed25519_rfc8032_test1_and_openssl_cross_check() {
    let key = EdKey::from_private(EdCurve::Ed25519, &h(T1_SECRET)).unwrap();
    assert_eq!(key.public_raw().unwrap(), h(T1_PUBLIC));
    let sig = key.sign(EdVariant::Pure, b"").unwrap();
    assert_eq!(sig, h(T1_SIG));

    let public = EdKey::from_public(EdCurve::Ed25519, &h(T1_PUBLIC)).unwrap();
    assert!(public.verify(EdVariant::Pure, b"", &sig).unwrap());
    let mut bad = sig.clone();
    bad[10] ^= 1;
    assert!(!public.verify(EdVariant::Pure, b"", &bad).unwrap());
    assert!(!public.verify(EdVariant::Pure, b"x", &sig).unwrap());
    assert!(!public.verify(EdVariant::Pure, b"", &sig[..63]).unwrap());
    assert!(public.sign(EdVariant::Pure, b"").is_err());

    // A fresh key's signature checks out with the default context's verifier.
    for curve in [EdCurve::Ed25519, EdCurve::Ed448] {
        let key = EdKey::generate(curve).unwrap();
        let msg = b"keyward edwards";
        let sig = key.sign(EdVariant::Pure, msg).unwrap();
        assert_eq!(sig.len(), curve.signature_len());
        let reference =
            OsslPKey::public_key_from_raw_bytes(&key.public_raw().unwrap(), ossl_id(curve))
                .unwrap();
        let mut v = Verifier::new_without_digest(&reference).unwrap();
        assert!(v.verify_oneshot(&sig, msg).unwrap());
    }
}

#[test]
fn repeated_and_concurrent_operations_reuse_the_key() {
    let key = std::sync::Arc::new(EdKey::from_private(EdCurve::Ed25519, &h(T1_SECRET)).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let key = key.clone();
            std::thread::spawn(move || {
                let mut bad = h(T1_SIG);
                bad[0] ^= 0x80;
                for _ in 0..50 {
                    assert_eq!(key.sign(EdVariant::Pure, b"").unwrap(), h(T1_SIG));
                    assert!(!key.verify(EdVariant::Pure, b"", &bad).unwrap());
                    assert!(key.verify(EdVariant::Pure, b"", &h(T1_SIG)).unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn montgomery_keys_do_not_sign() {
    let key = EdKey::generate(EdCurve::X25519).unwrap();
    assert!(key.sign(EdVariant::Pure, b"m").is_err());
    assert!(key.verify(EdVariant::Pure, b"m", &[0; 64]).is_err());
}

#[test]
fn variants_need_a_capable_openssl() {
    let key = EdKey::generate(EdCurve::Ed25519).unwrap();
    let long = [0u8; 256];
    assert!(key.sign(EdVariant::Context(&long), b"m").is_err());
    let r = key.sign(EdVariant::Context(b"foo"), b"m");
    assert_eq!(r.is_ok(), variants_supported());
}

/// Sign rate of one thread; run with `--ignored --nocapture`.
#[test]
#[ignore]
fn sign_rate() {
    for curve in [EdCurve::Ed25519, EdCurve::Ed448] {
        let key = EdKey::generate(curve).unwrap();
        let msg = [0x42u8; 64];
        let n = 20_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            key.sign(EdVariant::Pure, &msg).unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!("{curve:?}: {:.0} signatures/s", f64::from(n) / secs);
        let sig = key.sign(EdVariant::Pure, &msg).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert!(key.verify(EdVariant::Pure, &msg, &sig).unwrap());
        }
        let secs = t.elapsed().as_secs_f64();
        println!("{curve:?}: {:.0} verifications/s", f64::from(n) / secs);
    }
}
