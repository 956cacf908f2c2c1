//! `keyward verify URI --signature FILE`: check a signature or MAC inside the token; exit 0
//! when it verifies, 6 when it does not.

use std::path::PathBuf;

use clap::Args;
use cryptoki::object::ObjectClass;

use super::sign::{self, KeyKind, SigFormat};
use crate::error::{Error, Exit, Result};
use crate::select::{self, App, Global};

pub const VERIFY_HELP: &str = "\
The mechanism defaults by key type as for `keyward sign` (see its help). ECDSA signatures are
read as DER unless --format raw says r||s. The public key is used without a login; a MAC's
secret key needs one (the PIN sources as usual). Exit code 0: the signature verifies; 6: it
does not; others as in `keyward --help`.

Examples:
  keyward verify 'pkcs11:token=device;object=identity' --signature firmware.sig -i firmware.bin
  openssl dgst -sha256 -sign key.pem -out doc.sig doc && \\
      keyward verify 'pkcs11:token=device;object=imported' --signature doc.sig -i doc";

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The public key (or secret key for a MAC)
    pub uri: String,
    /// The signature to check
    #[arg(long, value_name = "FILE")]
    pub signature: PathBuf,
    /// Read the signed data from FILE (default: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The signature mechanism (default: by key type, as for sign)
    #[arg(long, value_name = "NAME")]
    pub mechanism: Option<String>,
    /// ECDSA signature encoding: der (default) or raw r||s
    #[arg(long, value_enum)]
    pub format: Option<SigFormat>,
    /// Log in first (a MAC's secret key, or private public keys)
    #[arg(long)]
    pub login: bool,
}

pub fn run(g: &Global, a: VerifyArgs) -> Result<()> {
    let uri = select::parse_uri(&a.uri)?;
    let app = App::open(g, Some(&uri))?;
    let classes = [ObjectClass::PUBLIC_KEY, ObjectClass::SECRET_KEY];
    let mut login = a.login || uri.pin_value().is_some() || uri.pin_source().is_some();
    let (t, mut s) = app.user_session(Some(&uri), false, login)?;
    // A secret key (MAC) is visible only after login: look again logged in.
    let has_key = select::objects(&s, Some(&uri))?
        .iter()
        .any(|o| classes.contains(&o.class));
    if !login && !has_key {
        login = true;
        s = app.user_session(Some(&uri), false, true)?.1;
    }
    let key = sign::find_key(&s, &t, &uri, &classes, login, "public or secret key")?;
    let kind = sign::key_kind(&s, key.handle)?;
    let alg = sign::choose_alg(a.mechanism.as_deref(), kind)?;
    if a.format.is_some() && !alg.is_ecdsa() {
        return Err(Error::usage(
            "--format applies to ECDSA signatures only; other signatures have one encoding",
        ));
    }
    let sig = std::fs::read(&a.signature).map_err(|e| Error::io("reading", &a.signature, e))?;
    let data = crate::io::read_input(a.input.as_deref())?;
    let sig = if alg.is_ecdsa() && a.format != Some(SigFormat::Raw) {
        let field = match kind {
            KeyKind::Ec { field: Some(f), .. } => f,
            _ => {
                return Err(Error::usage(
                    "the key's curve is unknown here: give the signature as --format raw",
                ));
            }
        };
        match sign::ecdsa_der_to_raw(&sig, field) {
            Ok(raw) => raw,
            Err(_) => return Err(invalid("the signature is not a DER ECDSA signature")),
        }
    } else {
        sig
    };
    if sign::token_verify(&s, key.handle, alg, &data, &sig)? {
        crate::io::print("Signature verified\n")
    } else {
        Err(invalid(
            "the signature does not verify (CKR_SIGNATURE_INVALID)",
        ))
    }
}

fn invalid(msg: &str) -> Error {
    Error::new(Exit::Invalid, msg)
}
