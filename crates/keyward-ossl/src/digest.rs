//! Message digests (SHA-1, SHA-2, SHA-3), each `EVP_MD` fetched once from the private context.

use std::sync::OnceLock;

use openssl::md::{Md, MdRef};
use openssl::md_ctx::MdCtx;
use zeroize::Zeroizing;

use crate::{Error, Result, ctx};

/// A digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// SHA-1 (FIPS 180-4); for digests and verification of old data only.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA-512/224.
    Sha512_224,
    /// SHA-512/256.
    Sha512_256,
    /// SHA3-224 (FIPS 202).
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

const COUNT: usize = 11;

impl DigestAlg {
    /// Every algorithm, in declaration order.
    pub const ALL: [DigestAlg; COUNT] = [
        DigestAlg::Sha1,
        DigestAlg::Sha224,
        DigestAlg::Sha256,
        DigestAlg::Sha384,
        DigestAlg::Sha512,
        DigestAlg::Sha512_224,
        DigestAlg::Sha512_256,
        DigestAlg::Sha3_224,
        DigestAlg::Sha3_256,
        DigestAlg::Sha3_384,
        DigestAlg::Sha3_512,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The OpenSSL fetch name.
    pub const fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha1 => "SHA1",
            DigestAlg::Sha224 => "SHA224",
            DigestAlg::Sha256 => "SHA256",
            DigestAlg::Sha384 => "SHA384",
            DigestAlg::Sha512 => "SHA512",
            DigestAlg::Sha512_224 => "SHA512-224",
            DigestAlg::Sha512_256 => "SHA512-256",
            DigestAlg::Sha3_224 => "SHA3-224",
            DigestAlg::Sha3_256 => "SHA3-256",
            DigestAlg::Sha3_384 => "SHA3-384",
            DigestAlg::Sha3_512 => "SHA3-512",
        }
    }

    /// The output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            DigestAlg::Sha1 => 20,
            DigestAlg::Sha224 | DigestAlg::Sha512_224 | DigestAlg::Sha3_224 => 28,
            DigestAlg::Sha256 | DigestAlg::Sha512_256 | DigestAlg::Sha3_256 => 32,
            DigestAlg::Sha384 | DigestAlg::Sha3_384 => 48,
            DigestAlg::Sha512 | DigestAlg::Sha3_512 => 64,
        }
    }

    /// The last arc of the algorithm's OID under 2.16.840.1.101.3.4.2 (NIST hash algorithms);
    /// `None` for SHA-1, whose OID lives elsewhere.
    const fn nist_arc(self) -> Option<u8> {
        match self {
            DigestAlg::Sha1 => None,
            DigestAlg::Sha256 => Some(1),
            DigestAlg::Sha384 => Some(2),
            DigestAlg::Sha512 => Some(3),
            DigestAlg::Sha224 => Some(4),
            DigestAlg::Sha512_224 => Some(5),
            DigestAlg::Sha512_256 => Some(6),
            DigestAlg::Sha3_224 => Some(7),
            DigestAlg::Sha3_256 => Some(8),
            DigestAlg::Sha3_384 => Some(9),
            DigestAlg::Sha3_512 => Some(10),
        }
    }
}

static MDS: [OnceLock<Md>; COUNT] = [const { OnceLock::new() }; COUNT];

/// The `EVP_MD` for `alg`, fetched from the private context on first use and kept for the life
/// of the process (a fetch takes a lock and a lookup; doing it per operation is measurable).
pub fn md(alg: DigestAlg) -> Result<&'static MdRef> {
    let cell = &MDS[alg.index()];
    if let Some(md) = cell.get() {
        return Ok(md);
    }
    let fetched = Md::fetch(Some(ctx::libctx()?), alg.name(), None)?;
    // A racing thread may have stored its own fetch; both are the same algorithm.
    let _ = cell.set(fetched);
    cell.get()
        .map(|m| &**m)
        .ok_or_else(|| Error("digest cache is empty after initialisation".into()))
}

/// A digest computation in progress.
pub struct Digest {
    alg: DigestAlg,
    ctx: MdCtx,
}

impl Digest {
    /// Start a digest with `alg`.
    pub fn new(alg: DigestAlg) -> Result<Digest> {
        let mut ctx = MdCtx::new()?;
        ctx.digest_init(md(alg)?)?;
        Ok(Digest { alg, ctx })
    }

    /// The algorithm.
    pub fn alg(&self) -> DigestAlg {
        self.alg
    }

    /// Add data.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        Ok(self.ctx.digest_update(data)?)
    }

    /// The digest of everything added so far; the computation starts over afterwards.
    /// Zeroized on drop: C_DigestKey digests secret keys.
    pub fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.alg.output_len()]);
        let n = self.ctx.digest_final(&mut out)?;
        out.truncate(n);
        self.ctx.digest_init(md(self.alg)?)?;
        Ok(out)
    }
}

/// One-shot digest of `data`.
pub fn digest(alg: DigestAlg, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut d = Digest::new(alg)?;
    d.update(data)?;
    d.finish()
}

/// The DER `DigestInfo` (RFC 8017 §9.2) wrapping `digest`: what a PKCS#1 v1.5 signature signs.
pub fn digest_info(alg: DigestAlg, digest: &[u8]) -> Result<Vec<u8>> {
    if digest.len() != alg.output_len() {
        return Err(Error(format!(
            "a {} digest is {} bytes, not {}",
            alg.name(),
            alg.output_len(),
            digest.len()
        )));
    }
    // AlgorithmIdentifier with NULL parameters, as RFC 8017 requires for these hashes.
    let alg_id: Vec<u8> = match alg.nist_arc() {
        None => vec![
            0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
        ],
        Some(arc) => vec![
            0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, arc, 0x05, 0x00,
        ],
    };
    // Every length here is below 128, so short-form DER lengths suffice.
    let inner = alg_id.len() + 2 + digest.len();
    let mut out = Vec::with_capacity(2 + inner);
    out.extend_from_slice(&[0x30, inner as u8]);
    out.extend_from_slice(&alg_id);
    out.extend_from_slice(&[0x04, digest.len() as u8]);
    out.extend_from_slice(digest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_abc_matches_fips_180_4() {
        assert_eq!(
            hex::encode(&*digest(DigestAlg::Sha256, b"abc").unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn streaming_equals_one_shot_and_restarts() {
        let mut d = Digest::new(DigestAlg::Sha512).unwrap();
        d.update(b"a").unwrap();
        d.update(b"bc").unwrap();
        let first = d.finish().unwrap();
        assert_eq!(first, digest(DigestAlg::Sha512, b"abc").unwrap());
        assert!(hex::encode(&*first).starts_with("ddaf35a193617aba"));
        d.update(b"abc").unwrap();
        assert_eq!(d.finish().unwrap(), first);
    }

    #[test]
    fn every_algorithm_has_its_length_and_matches_the_default_context() {
        use openssl::hash::{MessageDigest, hash};
        for alg in DigestAlg::ALL {
            let ours = digest(alg, b"keyward").unwrap();
            assert_eq!(ours.len(), alg.output_len(), "{alg:?}");
            let reference = MessageDigest::from_name(alg.name()).unwrap();
            assert_eq!(&*ours, &*hash(reference, b"keyward").unwrap(), "{alg:?}");
        }
    }

    #[test]
    fn sha3_256_abc() {
        assert_eq!(
            hex::encode(&*digest(DigestAlg::Sha3_256, b"abc").unwrap()),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
    }

    #[test]
    fn digest_info_prefixes_match_rfc_8017() {
        let d = [0u8; 32];
        let di = digest_info(DigestAlg::Sha256, &d).unwrap();
        assert_eq!(
            hex::encode(&di[..19]),
            "3031300d060960864801650304020105000420"
        );
        let di = digest_info(DigestAlg::Sha1, &[0u8; 20]).unwrap();
        assert_eq!(hex::encode(&di[..15]), "3021300906052b0e03021a05000414");
        let di = digest_info(DigestAlg::Sha512, &[0u8; 64]).unwrap();
        assert_eq!(
            hex::encode(&di[..19]),
            "3051300d060960864801650304020305000440"
        );
        assert!(digest_info(DigestAlg::Sha256, &[0u8; 20]).is_err());
    }
}
