//! `keyward digest [URI]`: a hash computed by the token (C_Digest), no login needed.

use std::path::PathBuf;

use clap::Args;
use cryptoki::mechanism::Mechanism;

use crate::error::{Error, Result};
use crate::select::{App, Global, parse_uri};

pub const DIGEST_HELP: &str = "\
Mechanisms: sha1, sha224, sha256 (default), sha384, sha512. The digest is printed in lower-case
hex on one line (as `openssl dgst -r` prints it, without the file name); --binary writes the
bare bytes.

Examples:
  keyward digest -i firmware.bin
  keyward digest 'pkcs11:token=device' --mechanism sha384 -i firmware.bin
  keyward digest --binary < data > data.sha256";

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The token to use (default: the only initialised token)
    pub uri: Option<String>,
    /// The hash: sha1, sha224, sha256, sha384 or sha512
    #[arg(long, value_name = "NAME", default_value = "sha256")]
    pub mechanism: String,
    /// Read the data from FILE (default: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write to FILE (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the bare digest bytes instead of hex
    #[arg(long)]
    pub binary: bool,
}

fn mechanism(name: &str) -> Result<Mechanism<'static>> {
    Ok(match name.to_ascii_lowercase().replace('-', "").as_str() {
        "sha1" => Mechanism::Sha1,
        "sha224" => Mechanism::Sha224,
        "sha256" => Mechanism::Sha256,
        "sha384" => Mechanism::Sha384,
        "sha512" => Mechanism::Sha512,
        _ => {
            return Err(Error::usage(format!(
                "unknown digest {name:?}: use sha1, sha224, sha256, sha384 or sha512"
            )));
        }
    })
}

pub fn run(g: &Global, a: DigestArgs) -> Result<()> {
    let mech = mechanism(&a.mechanism)?;
    let uri = a.uri.as_deref().map(parse_uri).transpose()?;
    let app = App::open(g, uri.as_ref())?;
    let t = app.token(uri.as_ref())?;
    let s = app.session(&t, false)?;
    let data = crate::io::read_input(a.input.as_deref())?;
    let d = s
        .digest(&mech, &data)
        .map_err(|e| Error::ck(&format!("hashing with {}", a.mechanism), e))?;
    let out = if a.binary {
        d
    } else {
        format!("{}\n", hex::encode(d)).into_bytes()
    };
    crate::io::write_output(a.output.as_deref(), &out)
}
