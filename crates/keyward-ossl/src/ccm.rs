//! AES-CCM (NIST SP 800-38C, RFC 3610): one-shot authenticated encryption with a
//! caller-chosen nonce, AAD and tag length. OpenSSL takes CCM payload and AAD in one call
//! each, so there is no streaming form.

use std::sync::OnceLock;

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use crate::{Error, Result, ctx};

/// Shortest nonce (bytes): leaves an 8-byte length field.
pub const MIN_NONCE_LEN: usize = 7;
/// Longest nonce (bytes): leaves a 2-byte length field.
pub const MAX_NONCE_LEN: usize = 13;
/// Longest payload or AAD accepted, in bytes. OpenSSL takes each in a single call whose
/// length is a C `int` (and the `openssl` crate panics beyond it), so the bound stays below.
pub const MAX_INPUT: usize = 1 << 30;

static CIPHERS: [OnceLock<Cipher>; 3] = [const { OnceLock::new() }; 3];

/// The AES-CCM cipher for a key of `key_len` bytes, fetched once per size.
fn cipher(key_len: usize) -> Result<&'static CipherRef> {
    let (i, name) = match key_len {
        16 => (0, "AES-128-CCM"),
        24 => (1, "AES-192-CCM"),
        32 => (2, "AES-256-CCM"),
        n => return Err(Error(format!("an AES key is 16, 24 or 32 bytes, not {n}"))),
    };
    let cell = &CIPHERS[i];
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let fetched = Cipher::fetch(Some(ctx::libctx()?), name, None)?;
    // A racing thread may have stored its own fetch; both are the same algorithm.
    let _ = cell.set(fetched);
    cell.get()
        .map(|c| &**c)
        .ok_or_else(|| Error("cipher cache is empty after initialisation".into()))
}

/// Whether `tag_len` is a CCM tag length (SP 800-38C §A.1: 4, 6, ..., 16 bytes).
pub fn tag_len_valid(tag_len: usize) -> bool {
    (4..=16).contains(&tag_len) && tag_len.is_multiple_of(2)
}

/// The longest payload a nonce of `nonce_len` bytes allows: the length field has
/// 15 - `nonce_len` bytes (RFC 3610 §2: L), so the payload is below 2^(8L) bytes.
/// Zero for a nonce length outside 7..=13.
pub fn max_data_len(nonce_len: usize) -> u64 {
    if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce_len) {
        return 0;
    }
    let l = 15 - nonce_len;
    if l >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * l)) - 1
    }
}

fn check(key: &[u8], nonce: &[u8], aad: &[u8], tag_len: usize, data_len: usize) -> Result<()> {
    if !matches!(key.len(), 16 | 24 | 32) {
        return Err(Error(format!(
            "an AES key is 16, 24 or 32 bytes, not {}",
            key.len()
        )));
    }
    if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len()) {
        return Err(Error(format!(
            "a CCM nonce is 7 to 13 bytes, not {}",
            nonce.len()
        )));
    }
    if !tag_len_valid(tag_len) {
        return Err(Error(format!("CCM tag of {tag_len} bytes")));
    }
    if aad.len() > MAX_INPUT || data_len > MAX_INPUT {
        return Err(Error("CCM input longer than 1 GiB".into()));
    }
    if data_len as u64 > max_data_len(nonce.len()) {
        return Err(Error(format!(
            "{data_len} bytes do not fit the length field of a {}-byte nonce",
            nonce.len()
        )));
    }
    Ok(())
}

/// A context keyed for one message of `data_len` bytes with `aad` already absorbed. When
/// decrypting, `tag` is the expected tag, checked by the payload update.
fn start(
    encrypt: bool,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    tag: Option<&[u8]>,
    tag_len: usize,
    data_len: usize,
) -> Result<CipherCtx> {
    let c = cipher(key.len())?;
    let mut ctx = CipherCtx::new()?;
    // Nonce and tag lengths go between choosing the cipher and giving key and nonce.
    if encrypt {
        ctx.encrypt_init(Some(c), None, None)?;
    } else {
        ctx.decrypt_init(Some(c), None, None)?;
    }
    ctx.set_iv_length(nonce.len())?;
    match tag {
        Some(t) => ctx.set_tag(t)?,
        None => ctx.set_tag_length(tag_len)?,
    }
    if encrypt {
        ctx.encrypt_init(None, Some(key), Some(nonce))?;
    } else {
        ctx.decrypt_init(None, Some(key), Some(nonce))?;
    }
    // The payload length goes into the first CBC-MAC block, before the AAD.
    ctx.set_data_len(data_len)?;
    if !aad.is_empty() {
        ctx.cipher_update(aad, None)?;
    }
    Ok(ctx)
}

/// Encrypt `plaintext` under `key` (16, 24 or 32 bytes) and `nonce` (7..=13 bytes) with
/// `aad` authenticated; returns ciphertext ‖ tag of `tag_len` bytes (4, 6, ..., 16).
pub fn seal(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    tag_len: usize,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    check(key, nonce, aad, tag_len, plaintext.len())?;
    let mut ctx = start(true, key, nonce, aad, None, tag_len, plaintext.len())?;
    let mut out = vec![0u8; plaintext.len() + tag_len];
    let n = ctx.cipher_update(plaintext, Some(&mut out[..plaintext.len()]))?;
    if n != plaintext.len() {
        return Err(Error("AES-CCM returned a short ciphertext".into()));
    }
    // CCM's final call outputs no data; it is made for symmetry with other modes.
    ctx.cipher_final(&mut [])?;
    ctx.tag(&mut out[plaintext.len()..])?;
    Ok(out)
}

/// Decrypt and authenticate ciphertext ‖ tag; `Ok(None)` when the tag does not match (or
/// `sealed` is shorter than a tag), `Err` for bad lengths and OpenSSL failures.
pub fn open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    tag_len: usize,
    sealed: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if sealed.len() < tag_len {
        return Ok(None);
    }
    let (ct, tag) = sealed.split_at(sealed.len() - tag_len);
    check(key, nonce, aad, tag_len, ct.len())?;
    let mut ctx = start(false, key, nonce, aad, Some(tag), tag_len, ct.len())?;
    let mut out = Zeroizing::new(vec![0u8; ct.len()]);
    // OpenSSL checks the tag within this call; with every length checked above, a failure
    // here is a tag mismatch. It wipes its output in that case; ours is wiped on drop.
    match ctx.cipher_update(ct, Some(&mut out[..])) {
        Ok(n) if n == ct.len() => Ok(Some(out)),
        Ok(_) => Err(Error("AES-CCM returned a short plaintext".into())),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    // RFC 3610 §8, packet vectors #1 and #2: AES-128 key C0..CF, 13-byte nonce, 8 bytes of
    // AAD (the packet header), 8-byte tag.
    const K: &str = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf";

    #[test]
    fn rfc3610_packet_vectors() {
        let pt1 = h("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e");
        let n1 = h("00000003020100a0a1a2a3a4a5");
        let aad = h("0001020304050607");
        let out = seal(&h(K), &n1, &aad, 8, &pt1).unwrap();
        assert_eq!(
            hex::encode(&out),
            "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0"
        );
        assert_eq!(
            &*open(&h(K), &n1, &aad, 8, &out).unwrap().unwrap(),
            &pt1[..]
        );

        let pt2 = h("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let n2 = h("00000004030201a0a1a2a3a4a5");
        let out = seal(&h(K), &n2, &aad, 8, &pt2).unwrap();
        assert_eq!(
            hex::encode(&out),
            "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3ba091d56e10400916"
        );
    }

    // NIST SP 800-38C Appendix C, examples 1 and 2: 7- and 8-byte nonces, 4- and 6-byte tags.
    #[test]
    fn sp800_38c_examples() {
        let k = h("404142434445464748494a4b4c4d4e4f");
        let out = seal(
            &k,
            &h("10111213141516"),
            &h("0001020304050607"),
            4,
            &h("20212223"),
        )
        .unwrap();
        assert_eq!(hex::encode(out), "7162015b4dac255d");
        let out = seal(
            &k,
            &h("1011121314151617"),
            &h("000102030405060708090a0b0c0d0e0f"),
            6,
            &h("202122232425262728292a2b2c2d2e2f"),
        )
        .unwrap();
        assert_eq!(
            hex::encode(out),
            "d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd"
        );
    }

    #[test]
    fn tamper_and_empty_payload() {
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        let sealed = seal(&key, &nonce, b"hdr", 16, b"payload").unwrap();
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert!(open(&key, &nonce, b"hdr", 16, &bad).unwrap().is_none());
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(open(&key, &nonce, b"hdr", 16, &bad).unwrap().is_none());
        assert!(open(&key, &nonce, b"hdx", 16, &sealed).unwrap().is_none());
        assert!(
            open(&key, &nonce, b"hdr", 16, &sealed[..10])
                .unwrap()
                .is_none()
        );
        // No payload: the tag alone authenticates the AAD.
        let tag_only = seal(&key, &nonce, b"only aad", 8, b"").unwrap();
        assert_eq!(tag_only.len(), 8);
        assert_eq!(
            open(&key, &nonce, b"only aad", 8, &tag_only)
                .unwrap()
                .unwrap()
                .len(),
            0
        );
        assert!(
            open(&key, &nonce, b"other", 8, &tag_only)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(seal(&[0u8; 15], &[0u8; 12], b"", 16, b"x").is_err());
        assert!(seal(&[0u8; 16], &[0u8; 6], b"", 16, b"x").is_err());
        assert!(seal(&[0u8; 16], &[0u8; 14], b"", 16, b"x").is_err());
        assert!(seal(&[0u8; 16], &[0u8; 12], b"", 5, b"x").is_err());
        assert!(seal(&[0u8; 16], &[0u8; 12], b"", 18, b"x").is_err());
        // A 13-byte nonce leaves a 2-byte length field: 65535 bytes at most.
        assert_eq!(max_data_len(13), 65535);
        assert_eq!(max_data_len(7), u64::MAX);
        assert!(seal(&[0u8; 16], &[0u8; 13], b"", 16, &vec![0u8; 65536]).is_err());
        assert!(seal(&[0u8; 16], &[0u8; 13], b"", 16, &vec![0u8; 65535]).is_ok());
    }
}
