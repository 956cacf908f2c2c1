//! The 3.0 message-based encryption functions (PKCS#11 3.0 §5.15–5.16) with AES-GCM:
//! token-generated IVs written back, tags in the per-message parameter, messages in parts,
//! failures that end a message but not the operation, C_SessionCancel. Ciphertexts are
//! checked with the openssl crate.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

use crate::common::{self, attr_bytes, is_keyward, sh, user_session};
use crate::{assert_ckr, call, call30};

const AAD: &[u8] = b"header";

fn readable_key(s: &Session) -> (ObjectHandle, Vec<u8>) {
    let k = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let v = attr_bytes(s, k, AttributeType::Value);
    (k, v)
}

fn gcm_mech() -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// A CK_GCM_MESSAGE_PARAMS over caller-owned IV and tag buffers.
fn params(
    iv: &mut [u8],
    fixed_bits: CK_ULONG,
    generator: CK_GENERATOR_FUNCTION,
    tag: &mut [u8],
) -> CK_GCM_MESSAGE_PARAMS {
    CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: iv.len() as CK_ULONG,
        ulIvFixedBits: fixed_bits,
        ivGenerator: generator,
        pTag: tag.as_mut_ptr(),
        ulTagBits: (tag.len() * 8) as CK_ULONG,
    }
}

const PLEN: CK_ULONG = size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;

fn encrypt_message(s: &Session, p: &mut CK_GCM_MESSAGE_PARAMS, pt: &[u8]) -> (CK_RV, Vec<u8>) {
    encrypt_message_raw(s, p, AAD, pt)
}

fn decrypt_message(s: &Session, p: &mut CK_GCM_MESSAGE_PARAMS, ct: &[u8]) -> (CK_RV, Vec<u8>) {
    decrypt_message_raw(s, p, AAD, ct)
}

/// One message through C_*MessageBegin and C_*MessageNext in `chunk`-byte parts.
fn in_parts(
    s: &Session,
    encrypt: bool,
    p: &mut CK_GCM_MESSAGE_PARAMS,
    input: &[u8],
    chunk: usize,
) -> Vec<u8> {
    let f = common::raw30().expect("a 3.0 interface");
    let (begin, next) = if encrypt {
        (f.C_EncryptMessageBegin, f.C_EncryptMessageNext)
    } else {
        (f.C_DecryptMessageBegin, f.C_DecryptMessageNext)
    };
    let (begin, next) = (begin.expect("begin"), next.expect("next"));
    let pp = (p as *mut CK_GCM_MESSAGE_PARAMS).cast();
    // SAFETY: the parameter and AAD outlive the call.
    let rv = unsafe {
        begin(
            sh(s),
            pp,
            PLEN,
            AAD.as_ptr() as *mut u8,
            AAD.len() as CK_ULONG,
        )
    };
    assert_ckr!(rv, CKR_OK);
    let mut out = Vec::new();
    for (i, part) in input.chunks(chunk).enumerate() {
        let last = (i + 1) * chunk >= input.len();
        let mut buf = [0u8; 128];
        let mut len = buf.len() as CK_ULONG;
        let flags = if last { CKF_END_OF_MESSAGE } else { 0 };
        // SAFETY: every buffer outlives the call and has the stated length.
        let rv = unsafe {
            next(
                sh(s),
                pp,
                PLEN,
                part.as_ptr() as *mut u8,
                part.len() as CK_ULONG,
                buf.as_mut_ptr(),
                &mut len,
                flags,
            )
        };
        assert_ckr!(rv, CKR_OK);
        out.extend_from_slice(&buf[..len as usize]);
    }
    out
}

#[test]
fn counter_ivs_are_generated_and_ciphertexts_open_in_openssl() {
    if !is_keyward() {
        return; // SoftHSMv2 has no message-based functions
    }
    let s = user_session(common::fresh_token());
    let (k, value) = readable_key(&s);
    let mut m = gcm_mech();
    assert_ckr!(
        call30!(C_MessageEncryptInit, sh(&s), &mut m, k.handle()),
        CKR_OK
    );
    assert_ckr!(
        call30!(C_MessageEncryptInit, sh(&s), &mut m, k.handle()),
        CKR_OPERATION_ACTIVE
    );
    let pt = b"firmware manifest v42".as_slice();
    // A length query consumes no IV.
    let (mut iv, mut tag) = (
        [0xa1u8, 0xa2, 0xa3, 0xa4, 0, 0, 0, 0, 0, 0, 0, 0],
        [0u8; 16],
    );
    let mut p = params(&mut iv, 32, CKG_GENERATE_COUNTER, &mut tag);
    let mut len: CK_ULONG = 0;
    assert_ckr!(
        call30!(
            C_EncryptMessage,
            sh(&s),
            (&mut p as *mut CK_GCM_MESSAGE_PARAMS).cast(),
            PLEN,
            AAD.as_ptr() as *mut u8,
            AAD.len() as CK_ULONG,
            pt.as_ptr() as *mut u8,
            pt.len() as CK_ULONG,
            std::ptr::null_mut(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(
        len as usize,
        pt.len(),
        "the tag is not part of the ciphertext"
    );
    for n in 0u8..3 {
        let (mut iv, mut tag) = (
            [0xa1u8, 0xa2, 0xa3, 0xa4, 9, 9, 9, 9, 9, 9, 9, 9],
            [0u8; 16],
        );
        let mut p = params(&mut iv, 32, CKG_GENERATE_COUNTER, &mut tag);
        let (rv, ct) = encrypt_message(&s, &mut p, pt);
        assert_ckr!(rv, CKR_OK);
        // The fixed field is kept, the counter fills the rest.
        assert_eq!(iv, [0xa1, 0xa2, 0xa3, 0xa4, 0, 0, 0, 0, 0, 0, 0, n]);
        let opened =
            decrypt_aead(Cipher::aes_128_gcm(), &value, Some(&iv), AAD, &ct, &tag).unwrap();
        assert_eq!(opened, pt);
    }
    // Random IVs keep the fixed field and differ.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (mut iv, mut tag) = ([0x77u8; 12], [0u8; 16]);
        let mut p = params(&mut iv, 32, CKG_GENERATE_RANDOM, &mut tag);
        assert_ckr!(encrypt_message(&s, &mut p, pt).0, CKR_OK);
        assert_eq!(iv[..4], [0x77; 4]);
        seen.push(iv);
    }
    assert_ne!(seen[0], seen[1]);
    // A fixed field that leaves no room is refused.
    let (mut iv, mut tag) = ([0u8; 12], [0u8; 16]);
    let mut p = params(&mut iv, 96, CKG_GENERATE_COUNTER, &mut tag);
    assert_ckr!(
        encrypt_message(&s, &mut p, pt).0,
        CKR_MECHANISM_PARAM_INVALID
    );
    assert_ckr!(call30!(C_MessageEncryptFinal, sh(&s)), CKR_OK);
    assert_ckr!(
        call30!(C_MessageEncryptFinal, sh(&s)),
        CKR_OPERATION_NOT_INITIALIZED
    );
}

#[test]
fn messages_in_parts_equal_one_shot_and_decrypt_checks_tags() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let (k, value) = readable_key(&s);
    let iv0 = [3u8; 12];
    let pt: Vec<u8> = (0..100u8).collect();
    let (want, want_tag) = {
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_128_gcm(),
            &value,
            Some(&iv0),
            AAD,
            &pt,
            &mut tag,
        )
        .unwrap();
        (ct, tag)
    };
    let mut m = gcm_mech();
    assert_ckr!(
        call30!(C_MessageEncryptInit, sh(&s), &mut m, k.handle()),
        CKR_OK
    );
    let (mut iv, mut tag) = (iv0, [0u8; 16]);
    let mut p = params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let ct = in_parts(&s, true, &mut p, &pt, 33);
    assert_eq!(ct, want);
    assert_eq!(tag, want_tag);
    // Another message after one in parts.
    let (mut iv, mut tag2) = (iv0, [0u8; 16]);
    let mut p = params(&mut iv, 0, CKG_NO_GENERATE, &mut tag2);
    let (rv, one) = encrypt_message(&s, &mut p, &pt);
    assert_ckr!(rv, CKR_OK);
    assert_eq!((one, tag2), (want.clone(), want_tag));

    // Decryption: the tag comes in the parameter.
    let mut m = gcm_mech();
    assert_ckr!(
        call30!(C_MessageDecryptInit, sh(&s), &mut m, k.handle()),
        CKR_OK
    );
    let (mut iv, mut tag) = (iv0, want_tag);
    let mut p = params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let (rv, back) = decrypt_message(&s, &mut p, &want);
    assert_ckr!(rv, CKR_OK);
    assert_eq!(back, pt);
    let mut bad = want_tag;
    bad[0] ^= 1;
    let (mut iv, mut tag) = (iv0, bad);
    let mut p = params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    assert_ckr!(
        decrypt_message(&s, &mut p, &want).0,
        CKR_ENCRYPTED_DATA_INVALID
    );
    // A failed message leaves the operation: the next message decrypts.
    let (mut iv, mut tag) = (iv0, want_tag);
    let mut p = params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    assert_ckr!(decrypt_message(&s, &mut p, &want).0, CKR_OK);
    // In parts, with the tag checked at the end.
    let (mut iv, mut tag) = (iv0, want_tag);
    let mut p = params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let back = in_parts(&s, false, &mut p, &want, 40);
    assert_eq!(back, pt);
    // C_SessionCancel ends the operation.
    assert_ckr!(
        call30!(C_SessionCancel, sh(&s), CKF_MESSAGE_DECRYPT),
        CKR_OK
    );
    let (mut iv, mut tag) = (iv0, want_tag);
    let mut p = params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    assert_ckr!(
        decrypt_message(&s, &mut p, &want).0,
        CKR_OPERATION_NOT_INITIALIZED
    );
}

#[test]
fn message_init_checks() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let (k, _) = readable_key(&s);
    let (mut iv, mut tag) = ([0u8; 12], [0u8; 16]);
    let mut p = params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    assert_ckr!(
        encrypt_message(&s, &mut p, b"x").0,
        CKR_OPERATION_NOT_INITIALIZED
    );
    // A mechanism without a message-based form.
    let mut iv16 = [0u8; 16];
    let mut cbc = CK_MECHANISM {
        mechanism: CKM_AES_CBC_PAD,
        pParameter: iv16.as_mut_ptr().cast(),
        ulParameterLen: 16,
    };
    assert_ckr!(
        call30!(C_MessageEncryptInit, sh(&s), &mut cbc, k.handle()),
        CKR_MECHANISM_INVALID
    );
    // Usage attributes apply.
    let no_decrypt = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(16.into()), Attribute::Encrypt(true)],
        )
        .unwrap();
    let mut m = gcm_mech();
    assert_ckr!(
        call30!(C_MessageDecryptInit, sh(&s), &mut m, no_decrypt.handle()),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    // C_EncryptInit with GCM still needs its CK_GCM_PARAMS.
    assert_ckr!(
        call!(C_EncryptInit, sh(&s), &mut m, k.handle()),
        CKR_MECHANISM_PARAM_INVALID
    );
}

/// One message through C_EncryptMessage with any per-message structure.
fn encrypt_message_raw<P>(s: &Session, p: &mut P, aad: &[u8], pt: &[u8]) -> (CK_RV, Vec<u8>) {
    let mut out = vec![0u8; pt.len()];
    let mut len = out.len() as CK_ULONG;
    let rv = call30!(
        C_EncryptMessage,
        sh(s),
        (p as *mut P).cast(),
        size_of::<P>() as CK_ULONG,
        aad.as_ptr() as *mut u8,
        aad.len() as CK_ULONG,
        pt.as_ptr() as *mut u8,
        pt.len() as CK_ULONG,
        out.as_mut_ptr(),
        &mut len
    );
    out.truncate(len as usize);
    (rv, out)
}

fn decrypt_message_raw<P>(s: &Session, p: &mut P, aad: &[u8], ct: &[u8]) -> (CK_RV, Vec<u8>) {
    let mut out = vec![0u8; ct.len()];
    let mut len = out.len() as CK_ULONG;
    let rv = call30!(
        C_DecryptMessage,
        sh(s),
        (p as *mut P).cast(),
        size_of::<P>() as CK_ULONG,
        aad.as_ptr() as *mut u8,
        aad.len() as CK_ULONG,
        ct.as_ptr() as *mut u8,
        ct.len() as CK_ULONG,
        out.as_mut_ptr(),
        &mut len
    );
    out.truncate(len as usize);
    (rv, out)
}

#[test]
fn ccm_messages_equal_single_part_ccm() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let (k, _) = readable_key(&s);
    let pt = b"a CCM message for a constrained radio".to_vec();
    let mut nonce = [0x11u8; 12];
    // Single-part CKM_AES_CCM: ciphertext followed by the MAC.
    let mut single = CK_CCM_PARAMS {
        ulDataLen: pt.len() as CK_ULONG,
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        pAAD: AAD.as_ptr() as *mut u8,
        ulAADLen: AAD.len() as CK_ULONG,
        ulMACLen: 8,
    };
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_CCM,
        pParameter: (&mut single as *mut CK_CCM_PARAMS).cast(),
        ulParameterLen: size_of::<CK_CCM_PARAMS>() as CK_ULONG,
    };
    assert_ckr!(call!(C_EncryptInit, sh(&s), &mut m, k.handle()), CKR_OK);
    let mut sealed = vec![0u8; pt.len() + 8];
    let mut len = sealed.len() as CK_ULONG;
    assert_ckr!(
        call!(
            C_Encrypt,
            sh(&s),
            pt.as_ptr() as *mut u8,
            pt.len() as CK_ULONG,
            sealed.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    let (want_ct, want_mac) = sealed.split_at(pt.len());

    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_CCM,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    assert_ckr!(
        call30!(C_MessageEncryptInit, sh(&s), &mut m, k.handle()),
        CKR_OK
    );
    let mut mac = [0u8; 8];
    let mut p = CK_CCM_MESSAGE_PARAMS {
        ulDataLen: pt.len() as CK_ULONG,
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        ulNonceFixedBits: 0,
        nonceGenerator: CKG_NO_GENERATE,
        pMAC: mac.as_mut_ptr(),
        ulMACLen: 8,
    };
    let (rv, ct) = encrypt_message_raw(&s, &mut p, AAD, &pt);
    assert_ckr!(rv, CKR_OK);
    assert_eq!((ct.as_slice(), &mac[..]), (want_ct, want_mac));
    // ulDataLen must be the message's length.
    let mut short = p;
    short.ulDataLen -= 1;
    assert_ckr!(
        encrypt_message_raw(&s, &mut short, AAD, &pt).0,
        CKR_DATA_LEN_RANGE
    );

    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_CCM,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    assert_ckr!(
        call30!(C_MessageDecryptInit, sh(&s), &mut m, k.handle()),
        CKR_OK
    );
    let (rv, back) = decrypt_message_raw(&s, &mut p, AAD, &ct);
    assert_ckr!(rv, CKR_OK);
    assert_eq!(back, pt);
    let mut bad = mac;
    bad[7] ^= 1;
    let mut q = p;
    q.pMAC = bad.as_mut_ptr();
    assert_ckr!(
        decrypt_message_raw(&s, &mut q, AAD, &ct).0,
        CKR_ENCRYPTED_DATA_INVALID
    );
}

#[test]
fn chacha20_poly1305_messages_open_in_openssl() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let key = [0x5eu8; 32];
    // cryptoki has no CKK_CHACHA20: create the key through the raw function list.
    let label = common::unique_label("chacha");
    let (class, key_type, yes) = (CKO_SECRET_KEY, CKK_CHACHA20, CK_TRUE);
    let mut value = key;
    let mut t = [
        attr(CKA_CLASS, &class),
        attr(CKA_KEY_TYPE, &key_type),
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: value.as_mut_ptr().cast(),
            ulValueLen: 32,
        },
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_ptr() as *mut _,
            ulValueLen: label.len() as CK_ULONG,
        },
        attr(CKA_ENCRYPT, &yes),
        attr(CKA_DECRYPT, &yes),
    ];
    let mut h: CK_OBJECT_HANDLE = 0;
    assert_ckr!(
        call!(
            C_CreateObject,
            sh(&s),
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            &mut h
        ),
        CKR_OK
    );
    let k = common::find(&s, &[Attribute::Label(label.clone().into_bytes())])[0];
    let mut m = CK_MECHANISM {
        mechanism: CKM_CHACHA20_POLY1305,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    assert_ckr!(
        call30!(C_MessageEncryptInit, sh(&s), &mut m, k.handle()),
        CKR_OK
    );
    let pt = b"telemetry batch 7".to_vec();
    let (mut nonce, mut tag) = ([0x42u8; 12], [0u8; 16]);
    let mut p = CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS {
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        pTag: tag.as_mut_ptr(),
    };
    let (rv, ct) = encrypt_message_raw(&s, &mut p, AAD, &pt);
    assert_ckr!(rv, CKR_OK);
    let opened = decrypt_aead(
        Cipher::chacha20_poly1305(),
        &key,
        Some(&nonce),
        AAD,
        &ct,
        &tag,
    )
    .unwrap();
    assert_eq!(opened, pt);
    assert_ckr!(
        call30!(C_MessageDecryptInit, sh(&s), &mut m, k.handle()),
        CKR_OK
    );
    let (rv, back) = decrypt_message_raw(&s, &mut p, AAD, &ct);
    assert_ckr!(rv, CKR_OK);
    assert_eq!(back, pt);
}

/// A CK_ATTRIBUTE over a plain value (which must outlive the call).
fn attr<T>(ty: CK_ATTRIBUTE_TYPE, v: &T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: (v as *const T) as *mut _,
        ulValueLen: size_of::<T>() as CK_ULONG,
    }
}
