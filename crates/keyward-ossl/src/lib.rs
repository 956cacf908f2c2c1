//! Safe wrappers over OpenSSL 3 for Keyward. Every algorithm is fetched from one private
//! library context with the default provider loaded explicitly, so the host application's
//! OpenSSL configuration (which may route keys to a PKCS#11 provider) never loops back into
//! the token.

use std::fmt;

/// An OpenSSL failure, with OpenSSL's error queue rendered as text.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<openssl::error::ErrorStack> for Error {
    fn from(e: openssl::error::ErrorStack) -> Error {
        Error(e.to_string())
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub mod aead;
pub mod ccm;
pub mod chacha;
pub mod cipher;
pub mod ctx;
mod der;
pub mod digest;
pub mod ecdh;
pub mod edwards;
mod ffi;
pub mod gcm;
pub mod kdf;
pub mod keywrap;
pub mod mac;
pub mod pkcs8;
pub mod pkey;
pub mod rand;
pub mod rsa_pkcs1;
pub mod x509;
