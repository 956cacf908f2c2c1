//! AES key wrap: RFC 3394 (SP 800-38F KW) and RFC 5649 (SP 800-38F KWP), one-shot, over
//! OpenSSL's "AES-xxx-WRAP" and "AES-xxx-WRAP-PAD" ciphers fetched once from the private
//! context.

use std::sync::OnceLock;

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use crate::{Error, Result, ctx};

/// A key-wrap algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapAlg {
    /// RFC 3394: input a multiple of 8 bytes, at least 16; 8-byte IV (default A6A6A6A6A6A6A6A6).
    Kw,
    /// RFC 5649: input of any length from 1 byte; 4-byte IV (default A65959A6).
    Kwp,
}

/// The largest input either algorithm takes here. RFC 5649 stops at 2^32 - 1 bytes, and
/// OpenSSL at 2^31 for RFC 3394; key wrapping never comes close.
pub const MAX_INPUT: usize = 1 << 30;

impl WrapAlg {
    /// Length of the algorithm's IV (its integrity check value).
    pub const fn iv_len(self) -> usize {
        match self {
            WrapAlg::Kw => 8,
            WrapAlg::Kwp => 4,
        }
    }

    /// Whether `len` bytes can be wrapped.
    pub fn wrap_input_ok(self, len: usize) -> bool {
        match self {
            WrapAlg::Kw => len >= 16 && len.is_multiple_of(8) && len <= MAX_INPUT,
            WrapAlg::Kwp => (1..=MAX_INPUT).contains(&len),
        }
    }

    /// The exact length of the wrap of `len` bytes.
    pub fn wrapped_len(self, len: usize) -> usize {
        match self {
            WrapAlg::Kw => len.saturating_add(8),
            WrapAlg::Kwp => len.div_ceil(8).saturating_mul(8).saturating_add(8),
        }
    }

    /// Whether `len` bytes can be a wrap made by this algorithm.
    pub fn unwrap_input_ok(self, len: usize) -> bool {
        let min = match self {
            WrapAlg::Kw => 24,
            WrapAlg::Kwp => 16,
        };
        len >= min && len.is_multiple_of(8) && len <= MAX_INPUT + 8
    }

    fn row(self) -> usize {
        match self {
            WrapAlg::Kw => 0,
            WrapAlg::Kwp => 1,
        }
    }
}

const NAMES: [[&str; 3]; 2] = [
    ["AES-128-WRAP", "AES-192-WRAP", "AES-256-WRAP"],
    ["AES-128-WRAP-PAD", "AES-192-WRAP-PAD", "AES-256-WRAP-PAD"],
];

static CIPHERS: [[OnceLock<Cipher>; 3]; 2] = [const { [const { OnceLock::new() }; 3] }; 2];

fn cipher(alg: WrapAlg, key_len: usize) -> Result<&'static CipherRef> {
    let col = match key_len {
        16 => 0,
        24 => 1,
        32 => 2,
        n => return Err(Error(format!("an AES key is 16, 24 or 32 bytes, not {n}"))),
    };
    let cell = &CIPHERS[alg.row()][col];
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let fetched = Cipher::fetch(Some(ctx::libctx()?), NAMES[alg.row()][col], None)?;
    // A racing thread may have stored its own fetch; both are the same algorithm.
    let _ = cell.set(fetched);
    cell.get()
        .map(|c| &**c)
        .ok_or_else(|| Error("cipher cache is empty after initialisation".into()))
}

fn context(alg: WrapAlg, encrypt: bool, key: &[u8], iv: Option<&[u8]>) -> Result<CipherCtx> {
    if let Some(v) = iv
        && v.len() != alg.iv_len()
    {
        return Err(Error(format!(
            "the {alg:?} IV is {} bytes, not {}",
            alg.iv_len(),
            v.len()
        )));
    }
    let c = cipher(alg, key.len())?;
    let mut ctx = CipherCtx::new()?;
    // No IV selects the algorithm's default one.
    if encrypt {
        ctx.encrypt_init(Some(c), Some(key), iv)?;
    } else {
        ctx.decrypt_init(Some(c), Some(key), iv)?;
    }
    Ok(ctx)
}

/// Wrap `input` under the AES key `key` (16, 24 or 32 bytes) with `iv`, or the algorithm's
/// default IV when `None`. The input length must satisfy [`WrapAlg::wrap_input_ok`].
pub fn wrap(alg: WrapAlg, key: &[u8], iv: Option<&[u8]>, input: &[u8]) -> Result<Vec<u8>> {
    if !alg.wrap_input_ok(input.len()) {
        return Err(Error(format!("{alg:?} cannot wrap {} bytes", input.len())));
    }
    let mut ctx = context(alg, true, key, iv)?;
    // The wrap ciphers produce their whole output in one update and nothing at final.
    let mut out = vec![0u8; alg.wrapped_len(input.len())];
    let n = ctx.cipher_update(input, Some(&mut out))?;
    if n != out.len() {
        return Err(Error(format!("{alg:?} wrote {n} bytes, not {}", out.len())));
    }
    Ok(out)
}

/// Unwrap `input` under `key` with `iv` (or the default IV). `Ok(None)` when the input does
/// not authenticate under this key and IV (for RFC 5649 also: its length indicator or padding
/// is wrong); an input length that no wrap can have is an error.
pub fn unwrap(
    alg: WrapAlg,
    key: &[u8],
    iv: Option<&[u8]>,
    input: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if !alg.unwrap_input_ok(input.len()) {
        return Err(Error(format!(
            "{} bytes cannot be an {alg:?} wrap",
            input.len()
        )));
    }
    let mut ctx = context(alg, false, key, iv)?;
    // Room for the output bound OpenSSL checks against (the input length).
    let mut out = Zeroizing::new(vec![0u8; input.len()]);
    match ctx.cipher_update(input, Some(&mut out)) {
        Ok(n) if n <= input.len() - 8 => {
            out.truncate(n);
            Ok(Some(out))
        }
        Ok(n) => Err(Error(format!("{alg:?} unwrap produced {n} bytes"))),
        // With the key, IV and length checked, the only failure left is integrity.
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const KEK128: &str = "000102030405060708090A0B0C0D0E0F";
    const KEK192: &str = "000102030405060708090A0B0C0D0E0F1011121314151617";
    const KEK256: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
    const DATA: &str = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F";

    /// RFC 3394 §4.1–4.6: (KEK, key data, wrapped).
    const RFC3394: [(&str, usize, &str); 6] = [
        (
            KEK128,
            16,
            "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
        ),
        (
            KEK192,
            16,
            "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D",
        ),
        (
            KEK256,
            16,
            "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7",
        ),
        (
            KEK192,
            24,
            "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2",
        ),
        (
            KEK256,
            24,
            "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1",
        ),
        (
            KEK256,
            32,
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
        ),
    ];

    #[test]
    fn rfc3394_section4_vectors() {
        for (kek, len, wrapped) in RFC3394 {
            let data = &h(DATA)[..len];
            assert_eq!(wrap(WrapAlg::Kw, &h(kek), None, data).unwrap(), h(wrapped));
            // The default IV given explicitly is the same thing.
            let iv = h("A6A6A6A6A6A6A6A6");
            assert_eq!(
                wrap(WrapAlg::Kw, &h(kek), Some(&iv), data).unwrap(),
                h(wrapped)
            );
            let back = unwrap(WrapAlg::Kw, &h(kek), None, &h(wrapped))
                .unwrap()
                .unwrap();
            assert_eq!(back.as_slice(), data);
        }
    }

    #[test]
    fn rfc5649_section6_vectors() {
        let kek = h("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        for (key, wrapped) in [
            (
                "c37b7e6492584340bed12207808941155068f738",
                "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
            ),
            ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
        ] {
            assert_eq!(wrap(WrapAlg::Kwp, &kek, None, &h(key)).unwrap(), h(wrapped));
            assert_eq!(WrapAlg::Kwp.wrapped_len(h(key).len()), h(wrapped).len());
            let back = unwrap(WrapAlg::Kwp, &kek, None, &h(wrapped))
                .unwrap()
                .unwrap();
            assert_eq!(back.as_slice(), h(key).as_slice());
        }
    }

    #[test]
    fn tampering_key_and_iv_mismatch_do_not_authenticate() {
        let (kek, _, wrapped) = RFC3394[5];
        for i in [0, 7, 8, 39] {
            let mut bad = h(wrapped);
            bad[i] ^= 1;
            assert!(unwrap(WrapAlg::Kw, &h(kek), None, &bad).unwrap().is_none());
        }
        let other_iv = [0x5au8; 8];
        assert!(
            unwrap(WrapAlg::Kw, &h(kek), Some(&other_iv), &h(wrapped))
                .unwrap()
                .is_none()
        );
        let kek5649 = h("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        let mut bad = h("afbeb0f07dfbf5419200f2ccb50bb24f");
        bad[15] ^= 0x80;
        assert!(
            unwrap(WrapAlg::Kwp, &kek5649, None, &bad)
                .unwrap()
                .is_none()
        );
        // A wrap with a custom IV only opens with that IV.
        let iv = [1u8, 2, 3, 4];
        let w = wrap(WrapAlg::Kwp, &kek5649, Some(&iv), b"seven b").unwrap();
        assert!(unwrap(WrapAlg::Kwp, &kek5649, None, &w).unwrap().is_none());
        assert_eq!(
            unwrap(WrapAlg::Kwp, &kek5649, Some(&iv), &w)
                .unwrap()
                .unwrap()
                .as_slice(),
            b"seven b"
        );
    }

    #[test]
    fn lengths_outside_the_algorithms_are_errors() {
        let kek = h(KEK128);
        assert!(wrap(WrapAlg::Kw, &kek, None, &[0u8; 8]).is_err());
        assert!(wrap(WrapAlg::Kw, &kek, None, &[0u8; 17]).is_err());
        assert!(wrap(WrapAlg::Kwp, &kek, None, &[]).is_err());
        assert!(unwrap(WrapAlg::Kw, &kek, None, &[0u8; 16]).is_err());
        assert!(unwrap(WrapAlg::Kw, &kek, None, &[0u8; 25]).is_err());
        assert!(unwrap(WrapAlg::Kwp, &kek, None, &[0u8; 8]).is_err());
        assert!(wrap(WrapAlg::Kw, &kek, Some(&[0u8; 4]), &[0u8; 16]).is_err());
        assert!(wrap(WrapAlg::Kwp, &kek, Some(&[0u8; 8]), &[0u8; 16]).is_err());
        assert!(wrap(WrapAlg::Kw, &[0u8; 20], None, &[0u8; 16]).is_err());
        for len in 1..=40 {
            let w = wrap(WrapAlg::Kwp, &kek, None, &vec![7u8; len]).unwrap();
            assert_eq!(w.len(), WrapAlg::Kwp.wrapped_len(len));
        }
    }
}
