//! The private OpenSSL library context every Keyward algorithm is fetched from.

use std::sync::LazyLock;

use openssl::lib_ctx::{LibCtx, LibCtxRef};
use openssl::provider::Provider;

use crate::{Error, Result};

struct Private {
    ctx: LibCtx,
    // Kept loaded for the life of the process; dropping it would unload the provider.
    _default: Provider,
}

static PRIVATE: LazyLock<std::result::Result<Private, String>> = LazyLock::new(|| {
    let ctx = LibCtx::new().map_err(|e| e.to_string())?;
    let default = Provider::load(Some(&ctx), "default").map_err(|e| e.to_string())?;
    Ok(Private {
        ctx,
        _default: default,
    })
});

/// The private library context, created on first use with only the default provider loaded.
pub fn libctx() -> Result<&'static LibCtxRef> {
    match &*PRIVATE {
        Ok(p) => Ok(&p.ctx),
        Err(e) => Err(Error(format!(
            "cannot create the private OpenSSL context: {e}"
        ))),
    }
}
