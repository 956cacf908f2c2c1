//! Tests of keys and signatures, cross-checked with the `openssl` crate in the default
//! context (an independent key parse and signature implementation path).

use std::sync::{Arc, OnceLock};

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey as OsslPKey, Public};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};

use super::*;

fn reference_public(key: &PKey) -> OsslPKey<Public> {
    OsslPKey::public_key_from_der(&key.spki_der().unwrap()).unwrap()
}

fn rs_to_openssl_der(rs: &[u8]) -> Vec<u8> {
    let (r, s) = rs.split_at(rs.len() / 2);
    EcdsaSig::from_private_components(
        BigNum::from_slice(r).unwrap(),
        BigNum::from_slice(s).unwrap(),
    )
    .unwrap()
    .to_der()
    .unwrap()
}

fn rsa_key() -> Arc<PKey> {
    // RSA generation is slow in debug builds: one key serves every RSA test.
    static KEY: OnceLock<Arc<PKey>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(PKey::generate_rsa(2048, &[1, 0, 1]).unwrap()))
        .clone()
}

#[test]
fn curve_oids_round_trip() {
    for c in Curve::ALL {
        assert_eq!(Curve::from_oid_der(c.oid_der()), Some(c));
    }
    assert_eq!(Curve::from_oid_der(&[0x06, 0x03, 0x2b, 0x65, 0x70]), None);
}

#[test]
fn ec_generate_export_import_and_cross_verify() {
    for curve in Curve::ALL {
        let key = PKey::generate_ec(curve).unwrap();
        assert_eq!(key.kind(), KeyKind::Ec(curve));
        assert_eq!(key.signature_len(), 2 * curve.field_len());
        let point = key.ec_public_point().unwrap();
        assert_eq!(point.len(), curve.point_len());
        let d = key.ec_private_value().unwrap();
        assert_eq!(d.len(), curve.field_len());

        // The scalar alone rebuilds the same public point.
        let again = PKey::ec_from_components(curve, Some(&d), None).unwrap();
        assert_eq!(again.ec_public_point().unwrap(), point);
        assert!(again.check_pair().unwrap());
        let public = PKey::ec_from_components(curve, None, Some(&point)).unwrap();
        assert!(!public.has_private());
        assert_eq!(public.spki_der().unwrap(), key.spki_der().unwrap());

        let digest = [0x5au8; 48];
        let sig = again.ecdsa_sign_digest(&digest).unwrap();
        assert_eq!(sig.len(), key.signature_len());
        assert!(public.ecdsa_verify_digest(&digest, &sig).unwrap());

        // Independent check: the default-context openssl verifier on the SPKI.
        let reference = reference_public(&key);
        let mut v = openssl::pkey_ctx::PkeyCtx::new(&reference).unwrap();
        v.verify_init().unwrap();
        assert!(v.verify(&digest, &rs_to_openssl_der(&sig)).unwrap());

        let mut bad = sig.clone();
        bad[3] ^= 1;
        assert!(!public.ecdsa_verify_digest(&digest, &bad).unwrap());
        assert!(!public.ecdsa_verify_digest(&digest, &sig[1..]).unwrap());
        assert!(!public.ecdsa_verify_digest(&[0u8; 48], &sig).unwrap());
        assert!(public.ecdsa_sign_digest(&digest).is_err());
    }
}

#[test]
fn ecdsa_sha256_matches_openssl_both_ways() {
    let key = PKey::generate_ec(Curve::P256).unwrap();
    let reference = reference_public(&key);
    let msg = b"a message signed with ECDSA and SHA-256";
    let sig = key.ecdsa_sign_sha256(msg).unwrap();
    let mut v = Verifier::new(MessageDigest::sha256(), &reference).unwrap();
    assert!(v.verify_oneshot(&rs_to_openssl_der(&sig), msg).unwrap());

    // A signature made by the default-context signer verifies here.
    let d = key.ec_private_value().unwrap();
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let ec = openssl::ec::EcKey::from_private_components(
        &group,
        &BigNum::from_slice(&d).unwrap(),
        reference.ec_key().unwrap().public_key(),
    )
    .unwrap();
    let sk = OsslPKey::from_ec_key(ec).unwrap();
    let der = Signer::new(MessageDigest::sha256(), &sk)
        .unwrap()
        .sign_oneshot_to_vec(msg)
        .unwrap();
    let parsed = EcdsaSig::from_der(&der).unwrap();
    let mut rs = parsed.r().to_vec_padded(32).unwrap();
    rs.extend(parsed.s().to_vec_padded(32).unwrap());
    assert!(key.ecdsa_verify_sha256(msg, &rs).unwrap());
    assert!(!key.ecdsa_verify_sha256(b"another message", &rs).unwrap());
}

#[test]
fn ec_import_rejects_bad_values() {
    let key = PKey::generate_ec(Curve::P256).unwrap();
    let point = key.ec_public_point().unwrap();
    // Scalar 0 and the group order n are outside [1, n-1].
    assert!(PKey::ec_from_components(Curve::P256, Some(&[0u8; 32]), None).is_err());
    let n =
        hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551").unwrap();
    assert!(PKey::ec_from_components(Curve::P256, Some(&n), None).is_err());
    // A point off the curve.
    let mut off = point.clone();
    off[40] ^= 1;
    assert!(PKey::ec_from_components(Curve::P256, None, Some(&off)).is_err());
    // A private value with somebody else's point.
    let other = PKey::generate_ec(Curve::P256).unwrap();
    assert!(
        PKey::ec_from_components(
            Curve::P256,
            Some(&other.ec_private_value().unwrap()),
            Some(&point)
        )
        .is_err()
    );
    // Short scalars are fine (big-endian, leading zeros dropped).
    let small = PKey::ec_from_components(Curve::P256, Some(&[7]), None).unwrap();
    assert_eq!(small.ec_private_value().unwrap()[31], 7);
}

#[test]
fn spki_round_trip_and_trailing_bytes() {
    let key = PKey::generate_ec(Curve::P384).unwrap();
    let der = key.spki_der().unwrap();
    let back = PKey::from_spki_der(&der).unwrap();
    assert_eq!(back.kind(), KeyKind::Ec(Curve::P384));
    assert_eq!(
        back.ec_public_point().unwrap(),
        key.ec_public_point().unwrap()
    );
    let mut long = der.clone();
    long.push(0);
    assert!(PKey::from_spki_der(&long).is_err());
    assert!(PKey::from_spki_der(&der[..der.len() - 1]).is_err());
}

#[test]
fn rsa_pkcs1_signature_matches_default_context_signer() {
    let key = rsa_key();
    assert_eq!(key.kind(), KeyKind::Rsa);
    assert_eq!(key.bits(), 2048);
    assert_eq!(key.signature_len(), 256);
    let parts = key.rsa_private_parts().unwrap();
    assert_eq!(parts.e, vec![1, 0, 1]);
    assert_eq!(parts.n.len(), 256);

    // Rebuild from components, as the engine does from attributes.
    let comps = RsaComponents {
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
    };
    let rebuilt = PKey::rsa_private_from_components(&comps).unwrap();
    let msg = b"abc";
    let sig = rebuilt.rsa_pkcs1_sign(DigestAlg::Sha256, msg).unwrap();

    // PKCS#1 v1.5 is deterministic: the default-context signer must give the same bytes.
    let bn = |b: &[u8]| BigNum::from_slice(b).unwrap();
    let rsa = Rsa::from_private_components(
        bn(&parts.n),
        bn(&parts.e),
        bn(&parts.d),
        bn(&parts.p),
        bn(&parts.q),
        bn(&parts.dp),
        bn(&parts.dq),
        bn(&parts.qinv),
    )
    .unwrap();
    let reference = OsslPKey::from_rsa(rsa).unwrap();
    let expected = Signer::new(MessageDigest::sha256(), &reference)
        .unwrap()
        .sign_oneshot_to_vec(msg)
        .unwrap();
    assert_eq!(sig, expected);

    let (n, e) = key.rsa_public_parts().unwrap();
    let public = PKey::rsa_public_from_components(&n, &e).unwrap();
    assert!(
        public
            .rsa_pkcs1_verify(DigestAlg::Sha256, msg, &sig)
            .unwrap()
    );
    assert!(
        !public
            .rsa_pkcs1_verify(DigestAlg::Sha256, b"abd", &sig)
            .unwrap()
    );
    let mut bad = sig.clone();
    bad[100] ^= 4;
    assert!(
        !public
            .rsa_pkcs1_verify(DigestAlg::Sha256, msg, &bad)
            .unwrap()
    );
    assert!(
        !public
            .rsa_pkcs1_verify(DigestAlg::Sha256, msg, &sig[1..])
            .unwrap()
    );
    // An all-ones signature is larger than the modulus: invalid, not an error.
    assert!(
        !public
            .rsa_pkcs1_verify(DigestAlg::Sha256, msg, &[0xff; 256])
            .unwrap()
    );
    assert!(public.rsa_pkcs1_sign_raw(b"x").is_err());
    assert_eq!(public.spki_der().unwrap(), key.spki_der().unwrap());
}

#[test]
fn rsa_raw_input_limit_is_k_minus_11() {
    let key = rsa_key();
    let max = vec![0x11u8; 256 - 11];
    let sig = key.rsa_pkcs1_sign_raw(&max).unwrap();
    assert!(key.rsa_pkcs1_verify_raw(&max, &sig).unwrap());
    assert!(key.rsa_pkcs1_sign_raw(&[0x11u8; 256 - 10]).is_err());
    let empty = key.rsa_pkcs1_sign_raw(b"").unwrap();
    assert!(key.rsa_pkcs1_verify_raw(b"", &empty).unwrap());
}

#[test]
fn pooled_contexts_work_across_threads() {
    let key = Arc::new(PKey::generate_ec(Curve::P256).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let key = key.clone();
            std::thread::spawn(move || {
                for j in 0..20u8 {
                    let d = [i as u8 ^ j; 32];
                    let sig = key.ecdsa_sign_digest(&d).unwrap();
                    assert!(key.ecdsa_verify_digest(&d, &sig).unwrap());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn der_conversion_edges() {
    // r with its high bit set gains a 0x00; s with leading zeros loses them.
    let mut rs = vec![0u8; 64];
    rs[0] = 0x80;
    rs[63] = 0x01;
    let mut der = [0u8; 160];
    let n = rs_to_der(&rs, &mut der).unwrap();
    assert_eq!(der[..6], [0x30, 0x26, 0x02, 0x21, 0x00, 0x80]);
    assert_eq!(der[n - 3..n], [0x02, 0x01, 0x01]);
    assert_eq!(der_to_rs(&der[..n], 32).unwrap(), rs);
    // Zero encodes as one 0x00 byte.
    let n = rs_to_der(&[0u8; 64], &mut der).unwrap();
    assert_eq!(der[..n], [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
    // P-521 signatures need the long length form.
    let rs = vec![0x01u8; 132];
    let n = rs_to_der(&rs, &mut der).unwrap();
    assert_eq!(der[..2], [0x30, 0x81]);
    assert_eq!(der_to_rs(&der[..n], 66).unwrap(), rs);
    // Garbage and oversize values are refused.
    assert!(der_to_rs(&[0x30, 0x00], 32).is_none());
    assert!(der_to_rs(&der[..n], 32).is_none());
    assert!(der_to_rs(&der[..n - 1], 66).is_none());
}

#[test]
fn spki_written_directly_matches_openssl_encoder() {
    for curve in [Curve::P256, Curve::P384, Curve::P521, Curve::Secp256k1] {
        let key = PKey::generate_ec(curve).unwrap();
        assert_eq!(
            key.spki_der().unwrap(),
            key.spki_der_openssl().unwrap(),
            "{curve:?}"
        );
    }
    let rsa = rsa_key();
    assert_eq!(rsa.spki_der().unwrap(), rsa.spki_der_openssl().unwrap());
    // An exponent and modulus whose top bits force a leading zero in the INTEGER.
    let public =
        PKey::rsa_public_from_components(&rsa.rsa_public_parts().unwrap().0, &[1, 0, 1]).unwrap();
    assert_eq!(
        public.spki_der().unwrap(),
        public.spki_der_openssl().unwrap()
    );
}

fn rsa_reference_private() -> OsslPKey<openssl::pkey::Private> {
    let parts = rsa_key().rsa_private_parts().unwrap();
    let bn = |b: &[u8]| BigNum::from_slice(b).unwrap();
    let rsa = Rsa::from_private_components(
        bn(&parts.n),
        bn(&parts.e),
        bn(&parts.d),
        bn(&parts.p),
        bn(&parts.q),
        bn(&parts.dp),
        bn(&parts.dq),
        bn(&parts.qinv),
    )
    .unwrap();
    OsslPKey::from_rsa(rsa).unwrap()
}

#[test]
fn rsa_pss_interoperates_with_the_default_context() {
    use openssl::rsa::Padding;
    use openssl::sign::RsaPssSaltlen;
    let key = rsa_key();
    let reference = rsa_reference_private();
    let msg = b"probabilistic signature";
    for (hash, mgf1, md, mgf_md, salt) in [
        (
            DigestAlg::Sha256,
            DigestAlg::Sha256,
            MessageDigest::sha256(),
            MessageDigest::sha256(),
            32,
        ),
        (
            DigestAlg::Sha512,
            DigestAlg::Sha1,
            MessageDigest::sha512(),
            MessageDigest::sha1(),
            0,
        ),
        (
            DigestAlg::Sha1,
            DigestAlg::Sha384,
            MessageDigest::sha1(),
            MessageDigest::sha384(),
            256 - 20 - 2,
        ),
    ] {
        let d = digest::digest(hash, msg).unwrap();
        // Ours, checked by the default context.
        let sig = key.rsa_pss_sign(hash, mgf1, salt, &d).unwrap();
        assert_eq!(sig.len(), 256);
        let mut v = Verifier::new(md, &reference).unwrap();
        v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        v.set_rsa_mgf1_md(mgf_md).unwrap();
        v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt as i32))
            .unwrap();
        assert!(v.verify_oneshot(&sig, msg).unwrap(), "{hash:?}/{salt}");
        // The default context's, checked by ours.
        let mut s = Signer::new(md, &reference).unwrap();
        s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        s.set_rsa_mgf1_md(mgf_md).unwrap();
        s.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt as i32))
            .unwrap();
        let theirs = s.sign_oneshot_to_vec(msg).unwrap();
        assert!(key.rsa_pss_verify(hash, mgf1, salt, &d, &theirs).unwrap());
        // Wrong salt length, MGF hash, digest or signature: false, not an error.
        assert!(
            !key.rsa_pss_verify(hash, mgf1, salt + 1, &d, &theirs)
                .unwrap()
        );
        assert!(
            !key.rsa_pss_verify(hash, DigestAlg::Sha224, salt, &d, &theirs)
                .unwrap()
        );
        let mut bad = d.to_vec();
        bad[0] ^= 1;
        assert!(!key.rsa_pss_verify(hash, mgf1, salt, &bad, &theirs).unwrap());
        assert!(
            !key.rsa_pss_verify(hash, mgf1, salt, &d, &theirs[1..])
                .unwrap()
        );
        assert!(
            !key.rsa_pss_verify(hash, mgf1, salt, &d, &[0xff; 256])
                .unwrap()
        );
    }
    // The PKCS#1 v1.5 contexts of the same key are unaffected by the PSS ones.
    let sig = key.rsa_pkcs1_sign(DigestAlg::Sha256, msg).unwrap();
    assert!(key.rsa_pkcs1_verify(DigestAlg::Sha256, msg, &sig).unwrap());
    assert!(
        key.rsa_pss_sign(DigestAlg::Sha256, DigestAlg::Sha256, 32, &[0; 20])
            .is_err()
    );
}

#[test]
fn rsa_raw_operations_are_inverse_and_match_the_default_context() {
    use openssl::rsa::Padding;
    let key = rsa_key();
    let reference = rsa_reference_private();
    let rsa = reference.rsa().unwrap();
    let mut block = vec![0u8; 256];
    block[1..].fill(0x5c);
    let sig = key.rsa_raw_private(&block).unwrap();
    let mut expected = vec![0u8; 256];
    rsa.private_encrypt(&block, &mut expected, Padding::NONE)
        .unwrap();
    assert_eq!(sig, expected);
    assert_eq!(key.rsa_raw_public(&sig).unwrap().unwrap(), block);
    // The modulus itself is not below the modulus; short blocks are refused.
    let n = rsa.n().to_vec();
    assert!(key.rsa_raw_private(&n).is_err());
    assert_eq!(key.rsa_raw_public(&n).unwrap(), None);
    assert_eq!(key.rsa_raw_public(&sig[1..]).unwrap(), None);
    assert!(key.rsa_raw_private(&block[1..]).is_err());
}

#[test]
fn rsa_oaep_interoperates_with_the_default_context() {
    use openssl::encrypt::{Decrypter, Encrypter};
    use openssl::rsa::Padding;
    let key = rsa_key();
    let reference = rsa_reference_private();
    for (hash, mgf1, md, mgf_md, label) in [
        (
            DigestAlg::Sha256,
            DigestAlg::Sha256,
            MessageDigest::sha256(),
            MessageDigest::sha256(),
            &b""[..],
        ),
        (
            DigestAlg::Sha1,
            DigestAlg::Sha512,
            MessageDigest::sha1(),
            MessageDigest::sha512(),
            &b"a label"[..],
        ),
    ] {
        let pad = RsaEncPadding::Oaep { hash, mgf1, label };
        let max = pad.max_message_len(256);
        assert_eq!(max, 256 - 2 * hash.output_len() - 2);
        let msg = vec![0xa7u8; max];
        let ct = key.rsa_encrypt(&pad, &msg).unwrap();
        assert_eq!(ct.len(), 256);
        assert!(key.rsa_encrypt(&pad, &vec![0u8; max + 1]).is_err());

        let mut dec = Decrypter::new(&reference).unwrap();
        dec.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        dec.set_rsa_oaep_md(md).unwrap();
        dec.set_rsa_mgf1_md(mgf_md).unwrap();
        // The openssl crate cannot set an empty label (it is the default anyway).
        if !label.is_empty() {
            dec.set_rsa_oaep_label(label).unwrap();
        }
        let mut out = vec![0u8; dec.decrypt_len(&ct).unwrap()];
        let n = dec.decrypt(&ct, &mut out).unwrap();
        assert_eq!(&out[..n], &msg[..]);

        let mut enc = Encrypter::new(&reference).unwrap();
        enc.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        enc.set_rsa_oaep_md(md).unwrap();
        enc.set_rsa_mgf1_md(mgf_md).unwrap();
        // The openssl crate cannot set an empty label (it is the default anyway).
        if !label.is_empty() {
            enc.set_rsa_oaep_label(label).unwrap();
        }
        let mut theirs = vec![0u8; enc.encrypt_len(b"secret").unwrap()];
        let n = enc.encrypt(b"secret", &mut theirs).unwrap();
        theirs.truncate(n);
        assert_eq!(
            key.rsa_decrypt(&pad, &theirs).unwrap().unwrap().as_slice(),
            b"secret"
        );
        // Every kind of wrong ciphertext gives the same None.
        let mut bad = theirs.clone();
        bad[200] ^= 1;
        assert!(key.rsa_decrypt(&pad, &bad).unwrap().is_none());
        assert!(key.rsa_decrypt(&pad, &theirs[1..]).unwrap().is_none());
        assert!(key.rsa_decrypt(&pad, &[0xff; 256]).unwrap().is_none());
        let other = RsaEncPadding::Oaep {
            hash,
            mgf1,
            label: b"another label",
        };
        assert!(key.rsa_decrypt(&other, &theirs).unwrap().is_none());
        // The pooled context is still good after failures.
        assert_eq!(
            key.rsa_decrypt(&pad, &theirs).unwrap().unwrap().as_slice(),
            b"secret"
        );
    }
}

#[test]
fn rsa_pkcs1_encryption_is_one_way_here() {
    use openssl::rsa::Padding;
    let key = rsa_key();
    let reference = rsa_reference_private();
    let ct = key.rsa_encrypt(&RsaEncPadding::Pkcs1, &[9u8; 245]).unwrap();
    let mut out = vec![0u8; 256];
    let n = reference
        .rsa()
        .unwrap()
        .private_decrypt(&ct, &mut out, Padding::PKCS1)
        .unwrap();
    assert_eq!(&out[..n], &[9u8; 245][..]);
    assert!(key.rsa_encrypt(&RsaEncPadding::Pkcs1, &[9u8; 246]).is_err());
    assert!(key.rsa_decrypt(&RsaEncPadding::Pkcs1, &ct).is_err());
    let (n, e) = key.rsa_public_parts().unwrap();
    let public = PKey::rsa_public_from_components(&n, &e).unwrap();
    assert!(public.rsa_raw_private(&[0u8; 256]).is_err());
    assert!(
        public
            .rsa_decrypt(
                &RsaEncPadding::Oaep {
                    hash: DigestAlg::Sha256,
                    mgf1: DigestAlg::Sha256,
                    label: b""
                },
                &ct
            )
            .is_err()
    );
}

#[test]
fn crt_consistency_is_checked_by_arithmetic() {
    let r = Rsa::generate(2048).unwrap();
    let v = |b: &openssl::bn::BigNumRef| b.to_vec();
    let (n, e, d) = (v(r.n()), v(r.e()), v(r.d()));
    let (p, q) = (v(r.p().unwrap()), v(r.q().unwrap()));
    let (dp, dq, qinv) = (
        v(r.dmp1().unwrap()),
        v(r.dmq1().unwrap()),
        v(r.iqmp().unwrap()),
    );
    let check = |n: &[u8], d: &[u8], dp: &[u8], qinv: &[u8]| {
        RsaComponents {
            n,
            e: &e,
            d,
            crt: Some(RsaCrt {
                p: &p,
                q: &q,
                dp,
                dq: &dq,
                qinv,
            }),
        }
        .crt_consistent()
        .unwrap()
    };
    assert_eq!(check(&n, &d, &dp, &qinv), Some(true));
    let flip = |b: &[u8]| {
        let mut b = b.to_vec();
        let last = b.len() - 1;
        b[last] ^= 2;
        b
    };
    assert_eq!(check(&flip(&n), &d, &dp, &qinv), Some(false), "n");
    assert_eq!(check(&n, &flip(&d), &dp, &qinv), Some(false), "d");
    assert_eq!(check(&n, &d, &flip(&dp), &qinv), Some(false), "dP");
    assert_eq!(check(&n, &d, &dp, &flip(&qinv)), Some(false), "qInv");
    let without = RsaComponents {
        n: &n,
        e: &e,
        d: &d,
        crt: None,
    };
    assert_eq!(without.crt_consistent().unwrap(), None);
}
