//! `keyward mechanisms`: what a token supports (C_GetMechanismList, C_GetMechanismInfo).

use clap::Args;
use serde_json::json;

use cryptoki::mechanism::MechanismType;
use cryptoki_sys::*;

use crate::error::{Error, Result};
use crate::select::{App, Global, parse_uri};

#[derive(Debug, Args)]
pub struct MechanismsArgs {
    /// The token (default: the only initialised token, else the first slot with a token)
    pub uri: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, a: MechanismsArgs) -> Result<()> {
    let uri = a.uri.as_deref().map(parse_uri).transpose()?;
    let app = App::open(g, uri.as_ref())?;
    let slot = match &uri {
        Some(_) => app.token(uri.as_ref())?.slot,
        None => match app.token(None) {
            Ok(t) => t.slot,
            Err(_) => app
                .tokens()?
                .first()
                .map(|t| t.slot)
                .ok_or_else(|| Error::not_found("no slot holds a token"))?,
        },
    };
    // Raw numbers: cryptoki drops mechanisms missing from its tables.
    let list = crate::raw::mechanism_list(slot)?;
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for m in list {
        let name = mechanism_name(m);
        let info = crate::raw::mechanism_info(slot, m)?;
        let mut flags = Vec::new();
        for (bit, flag) in FLAGS {
            if info.flags & bit != 0 {
                flags.push(*flag);
            }
        }
        let sizes = format!("{}-{}", info.ulMinKeySize, info.ulMaxKeySize);
        rows.push(vec![name.clone(), sizes, flags.join(",")]);
        js.push(json!({
            "mechanism": name,
            "value": m,
            "min_key_size": info.ulMinKeySize,
            "max_key_size": info.ulMaxKeySize,
            "flags": flags,
        }));
    }
    if a.json {
        return super::list::print_json(&js);
    }
    crate::io::print(&super::slots::table(
        &["MECHANISM", "KEY SIZES", "FLAGS"],
        &rows,
    ))
}

/// CK_MECHANISM_INFO flags and the words printed for them.
const FLAGS: &[(CK_FLAGS, &str)] = &[
    (CKF_ENCRYPT, "encrypt"),
    (CKF_DECRYPT, "decrypt"),
    (CKF_DIGEST, "digest"),
    (CKF_SIGN, "sign"),
    (CKF_SIGN_RECOVER, "sign_recover"),
    (CKF_VERIFY, "verify"),
    (CKF_VERIFY_RECOVER, "verify_recover"),
    (CKF_GENERATE, "generate"),
    (CKF_GENERATE_KEY_PAIR, "generate_key_pair"),
    (CKF_WRAP, "wrap"),
    (CKF_UNWRAP, "unwrap"),
    (CKF_DERIVE, "derive"),
    (CKF_MESSAGE_ENCRYPT, "message_encrypt"),
    (CKF_MESSAGE_DECRYPT, "message_decrypt"),
    (CKF_MULTI_MESSAGE, "multi_message"),
    (CKF_EC_F_P, "ec_f_p"),
    (CKF_EC_NAMEDCURVE, "ec_namedcurve"),
    (CKF_EC_UNCOMPRESS, "ec_uncompress"),
    (CKF_EC_COMPRESS, "ec_compress"),
];

/// The spec's name of a mechanism: cryptoki's when it knows it, else from the mechanisms it
/// lacks, else the number in hex.
pub fn mechanism_name(m: CK_MECHANISM_TYPE) -> String {
    if let Ok(t) = MechanismType::try_from(m) {
        return t.to_string();
    }
    match MISSING.iter().find(|(v, _)| *v == m) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("{m:#x}"),
    }
}

/// `(CKM_X, "CKM_X")` for each name given.
macro_rules! names {
    ($($m:ident),* $(,)?) => { &[$(($m, stringify!($m))),*] };
}

/// Standard mechanisms cryptoki 0.12 has no name for.
const MISSING: &[(CK_MECHANISM_TYPE, &str)] = names![
    CKM_SHA224,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA224_HMAC_GENERAL,
    CKM_SHA512_224,
    CKM_SHA512_224_HMAC,
    CKM_SHA512_224_HMAC_GENERAL,
    CKM_SHA512_256,
    CKM_SHA512_256_HMAC,
    CKM_SHA512_256_HMAC_GENERAL,
    CKM_SHA_1_HMAC_GENERAL,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA384_HMAC_GENERAL,
    CKM_SHA512_HMAC_GENERAL,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
    CKM_SHA3_224_HMAC,
    CKM_SHA3_256_HMAC,
    CKM_SHA3_384_HMAC,
    CKM_SHA3_512_HMAC,
    CKM_SHA3_224_HMAC_GENERAL,
    CKM_SHA3_256_HMAC_GENERAL,
    CKM_SHA3_384_HMAC_GENERAL,
    CKM_SHA3_512_HMAC_GENERAL,
    CKM_SHA3_224_RSA_PKCS,
    CKM_SHA3_256_RSA_PKCS,
    CKM_SHA3_384_RSA_PKCS,
    CKM_SHA3_512_RSA_PKCS,
    CKM_SHA3_224_RSA_PKCS_PSS,
    CKM_SHA3_256_RSA_PKCS_PSS,
    CKM_SHA3_384_RSA_PKCS_PSS,
    CKM_SHA3_512_RSA_PKCS_PSS,
    CKM_PKCS5_PBKD2,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA3_224,
    CKM_ECDSA_SHA3_256,
    CKM_ECDSA_SHA3_384,
    CKM_ECDSA_SHA3_512,
    CKM_ECDH1_COFACTOR_DERIVE,
    CKM_AES_CCM,
    CKM_AES_CTS,
    CKM_AES_CMAC_GENERAL,
    CKM_AES_ECB_ENCRYPT_DATA,
    CKM_AES_KEY_WRAP_KWP,
    CKM_CHACHA20_KEY_GEN,
    CKM_CHACHA20,
    CKM_CHACHA20_POLY1305,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_cryptoki_then_the_table_then_hex() {
        assert_eq!(mechanism_name(CKM_ECDSA), "CKM_ECDSA");
        assert_eq!(mechanism_name(CKM_SHA3_256_HMAC), "CKM_SHA3_256_HMAC");
        assert_eq!(mechanism_name(CKM_AES_KEY_WRAP_KWP), "CKM_AES_KEY_WRAP_KWP");
        assert_eq!(mechanism_name(CKM_VENDOR_DEFINED + 7), "0x80000007");
    }
}
