//! AES-256-GCM sealing for the token store (128-bit tags, 96-bit nonces).

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use crate::{Error, Result, ctx};

/// GCM tag length used for sealing.
pub const TAG_LEN: usize = 16;

fn aes256_gcm() -> Result<Cipher> {
    Ok(Cipher::fetch(Some(ctx::libctx()?), "AES-256-GCM", None)?)
}

/// Encrypt `plaintext` under `key` and `nonce` with `aad` authenticated; returns
/// ciphertext ‖ 16-byte tag.
pub fn aes256_gcm_seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let cipher = aes256_gcm()?;
    let mut c = CipherCtx::new()?;
    c.encrypt_init(Some(&cipher), Some(key), Some(nonce))?;
    c.cipher_update(aad, None)?;
    let mut out = vec![0u8; plaintext.len() + cipher.block_size()];
    let n = c.cipher_update(plaintext, Some(&mut out))?;
    let m = c.cipher_final(&mut out[n..])?;
    out.truncate(n + m);
    let mut tag = [0u8; TAG_LEN];
    c.tag(&mut tag)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypt and authenticate `sealed` (ciphertext ‖ tag); any change to key, nonce, aad or
/// sealed bytes is an error.
pub fn aes256_gcm_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < TAG_LEN {
        return Err(Error("sealed value shorter than its tag".into()));
    }
    let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let cipher = aes256_gcm()?;
    let mut c = CipherCtx::new()?;
    c.decrypt_init(Some(&cipher), Some(key), Some(nonce))?;
    c.set_tag(tag)?;
    c.cipher_update(aad, None)?;
    let mut out = Zeroizing::new(vec![0u8; ct.len() + cipher.block_size()]);
    let n = c.cipher_update(ct, Some(&mut out))?;
    let m = c
        .cipher_final(&mut out[n..])
        .map_err(|_| Error("authentication failed: sealed value was modified or moved".into()))?;
    out.truncate(n + m);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        let sealed = aes256_gcm_seal(&key, &nonce, b"aad", b"secret").unwrap();
        assert_eq!(sealed.len(), 6 + TAG_LEN);
        assert_eq!(
            &aes256_gcm_open(&key, &nonce, b"aad", &sealed).unwrap()[..],
            b"secret"
        );
        assert!(aes256_gcm_open(&key, &nonce, b"other", &sealed).is_err());
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert!(aes256_gcm_open(&key, &nonce, b"aad", &bad).is_err());
    }

    #[test]
    fn matches_nist_gcm_vector() {
        // NIST GCM test case 14 (AES-256, zero key, zero IV, one zero block).
        let key = [0u8; 32];
        let nonce = [0u8; 12];
        let sealed = aes256_gcm_seal(&key, &nonce, b"", &[0u8; 16]).unwrap();
        assert_eq!(
            hex::encode(sealed),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
    }
}
