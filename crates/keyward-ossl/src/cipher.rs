//! AES in ECB, CBC (with or without PKCS#7 padding) and CTR mode, streaming, each cipher
//! fetched once from the private context.

use std::sync::OnceLock;

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;

use crate::{Error, Result, ctx};

/// AES block size in bytes.
pub const BLOCK: usize = 16;

// The `openssl` crate converts lengths to `c_int` with a panic on overflow; feeding at most
// this much per call keeps any input length safe.
const CHUNK: usize = 1 << 30;

/// An AES mode of operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AesMode {
    /// Electronic codebook, no padding.
    Ecb,
    /// Cipher block chaining, no padding.
    Cbc,
    /// Cipher block chaining with PKCS#7 padding.
    CbcPad,
    /// Counter mode over a full 128-bit counter block.
    Ctr,
}

impl AesMode {
    fn row(self) -> usize {
        match self {
            AesMode::Ecb => 0,
            AesMode::Cbc | AesMode::CbcPad => 1,
            AesMode::Ctr => 2,
        }
    }

    /// Whether the mode takes a 16-byte IV (or counter block).
    pub fn needs_iv(self) -> bool {
        self != AesMode::Ecb
    }

    /// Whether the mode works on whole blocks (everything but CTR).
    pub fn is_block(self) -> bool {
        self != AesMode::Ctr
    }
}

const NAMES: [[&str; 3]; 3] = [
    ["AES-128-ECB", "AES-192-ECB", "AES-256-ECB"],
    ["AES-128-CBC", "AES-192-CBC", "AES-256-CBC"],
    ["AES-128-CTR", "AES-192-CTR", "AES-256-CTR"],
];

static CIPHERS: [[OnceLock<Cipher>; 3]; 3] = [const { [const { OnceLock::new() }; 3] }; 3];

/// The cipher for `mode` and a key of `key_len` bytes, fetched on first use and kept.
fn cipher(mode: AesMode, key_len: usize) -> Result<&'static CipherRef> {
    let col = match key_len {
        16 => 0,
        24 => 1,
        32 => 2,
        n => return Err(Error(format!("an AES key is 16, 24 or 32 bytes, not {n}"))),
    };
    let cell = &CIPHERS[mode.row()][col];
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let fetched = Cipher::fetch(Some(ctx::libctx()?), NAMES[mode.row()][col], None)?;
    // A racing thread may have stored its own fetch; both are the same algorithm.
    let _ = cell.set(fetched);
    cell.get()
        .map(|c| &**c)
        .ok_or_else(|| Error("cipher cache is empty after initialisation".into()))
}

/// An AES encryption or decryption in progress. Block modes output whole blocks as they
/// complete; CBC-PAD decryption holds back the last block until [`AesCipher::finish`].
pub struct AesCipher {
    ctx: CipherCtx,
    mode: AesMode,
}

impl AesCipher {
    /// Start under `key` (16, 24 or 32 bytes); `iv` is 16 bytes for every mode but ECB,
    /// which takes none.
    pub fn new(mode: AesMode, encrypt: bool, key: &[u8], iv: Option<&[u8]>) -> Result<AesCipher> {
        match (mode.needs_iv(), iv) {
            (true, Some(v)) if v.len() == BLOCK => {}
            (false, None) => {}
            _ => {
                return Err(Error(format!(
                    "{mode:?} IV of the wrong length or presence"
                )));
            }
        }
        let c = cipher(mode, key.len())?;
        let mut ctx = CipherCtx::new()?;
        if encrypt {
            ctx.encrypt_init(Some(c), Some(key), iv)?;
        } else {
            ctx.decrypt_init(Some(c), Some(key), iv)?;
        }
        ctx.set_padding(mode == AesMode::CbcPad);
        Ok(AesCipher { ctx, mode })
    }

    /// The mode.
    pub fn mode(&self) -> AesMode {
        self.mode
    }

    /// Process `input`, appending the output that is complete so far to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        for part in input.chunks(CHUNK) {
            let base = out.len();
            // OpenSSL may release a held block along with the input's own blocks.
            out.resize(base + part.len() + BLOCK, 0);
            let n = self.ctx.cipher_update(part, Some(&mut out[base..]))?;
            out.truncate(base + n);
        }
        Ok(())
    }

    /// Finish, appending the remaining output to `out`. Fails when a block mode without
    /// padding was given a partial block, or when CBC-PAD decryption finds bad padding.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let base = out.len();
        out.resize(base + BLOCK, 0);
        let r = self.ctx.cipher_final(&mut out[base..]);
        match r {
            Ok(n) => {
                out.truncate(base + n);
                Ok(())
            }
            Err(e) => {
                out.truncate(base);
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    fn run(mode: AesMode, enc: bool, key: &str, iv: Option<&str>, data: &[u8]) -> Result<Vec<u8>> {
        let iv = iv.map(h);
        let mut c = AesCipher::new(mode, enc, &h(key), iv.as_deref())?;
        let mut out = Vec::new();
        for part in data.chunks(7) {
            c.update(part, &mut out)?;
        }
        c.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn sp800_38a_f1_f2_f5() {
        let ecb = "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4";
        assert_eq!(
            hex::encode(run(AesMode::Ecb, true, K128, None, &h(PT)).unwrap()),
            ecb
        );
        assert_eq!(
            run(AesMode::Ecb, false, K128, None, &h(ecb)).unwrap(),
            h(PT)
        );
        let iv = Some("000102030405060708090a0b0c0d0e0f");
        let cbc = "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7";
        assert_eq!(
            hex::encode(run(AesMode::Cbc, true, K128, iv, &h(PT)).unwrap()),
            cbc
        );
        assert_eq!(run(AesMode::Cbc, false, K128, iv, &h(cbc)).unwrap(), h(PT));
        let ctr_iv = Some("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let ctr = "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee";
        assert_eq!(
            hex::encode(run(AesMode::Ctr, true, K128, ctr_iv, &h(PT)).unwrap()),
            ctr
        );
        assert_eq!(
            run(AesMode::Ctr, false, K128, ctr_iv, &h(ctr)).unwrap(),
            h(PT)
        );
    }

    #[test]
    fn padding_and_partial_blocks() {
        let iv = Some("000102030405060708090a0b0c0d0e0f");
        let ct = run(AesMode::CbcPad, true, K128, iv, b"seventeen bytes!!").unwrap();
        assert_eq!(ct.len(), 32);
        assert_eq!(
            run(AesMode::CbcPad, false, K128, iv, &ct).unwrap(),
            b"seventeen bytes!!"
        );
        // The same IV and key without padding: the padded last block decrypts to 0x0f bytes.
        let raw = run(AesMode::Cbc, false, K128, iv, &ct).unwrap();
        assert_eq!(&raw[17..], &[15u8; 15]);
        assert!(run(AesMode::Cbc, true, K128, iv, b"not a block").is_err());
        let mut bad = ct.clone();
        bad[31] ^= 0x55;
        assert!(run(AesMode::CbcPad, false, K128, iv, &bad).is_err());
        assert!(AesCipher::new(AesMode::Cbc, true, &h(K128), Some(&[0u8; 15])).is_err());
        assert!(AesCipher::new(AesMode::Ecb, true, &[0u8; 20], None).is_err());
    }
}
