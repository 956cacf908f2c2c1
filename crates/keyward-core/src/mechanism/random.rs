//! Random number generation (PKCS#11 3.0 §5.15): C_GenerateRandom and C_SeedRandom over the
//! private library context's DRBGs.

use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::Bytes;

/// The most one C_GenerateRandom call returns; larger requests are refused before anything is
/// allocated (a daemon client could otherwise make the token allocate without limit).
pub const MAX_RANDOM_LEN: usize = 16 << 20;

/// `len` random bytes for the caller (C_GenerateRandom), from the public DRBG.
pub fn generate(len: usize) -> Result<Bytes> {
    if len > MAX_RANDOM_LEN {
        return Err(Code::HostMemory.err(format!("at most {MAX_RANDOM_LEN} random bytes per call")));
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    keyward_ossl::rand::fill(&mut out)?;
    Ok(out)
}

/// `len` random bytes for key material that stays in the token, from the private DRBG.
pub fn secret(len: usize) -> Result<Bytes> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    keyward_ossl::rand::fill_private(&mut out)?;
    Ok(out)
}

/// Mix caller bytes into the DRBG (C_SeedRandom); the DRBG also reseeds from the operating
/// system, so a poor seed cannot weaken it.
pub fn seed(bytes: &[u8]) -> Result<()> {
    Ok(keyward_ossl::rand::seed(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_limits() {
        assert_eq!(generate(0).unwrap().len(), 0);
        let a = generate(32).unwrap();
        let b = generate(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(secret(24).unwrap().len(), 24);
        assert_eq!(
            generate(MAX_RANDOM_LEN + 1).unwrap_err().code(),
            Code::HostMemory
        );
        seed(b"seed").unwrap();
    }
}
