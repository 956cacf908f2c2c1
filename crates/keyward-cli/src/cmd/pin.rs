//! `keyward pin set|change|unlock`: the user PIN set or reset by the SO (C_InitPIN), and a
//! PIN changed by its owner (C_SetPIN).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use cryptoki::error::RvError;
use cryptoki::session::UserType;

use crate::error::{Error, Result, rv_of};
use crate::pin::{self, Sources};
use crate::select::{App, Global, parse_uri};

#[derive(Debug, Subcommand)]
pub enum PinCmd {
    /// Set the user PIN of a new token (as the SO)
    #[command(
        after_help = "Example:\n  keyward pin set 'pkcs11:token=device' --so-pin-source so.pin --new-pin-source user.pin"
    )]
    Set(PinArgs),
    /// Change your own PIN (the user PIN, or the SO PIN with --so)
    #[command(
        after_help = "Examples:\n  keyward pin change 'pkcs11:token=device' --pin-source old.pin --new-pin-source new.pin\n  keyward pin change 'pkcs11:token=device' --so"
    )]
    Change(ChangeArgs),
    /// Reset a locked (or forgotten) user PIN to a new one (as the SO)
    #[command(
        after_help = "Example:\n  keyward pin unlock 'pkcs11:token=device' --so-pin-source so.pin --new-pin-source user.pin"
    )]
    Unlock(PinArgs),
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// The token (default: the only initialised token)
    pub uri: Option<String>,
    /// Read the new PIN from the first line of FILE (or set KEYWARD_NEW_PIN)
    #[arg(long, value_name = "FILE")]
    pub new_pin_source: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    pub pin: PinArgs,
    /// Change the SO PIN instead of the user PIN
    #[arg(long)]
    pub so: bool,
}

fn new_pin(a: &PinArgs) -> Result<pin::Secret> {
    Sources {
        file: a.new_pin_source.as_deref(),
        env: Some(pin::ENV_NEW),
        prompt: "New PIN: ",
        confirm: true,
        ..Default::default()
    }
    .get()
}

pub fn run(g: &Global, c: PinCmd) -> Result<()> {
    match c {
        PinCmd::Set(a) => init_pin(g, a, "set"),
        PinCmd::Unlock(a) => init_pin(g, a, "unlocked"),
        PinCmd::Change(a) => change(g, a),
    }
}

fn init_pin(g: &Global, a: PinArgs, done: &str) -> Result<()> {
    let uri = a.uri.as_deref().map(parse_uri).transpose()?;
    let app = App::open(g, uri.as_ref())?;
    let t = app.token(uri.as_ref())?;
    let s = app.session(&t, true)?;
    app.login(&s, &t, UserType::So, &app.so_pin_sources(false))?;
    let new = new_pin(&a)?;
    s.init_pin(&pin::auth(&new))
        .map_err(|e| Error::ck("setting the user PIN", e))?;
    crate::io::print(&format!("user PIN {done} on {}\n", t.uri()))
}

fn change(g: &Global, a: ChangeArgs) -> Result<()> {
    let uri = a.pin.uri.as_deref().map(parse_uri).transpose()?;
    let app = App::open(g, uri.as_ref())?;
    let t = app.token(uri.as_ref())?;
    let s = app.session(&t, true)?;
    let (who, old_src) = if a.so {
        (UserType::So, app.so_pin_sources(false))
    } else {
        (UserType::User, app.user_pin_sources(uri.as_ref()))
    };
    // C_SetPIN changes the PIN of whoever is logged in, the user's when nobody is; the SO
    // must log in first.
    let old = old_src.get()?;
    if a.so {
        app.login_with(&s, &t, who, &old)?;
    }
    let new = new_pin(&a.pin)?;
    match s.set_pin(&pin::auth(&old), &pin::auth(&new)) {
        Ok(()) => {}
        Err(e) if rv_of(&e) == Some(RvError::PinIncorrect) => {
            return Err(Error::pin("wrong current PIN (CKR_PIN_INCORRECT)")
                .hint("check the PIN source; each wrong attempt counts towards locking the PIN"));
        }
        Err(e) => return Err(Error::ck("changing the PIN", e)),
    }
    let whose = if a.so { "SO" } else { "user" };
    crate::io::print(&format!("{whose} PIN changed on {}\n", t.uri()))
}
