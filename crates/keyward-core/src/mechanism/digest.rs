//! Message digesting (PKCS#11 3.0 §6.19–6.21, §6.26): CKM_SHA_1, the SHA-2 family and SHA-3.

use cryptoki_sys::*;
use keyward_ossl::digest::{Digest, DigestAlg};
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::{Bytes, DigestOp, Mech, Registry};
use crate::types::{MechParams, Mechanism, MechanismInfo};

/// The digest mechanisms and their algorithms.
const DIGESTS: [(CK_MECHANISM_TYPE, DigestAlg); 11] = [
    (CKM_SHA_1, DigestAlg::Sha1),
    (CKM_SHA224, DigestAlg::Sha224),
    (CKM_SHA256, DigestAlg::Sha256),
    (CKM_SHA384, DigestAlg::Sha384),
    (CKM_SHA512, DigestAlg::Sha512),
    (CKM_SHA512_224, DigestAlg::Sha512_224),
    (CKM_SHA512_256, DigestAlg::Sha512_256),
    (CKM_SHA3_224, DigestAlg::Sha3_224),
    (CKM_SHA3_256, DigestAlg::Sha3_256),
    (CKM_SHA3_384, DigestAlg::Sha3_384),
    (CKM_SHA3_512, DigestAlg::Sha3_512),
];

/// Refuse parameters on a mechanism that takes none (an empty byte string counts as none:
/// some callers pass a non-NULL pointer with length 0).
pub(crate) fn no_params(mech: &Mechanism) -> Result<()> {
    match &mech.params {
        MechParams::None => Ok(()),
        MechParams::Bytes(b) if b.is_empty() => Ok(()),
        _ => Err(Code::MechanismParamInvalid
            .err(format!("mechanism {:#x} takes no parameter", mech.mech))),
    }
}

struct DigestMech(DigestAlg);

impl Mech for DigestMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 0,
            max_key_size: 0,
            flags: CKF_DIGEST,
        }
    }

    fn digest_init(&self, mech: &Mechanism) -> Result<Box<dyn DigestOp>> {
        no_params(mech)?;
        Ok(Box::new(Running(Digest::new(self.0)?)))
    }
}

struct Running(Digest);

impl DigestOp for Running {
    fn len(&self) -> usize {
        self.0.alg().output_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        Ok(self.0.update(data)?)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let d: Zeroizing<Vec<u8>> = self.0.finish()?;
        Ok(d)
    }
}

pub(crate) fn register(reg: &mut Registry) {
    for (ty, alg) in DIGESTS {
        reg.add(ty, Box::new(DigestMech(alg)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::registry;

    fn run(mech: CK_MECHANISM_TYPE, parts: &[&[u8]]) -> Vec<u8> {
        let mut op = registry()
            .get(mech)
            .unwrap()
            .digest_init(&Mechanism::new(mech))
            .unwrap();
        for p in parts {
            op.update(p).unwrap();
        }
        let out = op.finish().unwrap();
        assert_eq!(out.len(), op.len());
        out.to_vec()
    }

    #[test]
    fn sha256_abc_fips_180_4() {
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex::encode(run(CKM_SHA256, &[b"abc"])), expected);
        assert_eq!(hex::encode(run(CKM_SHA256, &[b"a", b"", b"bc"])), expected);
    }

    #[test]
    fn sha1_and_sha384_abc() {
        assert_eq!(
            hex::encode(run(CKM_SHA_1, &[b"abc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(run(CKM_SHA384, &[b"abc"])),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
    }

    #[test]
    fn parameters_are_refused() {
        let m = Mechanism {
            mech: CKM_SHA256,
            params: MechParams::Bytes(vec![1]),
        };
        let e = registry()
            .get(CKM_SHA256)
            .unwrap()
            .digest_init(&m)
            .err()
            .unwrap();
        assert_eq!(e.code(), Code::MechanismParamInvalid);
        let info = registry().get(CKM_SHA512).unwrap().info();
        assert_eq!(info.flags, CKF_DIGEST);
    }
}
