//! `keyward token init|info|list`: create (or re-initialise) tokens and show them
//! (C_InitToken, C_GetTokenInfo).

use clap::{Args, Subcommand};
use serde_json::json;

use crate::error::{Error, Result};
use crate::pin;
use crate::select::{App, Global, parse_uri};

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Initialise a token with a label and an SO PIN (erases a token that already has objects)
    #[command(
        after_help = "Examples:\n  keyward token init --label device --so-pin-source so.pin\n  KEYWARD_SO_PIN=... keyward token init --label device --slot 0\n  keyward token init --label fresh 'pkcs11:token=old'      # re-initialise: erases 'old'"
    )]
    Init(InitArgs),
    /// Show one token's information
    #[command(after_help = "Example:\n  keyward token info 'pkcs11:token=device'")]
    Info(InfoArgs),
    /// List the initialised tokens with their URIs
    #[command(after_help = "Example:\n  keyward token list --json")]
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The new token's label (at most 32 bytes)
    #[arg(long)]
    pub label: String,
    /// The slot to initialise (default: the first slot holding an uninitialised token)
    #[arg(long, value_name = "ID", conflicts_with = "uri")]
    pub slot: Option<u64>,
    /// An initialised token to re-initialise (its SO PIN is needed; all its objects are erased)
    pub uri: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The token (default: the only initialised token)
    pub uri: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, c: TokenCmd) -> Result<()> {
    match c {
        TokenCmd::Init(a) => init(g, a),
        TokenCmd::Info(a) => info(g, a),
        TokenCmd::List(a) => list(g, a),
    }
}

fn init(g: &Global, a: InitArgs) -> Result<()> {
    if a.label.is_empty() || a.label.len() > 32 {
        return Err(Error::usage("the label must be 1 to 32 bytes"));
    }
    let uri = a.uri.as_deref().map(parse_uri).transpose()?;
    let app = App::open(g, uri.as_ref())?;
    let tokens = app.tokens()?;
    let slot = if let Some(id) = a.slot {
        tokens
            .iter()
            .find(|t| t.slot.id() == id)
            .map(|t| t.slot)
            .ok_or_else(|| {
                Error::not_found(format!("no token in slot {id}"))
                    .hint("list slots with: keyward slots")
            })?
    } else if uri.is_some() {
        app.token(uri.as_ref())?.slot
    } else {
        tokens
            .iter()
            .find(|t| !t.initialized)
            .map(|t| t.slot)
            .ok_or_else(|| {
                Error::not_found("no slot holds an uninitialised token")
                    .hint("name one to re-initialise with a URI or --slot")
            })?
    };
    let so = app.so_pin_sources(true).get()?;
    app.p11
        .init_token(slot, &pin::auth(&so), &a.label)
        .map_err(|e| Error::ck(&format!("initialising the token in slot {}", slot.id()), e))?;
    // Some modules (Keyward, SoftHSMv2) move a new token to a slot of its own.
    let made = app
        .tokens()?
        .into_iter()
        .find(|t| t.initialized && t.label == a.label);
    match made {
        Some(t) => crate::io::print(&format!("{}\n", t.uri())),
        None => crate::io::print(&format!("initialised the token in slot {}\n", slot.id())),
    }
}

fn info(g: &Global, a: InfoArgs) -> Result<()> {
    let uri = a.uri.as_deref().map(parse_uri).transpose()?;
    let app = App::open(g, uri.as_ref())?;
    let t = app.token(uri.as_ref())?;
    let ti = app
        .p11
        .get_token_info(t.slot)
        .map_err(|e| Error::ck("reading token information", e))?;
    let flags: Vec<(&str, bool)> = vec![
        ("rng", ti.rng()),
        ("write_protected", ti.write_protected()),
        ("login_required", ti.login_required()),
        ("user_pin_initialized", ti.user_pin_initialized()),
        (
            "protected_authentication_path",
            ti.protected_authentication_path(),
        ),
        ("token_initialized", ti.token_initialized()),
        ("user_pin_count_low", ti.user_pin_count_low()),
        ("user_pin_final_try", ti.user_pin_final_try()),
        ("user_pin_locked", ti.user_pin_locked()),
        ("user_pin_to_be_changed", ti.user_pin_to_be_changed()),
        ("so_pin_count_low", ti.so_pin_count_low()),
        ("so_pin_final_try", ti.so_pin_final_try()),
        ("so_pin_locked", ti.so_pin_locked()),
        ("so_pin_to_be_changed", ti.so_pin_to_be_changed()),
    ];
    let on: Vec<&str> = flags.iter().filter(|(_, v)| *v).map(|(n, _)| *n).collect();
    if a.json {
        let v = json!({
            "uri": t.uri().to_string(),
            "slot_id": t.slot.id(),
            "label": t.label,
            "manufacturer": t.manufacturer,
            "model": t.model,
            "serial": t.serial,
            "flags": on,
            "min_pin_len": ti.min_pin_length(),
            "max_pin_len": ti.max_pin_length(),
            "hardware_version": ti.hardware_version().to_string(),
            "firmware_version": ti.firmware_version().to_string(),
        });
        return super::list::print_json(&v);
    }
    let text = format!(
        "URI:           {}\nslot:          {}\nlabel:         {}\nmanufacturer:  {}\nmodel:         {}\nserial:        {}\nflags:         {}\nPIN length:    {}-{}\nhardware:      {}\nfirmware:      {}\n",
        t.uri(),
        t.slot.id(),
        t.label,
        t.manufacturer,
        t.model,
        t.serial,
        on.join(", "),
        ti.min_pin_length(),
        ti.max_pin_length(),
        ti.hardware_version(),
        ti.firmware_version(),
    );
    crate::io::print(&text)
}

fn list(g: &Global, a: ListArgs) -> Result<()> {
    let app = App::open(g, None)?;
    let tokens: Vec<_> = app
        .tokens()?
        .into_iter()
        .filter(|t| t.initialized)
        .collect();
    if a.json {
        let v: Vec<_> = tokens
            .iter()
            .map(|t| {
                json!({
                    "uri": t.uri().to_string(),
                    "slot_id": t.slot.id(),
                    "label": t.label,
                    "manufacturer": t.manufacturer,
                    "model": t.model,
                    "serial": t.serial,
                    "user_pin_initialized": t.user_pin_initialized,
                })
            })
            .collect();
        return super::list::print_json(&v);
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.slot.id().to_string(),
                t.label.clone(),
                t.serial.clone(),
                t.uri().to_string(),
            ]
        })
        .collect();
    crate::io::print(&super::slots::table(
        &["SLOT", "LABEL", "SERIAL", "URI"],
        &rows,
    ))
}
