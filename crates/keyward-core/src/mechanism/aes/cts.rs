//! CKM_AES_CTS: AES-CBC with ciphertext stealing, single- and multi-part.
//!
//! PKCS#11 points at the NIST SP 800-38A addendum without naming one of its three variants;
//! this is CBC-CS1 (the stolen partial block before the last full one), as NSS softoken,
//! kryoptic and OpenSSL's default "CBC-CTS" produce, so tokens interoperate. For whole
//! blocks CS1 is plain CBC. RFC 3962 (Kerberos) uses CS3, which only swaps the last two
//! blocks.
//!
//! OpenSSL 3.0's CTS ciphers take all data in one call, so the mode runs on the streaming CBC
//! cipher: all but the last 17 to 32 bytes go through CBC as they arrive, and `finish` steals
//! within those two blocks.

use cryptoki_sys::*;
use keyward_ossl::cipher::{AesCipher, AesMode, BLOCK};
use zeroize::Zeroizing;

use super::{aes_value, iv_param};
use crate::error::{Code, Error, Result};
use crate::mechanism::{Bytes, CipherOp, Mech};
use crate::object::Object;
use crate::types::{Mechanism, MechanismInfo};

pub(super) struct AesCtsMech;

impl AesCtsMech {
    fn init(encrypt: bool, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        let iv = iv_param(mech)?;
        let cbc = AesCipher::new(AesMode::Cbc, encrypt, aes_value(key)?, Some(iv))?;
        let mut chain = [0u8; BLOCK];
        chain.copy_from_slice(iv);
        Ok(Box::new(CtsOp {
            cbc,
            encrypt,
            held: Zeroizing::new(Vec::with_capacity(2 * BLOCK)),
            chain,
        }))
    }
}

impl Mech for AesCtsMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 16,
            max_key_size: 32,
            flags: CKF_ENCRYPT | CKF_DECRYPT,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }

    fn encrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        AesCtsMech::init(true, mech, key)
    }

    fn decrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        AesCtsMech::init(false, mech, key)
    }
}

/// Of `n` bytes pending, the whole blocks that can go through CBC now: everything but the
/// last 17 to 32 bytes (the tail may still turn out to be one block and a partial one).
fn releasable(n: usize) -> usize {
    n.saturating_sub(BLOCK + 1) / BLOCK * BLOCK
}

/// A CTS operation. The CBC cipher holds nothing between calls (it only ever sees whole
/// blocks); `held` is the undecided tail, and for decryption `chain` is the ciphertext block
/// the tail chains from (the IV at first).
struct CtsOp {
    cbc: AesCipher,
    encrypt: bool,
    held: Zeroizing<Vec<u8>>,
    chain: [u8; BLOCK],
}

impl CtsOp {
    fn short(&self) -> Error {
        if self.encrypt {
            Code::DataLenRange.err("AES-CTS needs at least one 16-byte block")
        } else {
            Code::EncryptedDataLenRange.err("AES-CTS ciphertext is at least one 16-byte block")
        }
    }

    /// Steal within the last block and a partial one (17 to 31 bytes in `tail`).
    fn steal(&mut self, tail: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let d = tail.len() - BLOCK;
        if self.encrypt {
            // CBC over P(n-1) ‖ P(n) ‖ 0-pad gives C(n-1) ‖ C(n); CS1 sends the first d bytes of
            // C(n-1), then C(n).
            let mut padded = Zeroizing::new([0u8; 2 * BLOCK]);
            padded[..tail.len()].copy_from_slice(tail);
            let mut x = Zeroizing::new(Vec::with_capacity(3 * BLOCK));
            self.cbc.update(&padded[..], &mut x)?;
            if x.len() != 2 * BLOCK {
                return Err(Code::GeneralError.err("AES-CBC returned a partial block"));
            }
            out.extend_from_slice(&x[..d]);
            out.extend_from_slice(&x[BLOCK..]);
        } else {
            // The tail is C*(n-1) (d bytes) ‖ C(n). With Z the block before, CBC decryption of
            // C(n) gives D ⊕ Z where D = Dec(C(n)) = (P(n) ‖ 0) ⊕ C(n-1): so C(n-1) =
            // C* ‖ D[d..] and P(n) = D[..d] ⊕ C*. Decrypting C(n-1) next chains from C(n)
            // instead of Z, which the last XOR corrects.
            let (c_star, c_n) = tail.split_at(d);
            let z = self.chain;
            let mut y = Zeroizing::new(Vec::with_capacity(3 * BLOCK));
            self.cbc.update(c_n, &mut y)?;
            let mut prev = Zeroizing::new([0u8; BLOCK]);
            xor_block(&y, &z, &mut prev)?;
            let mut p_n = Zeroizing::new([0u8; BLOCK]);
            for ((p, a), b) in p_n.iter_mut().zip(prev.iter()).zip(c_star) {
                *p = a ^ b;
            }
            prev[..d].copy_from_slice(c_star);
            y.clear();
            self.cbc.update(&prev[..], &mut y)?;
            let mut p_prev = Zeroizing::new([0u8; BLOCK]);
            xor_block(&y, &z, &mut p_prev)?;
            for (p, c) in p_prev.iter_mut().zip(c_n) {
                *p ^= c;
            }
            out.extend_from_slice(&p_prev[..]);
            out.extend_from_slice(&p_n[..d]);
        }
        Ok(())
    }
}

/// `dst` = the one CBC output block `y` XOR `z`.
fn xor_block(y: &[u8], z: &[u8; BLOCK], dst: &mut [u8; BLOCK]) -> Result<()> {
    if y.len() != BLOCK {
        return Err(Code::GeneralError.err("AES-CBC returned a partial block"));
    }
    for ((d, a), b) in dst.iter_mut().zip(y).zip(z) {
        *d = a ^ b;
    }
    Ok(())
}

impl CipherOp for CtsOp {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        let pending = self.held.len().saturating_add(input_len);
        if last { pending } else { releasable(pending) }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        let k = releasable(self.held.len().saturating_add(input.len()));
        if k == 0 {
            self.held.extend_from_slice(input);
            return Ok(Zeroizing::new(Vec::new()));
        }
        // The k bytes released are the held ones first, then the head of `input`.
        let from_held = k.min(self.held.len());
        let from_input = k - from_held;
        if !self.encrypt {
            let released = self.held[..from_held]
                .iter()
                .chain(&input[..from_input])
                .skip(k - BLOCK);
            for (c, b) in self.chain.iter_mut().zip(released) {
                *c = *b;
            }
        }
        let mut out = Zeroizing::new(Vec::with_capacity(k + BLOCK));
        self.cbc.update(&self.held[..from_held], &mut out)?;
        self.cbc.update(&input[..from_input], &mut out)?;
        self.held.drain(..from_held);
        self.held.extend_from_slice(&input[from_input..]);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let tail = std::mem::take(&mut self.held);
        if tail.len() < BLOCK {
            return Err(self.short());
        }
        let mut out = Zeroizing::new(Vec::with_capacity(tail.len() + BLOCK));
        if tail.len().is_multiple_of(BLOCK) {
            // Whole blocks: CS1 is CBC.
            self.cbc.update(&tail, &mut out)?;
        } else {
            self.steal(&tail, &mut out)?;
        }
        // Only whole blocks went in, so this outputs nothing; it closes the context.
        self.cbc.finish(&mut out)?;
        if out.len() != tail.len() {
            return Err(Code::GeneralError.err("AES-CTS output length mismatch"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
