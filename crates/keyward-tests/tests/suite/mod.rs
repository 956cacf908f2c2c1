//! The backend-independent C ABI suite, grouped by theme.

/// Entry points, function lists, interfaces and argument checking at the C boundary.
mod abi;
/// AES-CCM, ChaCha20-Poly1305 and AES-CTS against openssl, through the raw C ABI.
mod aead;
/// C_GetAttributeValue's per-attribute algorithm and sensitive values.
mod attributes;
/// C_DeriveKey with ECDH: agreement, KDFs, refused parameters, provenance.
mod derive;
/// CKM_EDDSA with contexts and pre-hashing: the RFC 8032 vectors through the C ABI.
mod eddsa_variants;
/// HKDF, PBKDF2, SP 800-108, concatenation and AES encryption of data, through the raw C ABI.
mod kdf;
/// C_WrapKey / C_UnwrapKey rules: trust, templates, provenance, key separation.
mod keymgmt;
/// Key material and certificates made with the openssl crate.
mod keys;
/// Mechanisms: keys, signatures, AES-GCM, digests, operation state, random numbers.
mod mechanisms;
/// The mechanism list against what each mechanism really does, and `pkcs11-tool -M`.
mod mechlist;
/// The 3.0 message-based encryption functions.
mod message;
/// Objects: creation rules, attributes, access, copy, destroy, find.
mod objects;
/// CKM_RSA_PKCS decryption with implicit rejection.
mod rsa_decrypt;
/// Sessions, login states and their error codes, lockout.
mod sessions;
/// Slots and tokens: the free slot, C_InitToken, CK_TOKEN_INFO, PIN counters.
mod slots;
/// The store seen from one process: concurrency and a second process.
mod store;
/// Key wrapping mechanisms: AES key wrap, PKCS#8 private keys, RSA-OAEP, bad wrapped keys.
mod wrap;
