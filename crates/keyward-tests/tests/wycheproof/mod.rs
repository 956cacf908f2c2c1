//! The Wycheproof families the token supports, each a module of `#[test]`s over the shared
//! runner.

/// Key agreement: ECDH on P-256, P-384, P-521 and secp256k1, X25519 and X448.
mod ecdh;
/// ECDSA verification: DER and IEEE P1363 signatures on P-256, P-384, P-521 and secp256k1.
mod ecdsa;
/// EdDSA verification: Ed25519 and Ed448.
mod eddsa;
/// RSA: PKCS#1 v1.5 and PSS verification, OAEP decryption.
mod rsa;
/// Tallies, verdicts, key import and the raw calls cryptoki cannot express.
mod runner;
/// AES-GCM, AES-CBC with PKCS#7 padding, AES-CMAC and HMAC.
mod symmetric;
