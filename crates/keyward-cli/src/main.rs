//! `keyward`: manage PKCS#11 tokens, keys, certificates and data objects by their PKCS#11 URIs
//! (RFC 7512), with Keyward's module or any other. It talks to the module only through the
//! PKCS#11 API (the `cryptoki` crate), never reads a PIN from its arguments, and never
//! exports a sensitive value.

// Only `raw` (the calls cryptoki cannot make) may use `unsafe`.
#![deny(unsafe_code)]

mod cmd;
mod error;
mod io;
mod manifest;
mod module;
mod pin;
mod raw;
mod select;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::error::EXIT_CODES;
use crate::select::Global;

const MAIN_EXAMPLES: &str = "\
Examples:
  keyward token init --label device                 # asks for the SO PIN
  keyward pin set 'pkcs11:token=device'             # sets the user PIN (as the SO)
  keyward key generate ec:p256 'pkcs11:token=device;object=identity'
  keyward list 'pkcs11:token=device' --json
  keyward export 'pkcs11:token=device;object=identity;type=public' -o identity.pem

PINs come from --pin-source FILE / --so-pin-source FILE (first line), KEYWARD_PIN /
KEYWARD_SO_PIN, the URI's pin-value or pin-source, else a prompt that does not echo.";

/// Manage PKCS#11 tokens and their objects by PKCS#11 URI.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about, after_help = MAIN_EXAMPLES, after_long_help = format!("{MAIN_EXAMPLES}\n\n{EXIT_CODES}"))]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The PKCS#11 module to load (default: Keyward's libkeyward_pkcs11.so next to this
    /// program or in the standard module directories)
    #[arg(long, global = true, env = "KEYWARD_MODULE", value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// Read the user PIN from the first line of FILE (or set KEYWARD_PIN)
    #[arg(long, global = true, value_name = "FILE")]
    pub pin_source: Option<PathBuf>,
    /// Read the SO PIN from the first line of FILE (or set KEYWARD_SO_PIN)
    #[arg(long, global = true, value_name = "FILE")]
    pub so_pin_source: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the module's slots and the tokens in them
    #[command(
        after_help = "Example:\n  keyward slots\n  keyward --module /usr/lib/softhsm/libsofthsm2.so slots"
    )]
    Slots(cmd::slots::SlotsArgs),
    /// Initialise tokens and show their information
    #[command(subcommand)]
    Token(cmd::token::TokenCmd),
    /// Set, change and unlock PINs
    #[command(subcommand)]
    Pin(cmd::pin::PinCmd),
    /// Generate keys inside a token
    #[command(subcommand)]
    Key(cmd::key::KeyCmd),
    /// List objects with their URIs
    #[command(
        after_help = "Examples:\n  keyward list\n  keyward list 'pkcs11:token=device;type=private' --login\n  keyward list --json | jq -r '.[].uri'"
    )]
    List(cmd::list::ListArgs),
    /// Delete the object a URI names
    #[command(
        after_help = "Examples:\n  keyward delete 'pkcs11:token=device;object=old;type=cert'\n  keyward delete 'pkcs11:token=device;id=%01' --all   # a key pair and its certificate"
    )]
    Delete(cmd::delete::DeleteArgs),
    /// List the mechanisms a token supports
    #[command(after_help = "Example:\n  keyward mechanisms 'pkcs11:token=device'")]
    Mechanisms(cmd::mechanisms::MechanismsArgs),
    /// Export a public key (SPKI), a certificate or a data object; never a secret
    #[command(
        after_help = "Examples:\n  keyward export 'pkcs11:token=device;object=identity;type=public' -o identity.pem\n  keyward export 'pkcs11:token=device;object=identity;type=cert' --der -o identity.der\n  keyward export 'pkcs11:token=device;object=serial;type=data' --login"
    )]
    Export(cmd::export::ExportArgs),
    /// Import keys, certificates, PKCS#12 bundles and data objects
    #[command(
        after_help = "Examples:\n  keyward import key.pem 'pkcs11:token=device;object=tls' --id 01\n  keyward import cert.pem 'pkcs11:token=device;object=tls' --id 01\n  KEYWARD_IMPORT_PASSWORD=secret keyward import bundle.p12 'pkcs11:token=device;object=tls'\n  keyward import serial.bin 'pkcs11:token=device;object=serial' --data"
    )]
    Import(cmd::import::ImportArgs),
    /// Sign data (or MAC it) with a key inside the token
    #[command(after_help = cmd::sign::SIGN_HELP)]
    Sign(cmd::sign::SignArgs),
    /// Verify a signature (or MAC) inside the token
    #[command(after_help = cmd::verify::VERIFY_HELP)]
    Verify(cmd::verify::VerifyArgs),
    /// Write a PKCS#10 certification request signed inside the token
    #[command(after_help = cmd::csr::CSR_HELP)]
    Csr(cmd::csr::CsrArgs),
    /// Make certificates signed inside the token
    #[command(subcommand)]
    Cert(cmd::cert::CertCmd),
    /// Encrypt with a key inside the token (AES-GCM, RSA-OAEP)
    #[command(after_help = cmd::encrypt::ENCRYPT_HELP)]
    Encrypt(cmd::encrypt::EncryptArgs),
    /// Decrypt with a key inside the token
    #[command(after_help = cmd::decrypt::DECRYPT_HELP)]
    Decrypt(cmd::decrypt::DecryptArgs),
    /// Hash data with the token
    #[command(after_help = cmd::digest::DIGEST_HELP)]
    Digest(cmd::digest::DigestArgs),
    /// Agree on a secret with a peer's public key (ECDH, X25519) into a new token key
    #[command(after_help = cmd::derive::DERIVE_HELP)]
    Derive(cmd::derive::DeriveArgs),
    /// Provision tokens from a manifest: declarative, idempotent, resumable
    #[command(after_help = cmd::provision::PROVISION_HELP)]
    Provision(cmd::provision::ProvisionArgs),
    /// Print a shell completion script
    #[command(after_help = "Example:\n  keyward completions bash > /etc/bash_completion.d/keyward")]
    Completions(cmd::completions::CompletionsArgs),
    /// Write man pages for keyward and its subcommands into a directory
    #[command(hide = true, after_help = "Example:\n  keyward man target/man")]
    Man(cmd::completions::ManArgs),
}

fn run(cli: Cli) -> error::Result<()> {
    let g = Global {
        module: cli.global.module,
        pin_source: cli.global.pin_source,
        so_pin_source: cli.global.so_pin_source,
    };
    match cli.command {
        Command::Slots(a) => cmd::slots::run(&g, a),
        Command::Token(c) => cmd::token::run(&g, c),
        Command::Pin(c) => cmd::pin::run(&g, c),
        Command::Key(c) => cmd::key::run(&g, c),
        Command::List(a) => cmd::list::run(&g, a),
        Command::Delete(a) => cmd::delete::run(&g, a),
        Command::Mechanisms(a) => cmd::mechanisms::run(&g, a),
        Command::Export(a) => cmd::export::run(&g, a),
        Command::Import(a) => cmd::import::run(&g, a),
        Command::Sign(a) => cmd::sign::run(&g, a),
        Command::Verify(a) => cmd::verify::run(&g, a),
        Command::Csr(a) => cmd::csr::run(&g, a),
        Command::Cert(c) => cmd::cert::run(&g, c),
        Command::Encrypt(a) => cmd::encrypt::run(&g, a),
        Command::Decrypt(a) => cmd::decrypt::run(&g, a),
        Command::Digest(a) => cmd::digest::run(&g, a),
        Command::Derive(a) => cmd::derive::run(&g, a),
        Command::Provision(a) => cmd::provision::run(&g, a),
        Command::Completions(a) => cmd::completions::completions(a),
        Command::Man(a) => cmd::completions::man(a),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help and version to stdout with exit 0, usage errors to stderr.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward: {e}");
            ExitCode::from(e.exit as u8)
        }
    }
}
