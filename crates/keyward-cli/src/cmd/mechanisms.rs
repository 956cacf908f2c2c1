//! `keyward mechanisms`: what a token supports (C_GetMechanismList, C_GetMechanismInfo).

use clap::Args;
use serde_json::json;

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
    let list = app
        .p11
        .get_mechanism_list(slot)
        .map_err(|e| Error::ck("listing mechanisms", e))?;
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for m in list {
        let info = app
            .p11
            .get_mechanism_info(slot, m)
            .map_err(|e| Error::ck(&format!("reading information on {m}"), e))?;
        let mut flags = Vec::new();
        for (on, name) in [
            (info.encrypt(), "encrypt"),
            (info.decrypt(), "decrypt"),
            (info.digest(), "digest"),
            (info.sign(), "sign"),
            (info.verify(), "verify"),
            (info.generate(), "generate"),
            (info.generate_key_pair(), "generate_key_pair"),
            (info.wrap(), "wrap"),
            (info.unwrap(), "unwrap"),
            (info.derive(), "derive"),
            (info.message_encrypt(), "message_encrypt"),
            (info.message_decrypt(), "message_decrypt"),
        ] {
            if on {
                flags.push(name);
            }
        }
        let sizes = format!("{}-{}", info.min_key_size(), info.max_key_size());
        rows.push(vec![m.to_string(), sizes, flags.join(",")]);
        js.push(json!({
            "mechanism": m.to_string(),
            "value": *m,
            "min_key_size": info.min_key_size(),
            "max_key_size": info.max_key_size(),
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
