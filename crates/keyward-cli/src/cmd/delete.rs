//! `keyward delete URI`: destroy the object a URI names (C_DestroyObject); several matches
//! need `--all`.

use clap::Args;

use crate::error::{Error, Result};
use crate::select::{self, App, Global, parse_uri};

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The object(s) to delete, e.g. 'pkcs11:token=device;object=old;type=cert'
    pub uri: String,
    /// Delete every object the URI matches (e.g. both halves of a key pair)
    #[arg(long)]
    pub all: bool,
}

pub fn run(g: &Global, a: DeleteArgs) -> Result<()> {
    let uri = parse_uri(&a.uri)?;
    if uri.object().is_none() && uri.id().is_none() && !a.all {
        return Err(Error::usage(
            "the URI names no object (object= or id=); add --all to delete every object it matches",
        ));
    }
    let app = App::open(g, Some(&uri))?;
    let (t, s) = app.user_session(Some(&uri), true, true)?;
    let found = select::objects(&s, Some(&uri))?;
    let doomed = if a.all {
        if found.is_empty() {
            return Err(Error::not_found(format!(
                "no object matches {}",
                select::shown(&uri)
            )));
        }
        found
    } else {
        vec![select::exactly_one(found, &t, &uri, true)?]
    };
    let mut out = String::new();
    for o in doomed {
        let name = o.uri(&t).to_string();
        s.destroy_object(o.handle)
            .map_err(|e| Error::ck(&format!("deleting {name}"), e))?;
        out.push_str(&format!("deleted {name}\n"));
    }
    crate::io::print(&out)
}
