//! The Wycheproof families the token supports, each a module of `#[test]`s over the shared
//! runner.

/// AES-CCM with the nonce and tag sizes of SP 800-38C.
mod aes_ccm;
/// ChaCha20-Poly1305 with RFC 8439's 12-byte nonce.
mod chacha20_poly1305;
/// Key agreement: ECDH on P-256, P-384, P-521 and secp256k1, X25519 and X448.
mod ecdh;
/// ECDSA verification: DER and IEEE P1363 signatures on P-256, P-384, P-521 and secp256k1.
mod ecdsa;
/// EdDSA verification: Ed25519 and Ed448.
mod eddsa;
/// HKDF extract-and-expand over SHA-1 and SHA-2.
mod hkdf;
/// AES key wrap: RFC 3394 and RFC 5649.
mod keywrap;
/// RSA: PKCS#1 v1.5 and PSS verification, OAEP decryption.
mod rsa;
/// RSA PKCS#1 v1.5 decryption with implicit rejection.
mod rsa_pkcs1_decrypt;
/// Tallies, verdicts, key import and the raw calls cryptoki cannot express.
mod runner;
/// AES-GCM, AES-CBC with PKCS#7 padding, AES-CMAC and HMAC.
mod symmetric;
