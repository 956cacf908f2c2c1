//! HMAC and AES-CMAC through EVP_MAC: each MAC fetched once from the private context, each
//! key initialised once into a template context that operations duplicate.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::OnceLock;

use openssl_sys as sys;
use zeroize::Zeroizing;

use crate::digest::DigestAlg;
use crate::ffi::{ParamBuilder, check, libctx_ptr, ossl_error};
use crate::{Error, Result};

/// A fetched EVP_MAC, kept for the life of the process.
struct MacAlg(NonNull<sys::EVP_MAC>);

// SAFETY: a fetched EVP_MAC is immutable and reference-counted with atomics; OpenSSL allows
// sharing it between threads.
unsafe impl Send for MacAlg {}
// SAFETY: as above.
unsafe impl Sync for MacAlg {}

static HMAC: OnceLock<MacAlg> = OnceLock::new();
static CMAC: OnceLock<MacAlg> = OnceLock::new();

fn fetch(cell: &'static OnceLock<MacAlg>, name: &'static CStr) -> Result<*mut sys::EVP_MAC> {
    if let Some(m) = cell.get() {
        return Ok(m.0.as_ptr());
    }
    let lib = libctx_ptr()?;
    // SAFETY: `lib` is the live private context and `name` a static C string.
    let p = unsafe { sys::EVP_MAC_fetch(lib, name.as_ptr(), std::ptr::null()) };
    let fetched = NonNull::new(p)
        .map(MacAlg)
        .ok_or_else(|| ossl_error("EVP_MAC_fetch"))?;
    if let Err(lost) = cell.set(fetched) {
        // A racing thread stored its own fetch first; release ours.
        // SAFETY: `lost` holds the one reference this thread fetched.
        unsafe { sys::EVP_MAC_free(lost.0.as_ptr()) };
    }
    cell.get()
        .map(|m| m.0.as_ptr())
        .ok_or_else(|| Error("MAC cache is empty after initialisation".into()))
}

/// An owned EVP_MAC_CTX.
struct Ctx(NonNull<sys::EVP_MAC_CTX>);

// SAFETY: an EVP_MAC_CTX has no thread affinity.
unsafe impl Send for Ctx {}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: we own the context; freeing it clears the key material it holds.
        unsafe { sys::EVP_MAC_CTX_free(self.0.as_ptr()) }
    }
}

/// A key initialised for one MAC algorithm: the template every operation duplicates.
pub struct MacKey {
    ctx: Ctx,
    size: usize,
}

// SAFETY: after construction the template is only read, by EVP_MAC_CTX_dup, which copies
// without modifying its source; concurrent reads are safe.
unsafe impl Sync for MacKey {}

impl MacKey {
    fn new(mac: *mut sys::EVP_MAC, key: &[u8], params: ParamBuilder) -> Result<MacKey> {
        let params = params.build()?;
        // SAFETY: `mac` is a live fetched MAC kept for the process.
        let ctx = NonNull::new(unsafe { sys::EVP_MAC_CTX_new(mac) })
            .map(Ctx)
            .ok_or_else(|| ossl_error("EVP_MAC_CTX_new"))?;
        // SAFETY: live context; `key` is valid for its length (a dangling-but-aligned pointer
        // for an empty slice is never read); `params` is a terminated array owned above.
        let rc =
            unsafe { sys::EVP_MAC_init(ctx.0.as_ptr(), key.as_ptr(), key.len(), params.as_ptr()) };
        check(rc, "EVP_MAC_init")?;
        // SAFETY: live, initialised context.
        let size = unsafe { sys::EVP_MAC_CTX_get_mac_size(ctx.0.as_ptr()) };
        if size == 0 {
            return Err(Error("MAC size is zero".into()));
        }
        Ok(MacKey { ctx, size })
    }

    /// HMAC with `alg` under `key`.
    pub fn hmac(alg: DigestAlg, key: &[u8]) -> Result<MacKey> {
        let mut p = ParamBuilder::new()?;
        p.push_utf8(c"digest", digest_cname(alg))?;
        MacKey::new(fetch(&HMAC, c"HMAC")?, key, p)
    }

    /// AES-CMAC (NIST SP 800-38B) under `key` (16, 24 or 32 bytes).
    pub fn aes_cmac(key: &[u8]) -> Result<MacKey> {
        let cipher: &'static CStr = match key.len() {
            16 => c"AES-128-CBC",
            24 => c"AES-192-CBC",
            32 => c"AES-256-CBC",
            n => return Err(Error(format!("an AES key is 16, 24 or 32 bytes, not {n}"))),
        };
        let mut p = ParamBuilder::new()?;
        p.push_utf8(c"cipher", cipher)?;
        MacKey::new(fetch(&CMAC, c"CMAC")?, key, p)
    }

    /// The full MAC length in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Start a MAC computation under this key.
    pub fn start(&self) -> Result<Mac> {
        // SAFETY: the template is live and only read.
        let p = unsafe { sys::EVP_MAC_CTX_dup(self.ctx.0.as_ptr()) };
        let ctx = NonNull::new(p)
            .map(Ctx)
            .ok_or_else(|| ossl_error("EVP_MAC_CTX_dup"))?;
        Ok(Mac {
            ctx,
            size: self.size,
        })
    }
}

fn digest_cname(alg: DigestAlg) -> &'static CStr {
    match alg {
        DigestAlg::Sha1 => c"SHA1",
        DigestAlg::Sha224 => c"SHA224",
        DigestAlg::Sha256 => c"SHA256",
        DigestAlg::Sha384 => c"SHA384",
        DigestAlg::Sha512 => c"SHA512",
        DigestAlg::Sha512_224 => c"SHA512-224",
        DigestAlg::Sha512_256 => c"SHA512-256",
        DigestAlg::Sha3_224 => c"SHA3-224",
        DigestAlg::Sha3_256 => c"SHA3-256",
        DigestAlg::Sha3_384 => c"SHA3-384",
        DigestAlg::Sha3_512 => c"SHA3-512",
    }
}

/// A MAC computation in progress.
pub struct Mac {
    ctx: Ctx,
    size: usize,
}

impl Mac {
    /// The full MAC length in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Add data.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        // SAFETY: live context; `data` is valid for its length.
        check(
            unsafe { sys::EVP_MAC_update(self.ctx.0.as_ptr(), data.as_ptr(), data.len()) },
            "EVP_MAC_update",
        )
    }

    /// The full MAC over everything added. The computation cannot continue afterwards.
    pub fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.size]);
        let mut n = 0usize;
        // SAFETY: live context; `out` has room for `size` bytes, which bounds the write.
        let rc =
            unsafe { sys::EVP_MAC_final(self.ctx.0.as_ptr(), out.as_mut_ptr(), &mut n, out.len()) };
        check(rc, "EVP_MAC_final")?;
        out.truncate(n);
        Ok(out)
    }

    /// Whether `mac` equals the first `mac.len()` bytes of the MAC over everything added,
    /// compared in constant time. The caller checks `mac.len()` against the length it expects.
    pub fn verify(&mut self, mac: &[u8]) -> Result<bool> {
        let full = self.finish()?;
        if mac.is_empty() || mac.len() > full.len() {
            return Ok(false);
        }
        Ok(openssl::memcmp::eq(&full[..mac.len()], mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn one(k: &MacKey, parts: &[&[u8]]) -> Vec<u8> {
        let mut m = k.start().unwrap();
        for p in parts {
            m.update(p).unwrap();
        }
        m.finish().unwrap().to_vec()
    }

    #[test]
    fn rfc_4493_cmac() {
        let k = MacKey::aes_cmac(&h("2b7e151628aed2a6abf7158809cf4f3c")).unwrap();
        assert_eq!(k.size(), 16);
        assert_eq!(
            hex::encode(one(&k, &[])),
            "bb1d6929e95937287fa37d129b756746"
        );
        let m = h("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            hex::encode(one(&k, &[&m])),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
        // The template is untouched by the operations duplicated from it.
        assert_eq!(
            hex::encode(one(&k, &[&m[..3], &m[3..]])),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
    }

    #[test]
    fn rfc_4231_case_2_and_verify() {
        let k = MacKey::hmac(DigestAlg::Sha256, b"Jefe").unwrap();
        let tag = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            hex::encode(one(&k, &[b"what do ya want ", b"for nothing?"])),
            tag
        );
        let mut m = k.start().unwrap();
        m.update(b"what do ya want for nothing?").unwrap();
        assert!(m.verify(&h(tag)[..16]).unwrap());
        let mut m = k.start().unwrap();
        m.update(b"what do ya want for nothing!").unwrap();
        assert!(!m.verify(&h(tag)).unwrap());
    }

    #[test]
    fn matches_default_context_hmac() {
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::sign::Signer;
        for alg in DigestAlg::ALL {
            let k = MacKey::hmac(alg, b"some key").unwrap();
            assert_eq!(k.size(), alg.output_len());
            let pk = PKey::hmac(b"some key").unwrap();
            let md = MessageDigest::from_name(alg.name()).unwrap();
            let mut s = Signer::new(md, &pk).unwrap();
            s.update(b"data").unwrap();
            assert_eq!(one(&k, &[b"data"]), s.sign_to_vec().unwrap(), "{alg:?}");
        }
    }
}
