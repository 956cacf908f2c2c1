//! AES-CCM, ChaCha20-Poly1305 and AES-CTS through the raw C ABI (cryptoki has no types for
//! them): the token encrypts and the openssl crate decrypts and the reverse, known answers
//! (RFC 3610, RFC 8439), multi-part equal to single-part with AEAD decryption releasing
//! nothing before the final, exact error codes, CKM_CHACHA20_KEY_GEN and truthful
//! CK_MECHANISM_INFO.

use std::ptr::null_mut;

use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::cipher::Cipher as FetchedCipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::symm::{Cipher, decrypt_aead};

use crate::common::{self, is_keyward, user_session};
use crate::{assert_ckr, call};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// CK_MECHANISM_INFO of `mech`, or the CK_RV when there is none.
fn mechanism_info(slot: CK_SLOT_ID, mech: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO, CK_RV> {
    let mut info = CK_MECHANISM_INFO::default();
    match call!(C_GetMechanismInfo, slot, mech, &mut info) {
        CKR_OK => Ok(info),
        rv => Err(rv),
    }
}

/// Whether the module under test implements `mech`; Keyward must, another module's suite
/// run skips what it lacks.
fn supported(s: &Session, mech: CK_MECHANISM_TYPE) -> bool {
    let slot = s.get_session_info().unwrap().slot_id();
    let known = mechanism_info(common::slot_id(slot), mech).is_ok();
    assert!(known || !is_keyward(), "Keyward implements {mech:#x}");
    known
}

/// An attribute template owning its values.
struct Template(Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>);

impl Template {
    fn new() -> Template {
        Template(Vec::new())
    }
    fn ulong(mut self, ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Template {
        self.0.push((ty, v.to_ne_bytes().to_vec()));
        self
    }
    fn flag(mut self, ty: CK_ATTRIBUTE_TYPE, v: bool) -> Template {
        self.0.push((ty, vec![CK_BBOOL::from(v)]));
        self
    }
    fn bytes(mut self, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Template {
        self.0.push((ty, v.to_vec()));
        self
    }
    fn raw(&mut self) -> Vec<CK_ATTRIBUTE> {
        self.0
            .iter_mut()
            .map(|(ty, v)| CK_ATTRIBUTE {
                type_: *ty,
                pValue: v.as_mut_ptr().cast(),
                ulValueLen: v.len() as CK_ULONG,
            })
            .collect()
    }
}

/// A session secret key for encryption and decryption with a known value.
fn secret_key(s: &Session, key_type: CK_KEY_TYPE, value: &[u8]) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut t = Template::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, key_type)
        .bytes(CKA_VALUE, value)
        .flag(CKA_ENCRYPT, true)
        .flag(CKA_DECRYPT, true);
    let mut attrs = t.raw();
    let mut key = CK_INVALID_HANDLE;
    match call!(
        C_CreateObject,
        s.handle(),
        attrs.as_mut_ptr(),
        attrs.len() as CK_ULONG,
        &mut key
    ) {
        CKR_OK => Ok(key),
        rv => Err(rv),
    }
}

/// A CK_MECHANISM whose parameter points at `param` (which must outlive its use).
fn mechanism<T>(ty: CK_MECHANISM_TYPE, param: Option<&mut T>) -> CK_MECHANISM {
    match param {
        Some(p) => CK_MECHANISM {
            mechanism: ty,
            pParameter: (p as *mut T).cast(),
            ulParameterLen: size_of::<T>() as CK_ULONG,
        },
        None => CK_MECHANISM {
            mechanism: ty,
            pParameter: null_mut(),
            ulParameterLen: 0,
        },
    }
}

fn init(s: &Session, encrypt: bool, m: &mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    if encrypt {
        call!(C_EncryptInit, s.handle(), m, key)
    } else {
        call!(C_DecryptInit, s.handle(), m, key)
    }
}

/// C_Encrypt / C_Decrypt after a length query.
fn single(s: &Session, encrypt: bool, input: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let f = if encrypt {
        common::raw().C_Encrypt
    } else {
        common::raw().C_Decrypt
    }
    .unwrap();
    let inp = input.as_ptr().cast_mut();
    let n = input.len() as CK_ULONG;
    let mut len: CK_ULONG = 0;
    // SAFETY: the input is readable for `n` bytes; a NULL output asks for the length.
    let rv = unsafe { f(s.handle(), inp, n, null_mut(), &mut len) };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; usize::try_from(len).unwrap()];
    // SAFETY: the output buffer holds `len` bytes.
    let rv = unsafe { f(s.handle(), inp, n, out.as_mut_ptr(), &mut len) };
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(usize::try_from(len).unwrap());
    Ok(out)
}

/// One C_*Update after a length query.
fn update(s: &Session, encrypt: bool, part: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let f = if encrypt {
        common::raw().C_EncryptUpdate
    } else {
        common::raw().C_DecryptUpdate
    }
    .unwrap();
    let inp = part.as_ptr().cast_mut();
    let n = part.len() as CK_ULONG;
    let mut len: CK_ULONG = 0;
    // SAFETY: as in `single`.
    let rv = unsafe { f(s.handle(), inp, n, null_mut(), &mut len) };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; usize::try_from(len).unwrap()];
    // SAFETY: the output buffer holds `len` bytes.
    let rv = unsafe { f(s.handle(), inp, n, out.as_mut_ptr(), &mut len) };
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(usize::try_from(len).unwrap());
    Ok(out)
}

/// C_*Final after a length query.
fn finish(s: &Session, encrypt: bool) -> Result<Vec<u8>, CK_RV> {
    let f = if encrypt {
        common::raw().C_EncryptFinal
    } else {
        common::raw().C_DecryptFinal
    }
    .unwrap();
    let mut len: CK_ULONG = 0;
    // SAFETY: a NULL output asks for the length.
    let rv = unsafe { f(s.handle(), null_mut(), &mut len) };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; usize::try_from(len).unwrap()];
    // SAFETY: the output buffer holds `len` bytes.
    let rv = unsafe { f(s.handle(), out.as_mut_ptr(), &mut len) };
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(usize::try_from(len).unwrap());
    Ok(out)
}

/// A whole single-part operation.
fn one_shot(
    s: &Session,
    encrypt: bool,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    input: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    match init(s, encrypt, m, key) {
        CKR_OK => single(s, encrypt, input),
        rv => Err(rv),
    }
}

/// A whole multi-part operation over `input` cut at `cuts`; `quiet` asserts that the updates
/// output nothing (AEAD decryption).
fn parts(
    s: &Session,
    encrypt: bool,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    input: &[u8],
    cuts: &[usize],
    quiet: bool,
) -> Result<Vec<u8>, CK_RV> {
    let rv = init(s, encrypt, m, key);
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&input.len())) {
        let o = update(s, encrypt, &input[from..to])?;
        assert!(!quiet || o.is_empty(), "no output before the final");
        out.extend(o);
        from = to;
    }
    out.extend(finish(s, encrypt)?);
    Ok(out)
}

#[test]
fn mechanism_info_of_ccm_cts_and_chacha20() {
    let id = common::slot_id(common::fresh_token());
    // Raw, because cryptoki leaves out the types it has no names for.
    let mut n: CK_ULONG = 0;
    assert_ckr!(call!(C_GetMechanismList, id, null_mut(), &mut n), CKR_OK);
    let mut listed: Vec<CK_MECHANISM_TYPE> = vec![0; usize::try_from(n).unwrap()];
    assert_ckr!(
        call!(C_GetMechanismList, id, listed.as_mut_ptr(), &mut n),
        CKR_OK
    );
    listed.truncate(usize::try_from(n).unwrap());
    const AEAD: CK_FLAGS = CKF_ENCRYPT
        | CKF_DECRYPT
        | CKF_WRAP
        | CKF_UNWRAP
        | CKF_MESSAGE_ENCRYPT
        | CKF_MESSAGE_DECRYPT;
    let wanted = [
        (CKM_AES_CCM, 16, 32, AEAD),
        (CKM_AES_CTS, 16, 32, CKF_ENCRYPT | CKF_DECRYPT),
        (CKM_CHACHA20_POLY1305, 32, 32, AEAD),
        (CKM_CHACHA20_KEY_GEN, 32, 32, CKF_GENERATE),
    ];
    for (mech, min, max, flags) in wanted {
        let Ok(info) = mechanism_info(id, mech) else {
            assert!(!is_keyward(), "Keyward implements {mech:#x}");
            continue;
        };
        assert!(listed.contains(&mech), "{mech:#x} is in the mechanism list");
        // Other tokens need not offer wrapping or the message-based functions.
        let base = flags & (CKF_ENCRYPT | CKF_DECRYPT | CKF_GENERATE);
        assert_eq!(info.flags & base, base, "{mech:#x}");
        if is_keyward() {
            assert_eq!(info.flags, flags, "{mech:#x}: exactly these functions");
            assert_eq!(
                (info.ulMinKeySize, info.ulMaxKeySize),
                (min, max),
                "{mech:#x}"
            );
        }
    }
}

fn ccm_params(data_len: usize, nonce: &mut [u8], aad: &mut [u8], mac_len: usize) -> CK_CCM_PARAMS {
    CK_CCM_PARAMS {
        ulDataLen: data_len as CK_ULONG,
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: nonce.len() as CK_ULONG,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: aad.len() as CK_ULONG,
        ulMACLen: mac_len as CK_ULONG,
    }
}

/// AES-256-CCM with openssl's cipher context in the default library context (openssl::symm
/// orders the CCM length settings in a way OpenSSL 3 refuses): ciphertext ‖ tag when
/// encrypting, `None` when a decryption's tag does not match.
fn openssl_ccm(
    encrypt: bool,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    tag_len: usize,
    input: &[u8],
) -> Option<Vec<u8>> {
    let c = FetchedCipher::fetch(None, "AES-256-CCM", None).unwrap();
    let mut ctx = CipherCtx::new().unwrap();
    let data = if encrypt {
        ctx.encrypt_init(Some(&c), None, None).unwrap();
        ctx.set_iv_length(nonce.len()).unwrap();
        ctx.set_tag_length(tag_len).unwrap();
        ctx.encrypt_init(None, Some(key), Some(nonce)).unwrap();
        input
    } else {
        let (body, tag) = input.split_at(input.len() - tag_len);
        ctx.decrypt_init(Some(&c), None, None).unwrap();
        ctx.set_iv_length(nonce.len()).unwrap();
        ctx.set_tag(tag).unwrap();
        ctx.decrypt_init(None, Some(key), Some(nonce)).unwrap();
        body
    };
    ctx.set_data_len(data.len()).unwrap();
    ctx.cipher_update(aad, None).unwrap();
    let mut out = vec![0u8; data.len()];
    ctx.cipher_update(data, Some(&mut out)).ok()?;
    if encrypt {
        ctx.cipher_final(&mut []).unwrap();
        let mut tag = vec![0u8; tag_len];
        ctx.tag(&mut tag).unwrap();
        out.extend(tag);
    }
    Some(out)
}

#[test]
fn aes_ccm_matches_rfc3610_and_openssl() {
    let s = user_session(common::fresh_token());
    if !supported(&s, CKM_AES_CCM) {
        return;
    }
    // RFC 3610 §8, packet vector #1 (AES-128, 13-byte nonce, 8-byte header, M = 8).
    let k128 = secret_key(&s, CKK_AES, &h("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")).unwrap();
    let mut nonce = h("00000003020100a0a1a2a3a4a5");
    let mut aad = h("0001020304050607");
    let pt = h("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e");
    let mut p = ccm_params(pt.len(), &mut nonce, &mut aad, 8);
    let mut m = mechanism(CKM_AES_CCM, Some(&mut p));
    assert_eq!(
        hex::encode(one_shot(&s, true, &mut m, k128, &pt).unwrap()),
        "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0"
    );

    // AES-256 with a 12-byte nonce and a 16-byte tag, against openssl in both directions.
    let raw: Vec<u8> = (0u8..32).collect();
    let key = secret_key(&s, CKK_AES, &raw).unwrap();
    let mut nonce = h("cafebabefacedbaddecaf888");
    let mut aad = b"associated data".to_vec();
    let pt: Vec<u8> = (0..100u8).collect();
    let mut p = ccm_params(pt.len(), &mut nonce, &mut aad, 16);
    let mut m = mechanism(CKM_AES_CCM, Some(&mut p));
    let ct = one_shot(&s, true, &mut m, key, &pt).unwrap();
    assert_eq!(ct.len(), pt.len() + 16);
    let opened = openssl_ccm(false, &raw, &nonce, &aad, 16, &ct)
        .expect("openssl opens the token's CCM ciphertext");
    assert_eq!(opened, pt);
    let sealed = openssl_ccm(true, &raw, &nonce, &aad, 16, &pt).unwrap();
    assert_eq!(sealed, ct, "same key, nonce and AAD give the same bytes");
    assert_eq!(one_shot(&s, false, &mut m, key, &sealed).unwrap(), pt);

    // Multi-part: the same bytes, all in the final; decryption releases nothing early.
    for cuts in [&[][..], &[1], &[50, 99], &[16, 32, 48]] {
        assert_eq!(
            parts(&s, true, &mut m, key, &pt, cuts, true).unwrap(),
            ct,
            "{cuts:?}"
        );
        assert_eq!(
            parts(&s, false, &mut m, key, &ct, cuts, true).unwrap(),
            pt,
            "{cuts:?}"
        );
    }
    // A changed tag or ciphertext byte: CKR_ENCRYPTED_DATA_INVALID, single- or multi-part.
    for i in [0usize, 99, 100, 115] {
        let mut bad = ct.clone();
        bad[i] ^= 0x20;
        assert_eq!(
            one_shot(&s, false, &mut m, key, &bad),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        assert_eq!(
            parts(&s, false, &mut m, key, &bad, &[60], true),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
    }
    // ulDataLen is exact.
    assert_eq!(
        one_shot(&s, true, &mut m, key, &pt[..99]),
        Err(CKR_DATA_LEN_RANGE)
    );
    assert_eq!(
        one_shot(&s, false, &mut m, key, &ct[..115]),
        Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
    );
    // Nonce and MAC lengths outside the spec's sets.
    let mut short_nonce = [0u8; 6];
    let mut p = ccm_params(pt.len(), &mut short_nonce, &mut aad, 16);
    let mut m = mechanism(CKM_AES_CCM, Some(&mut p));
    assert_ckr!(init(&s, true, &mut m, key), CKR_MECHANISM_PARAM_INVALID);
    let mut p = ccm_params(pt.len(), &mut nonce, &mut aad, 5);
    let mut m = mechanism(CKM_AES_CCM, Some(&mut p));
    assert_ckr!(init(&s, false, &mut m, key), CKR_MECHANISM_PARAM_INVALID);
}

fn chacha_params(nonce: &mut [u8], aad: &mut [u8]) -> CK_SALSA20_CHACHA20_POLY1305_PARAMS {
    CK_SALSA20_CHACHA20_POLY1305_PARAMS {
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: nonce.len() as CK_ULONG,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: aad.len() as CK_ULONG,
    }
}

#[test]
fn chacha20_poly1305_matches_rfc8439_and_openssl() {
    let s = user_session(common::fresh_token());
    if !supported(&s, CKM_CHACHA20_POLY1305) {
        return;
    }
    // RFC 8439 §2.8.2.
    let raw = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    let key = secret_key(&s, CKK_CHACHA20, &raw).unwrap();
    let mut nonce = h("070000004041424344454647");
    let mut aad = h("50515253c0c1c2c3c4c5c6c7");
    let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let mut p = chacha_params(&mut nonce, &mut aad);
    let mut m = mechanism(CKM_CHACHA20_POLY1305, Some(&mut p));
    let ct = one_shot(&s, true, &mut m, key, pt).unwrap();
    assert_eq!(
        hex::encode(&ct),
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116\
         1ae10b594f09e26a7e902ecbd0600691"
    );
    let (body, tag) = ct.split_at(pt.len());
    let opened = decrypt_aead(
        Cipher::chacha20_poly1305(),
        &raw,
        Some(&nonce),
        &aad,
        body,
        tag,
    )
    .expect("openssl opens the token's ciphertext");
    assert_eq!(opened, pt);
    assert_eq!(one_shot(&s, false, &mut m, key, &ct).unwrap(), pt);
    for cuts in [&[][..], &[1], &[64, 65], &[100, 113]] {
        assert_eq!(
            parts(&s, true, &mut m, key, pt, cuts, false).unwrap(),
            ct,
            "{cuts:?}"
        );
    }
    // Decryption cut inside the tag and just before it.
    for cuts in [&[][..], &[1], &[64, 65], &[114, 120], &[113, 129]] {
        assert_eq!(
            parts(&s, false, &mut m, key, &ct, cuts, true).unwrap(),
            pt,
            "{cuts:?}"
        );
    }
    let mut bad = ct.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(
        one_shot(&s, false, &mut m, key, &bad),
        Err(CKR_ENCRYPTED_DATA_INVALID)
    );
    assert_eq!(
        parts(&s, false, &mut m, key, &bad, &[30], true),
        Err(CKR_ENCRYPTED_DATA_INVALID)
    );
    // An AES key does not fit the mechanism.
    let aes = secret_key(&s, CKK_AES, &[1u8; 32]).unwrap();
    assert_ckr!(init(&s, true, &mut m, aes), CKR_KEY_TYPE_INCONSISTENT);
    if is_keyward() {
        // Only RFC 8439's 96-bit nonce.
        let mut n8 = [0u8; 8];
        let mut p = chacha_params(&mut n8, &mut aad);
        let mut m = mechanism(CKM_CHACHA20_POLY1305, Some(&mut p));
        assert_ckr!(init(&s, true, &mut m, key), CKR_MECHANISM_PARAM_INVALID);
        // A ChaCha20 key is 32 bytes.
        assert_eq!(
            secret_key(&s, CKK_CHACHA20, &[0u8; 16]),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
    }
}

fn read_attr(s: &Session, obj: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut t = CK_ATTRIBUTE {
        type_: ty,
        pValue: buf.as_mut_ptr().cast(),
        ulValueLen: buf.len() as CK_ULONG,
    };
    assert_ckr!(
        call!(C_GetAttributeValue, s.handle(), obj, &mut t, 1),
        CKR_OK
    );
    buf[..usize::try_from(t.ulValueLen).unwrap()].to_vec()
}

#[test]
fn chacha20_key_generation() {
    let s = user_session(common::fresh_token());
    if !supported(&s, CKM_CHACHA20_KEY_GEN) {
        return;
    }
    let generate = |t: Template| -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut t = t;
        let mut attrs = t.raw();
        let mut m = mechanism::<u8>(CKM_CHACHA20_KEY_GEN, None);
        let mut key = CK_INVALID_HANDLE;
        match call!(
            C_GenerateKey,
            s.handle(),
            &mut m,
            attrs.as_mut_ptr(),
            attrs.len() as CK_ULONG,
            &mut key
        ) {
            CKR_OK => Ok(key),
            rv => Err(rv),
        }
    };
    let base = || {
        Template::new()
            .flag(CKA_ENCRYPT, true)
            .flag(CKA_DECRYPT, true)
    };
    let key = generate(base()).unwrap();
    assert_eq!(read_attr(&s, key, CKA_KEY_TYPE), CKK_CHACHA20.to_ne_bytes());
    assert_eq!(read_attr(&s, key, CKA_VALUE_LEN), CK_ULONG::to_ne_bytes(32));
    assert_eq!(read_attr(&s, key, CKA_CLASS), CKO_SECRET_KEY.to_ne_bytes());
    let stated = generate(base().ulong(CKA_VALUE_LEN, 32)).unwrap();
    if is_keyward() {
        assert_eq!(
            generate(base().ulong(CKA_VALUE_LEN, 16)),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            generate(base().ulong(CKA_KEY_TYPE, CKK_AES)),
            Err(CKR_TEMPLATE_INCONSISTENT)
        );
    }
    // Both keys encrypt, and differ.
    let mut nonce = [3u8; 12];
    let mut aad = [];
    let mut p = chacha_params(&mut nonce, &mut aad);
    let mut m = mechanism(CKM_CHACHA20_POLY1305, Some(&mut p));
    let a = one_shot(&s, true, &mut m, key, b"generated key").unwrap();
    let b = one_shot(&s, true, &mut m, stated, b"generated key").unwrap();
    assert_ne!(a, b);
    assert_eq!(
        one_shot(&s, false, &mut m, key, &a).unwrap(),
        b"generated key"
    );
}

/// OpenSSL's CBC-CTS in one call (default variant: CS1).
fn openssl_cts(encrypt: bool, key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
    let c = FetchedCipher::fetch(None, "AES-256-CBC-CTS", None).unwrap();
    let mut ctx = CipherCtx::new().unwrap();
    if encrypt {
        ctx.encrypt_init(Some(&c), Some(key), Some(iv)).unwrap();
    } else {
        ctx.decrypt_init(Some(&c), Some(key), Some(iv)).unwrap();
    }
    let mut out = Vec::new();
    ctx.cipher_update_vec(data, &mut out).unwrap();
    ctx.cipher_final_vec(&mut out).unwrap();
    out
}

#[test]
fn aes_cts_matches_openssl_cs1() {
    let s = user_session(common::fresh_token());
    if !supported(&s, CKM_AES_CTS) {
        return;
    }
    let raw: Vec<u8> = (0u8..32).map(|b| b ^ 0x5a).collect();
    let key = secret_key(&s, CKK_AES, &raw).unwrap();
    let mut iv: Vec<u8> = (0u8..16).collect();
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_CTS,
        pParameter: iv.as_mut_ptr().cast(),
        ulParameterLen: 16,
    };
    for len in [16usize, 17, 31, 32, 33, 47, 48, 64, 65, 100] {
        let pt: Vec<u8> = (0..len).map(|i| (i * 3) as u8).collect();
        let ct = one_shot(&s, true, &mut m, key, &pt).unwrap();
        assert_eq!(ct.len(), len);
        assert_eq!(openssl_cts(false, &raw, &iv, &ct), pt, "{len}");
        assert_eq!(ct, openssl_cts(true, &raw, &iv, &pt), "{len}");
        assert_eq!(one_shot(&s, false, &mut m, key, &ct).unwrap(), pt);
        let cuts: Vec<usize> = [1, 17, 40].into_iter().filter(|c| *c < len).collect();
        assert_eq!(parts(&s, true, &mut m, key, &pt, &cuts, false).unwrap(), ct);
        assert_eq!(
            parts(&s, false, &mut m, key, &ct, &cuts, false).unwrap(),
            pt
        );
    }
    assert_eq!(
        one_shot(&s, true, &mut m, key, &[0u8; 15]),
        Err(CKR_DATA_LEN_RANGE)
    );
    assert_eq!(
        one_shot(&s, false, &mut m, key, &[0u8; 15]),
        Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
    );
    let mut short_iv = [0u8; 8];
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_CTS,
        pParameter: short_iv.as_mut_ptr().cast(),
        ulParameterLen: 8,
    };
    assert_ckr!(init(&s, true, &mut m, key), CKR_MECHANISM_PARAM_INVALID);
}
