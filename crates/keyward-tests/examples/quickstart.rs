//! Quick start: configure Keyward for a local directory, initialise a token (or reuse it),
//! generate an EC P-256 key, sign a message, verify the signature through the module, and
//! verify it again independently with OpenSSL.
//!
//! Usage: `quickstart [MODULE] [DIRECTORY]` (defaults: target/release/libkeyward_pkcs11.so
//! and ./keyward-demo). `scripts/demo` builds the module and runs this.

use std::error::Error;
use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;

const LABEL: &str = "demo";
const SO_PIN: &str = "demo-so-pin";
const USER_PIN: &str = "demo-user-pin";
const KEY_LABEL: &[u8] = b"demo-p256";
/// DER of the OID prime256v1.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let module = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/release/libkeyward_pkcs11.so".into()),
    );
    let dir = std::path::absolute(args.next().unwrap_or_else(|| "keyward-demo".into()))?;

    // 1. Configuration: tokens live under the demo directory.
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("keyward.toml");
    std::fs::write(
        &conf,
        format!(
            "storage_dir = \"{}\"\nlog_level = \"warn\"\npin_retry_limit = 10\n",
            dir.join("tokens").display()
        ),
    )?;
    // SAFETY: single-threaded at this point, before the module is loaded.
    unsafe { std::env::set_var("KEYWARD_CONF", &conf) };
    println!("config      {}", conf.display());

    // 2. Load the module and find (or create) the token.
    let p11 = Pkcs11::new(&module)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let info = p11.get_library_info()?;
    println!(
        "module      {} ({}, PKCS#11 {})",
        module.display(),
        info.library_description(),
        info.cryptoki_version()
    );
    let existing = p11
        .get_slots_with_initialized_token()?
        .into_iter()
        .find(|s| p11.get_token_info(*s).is_ok_and(|t| t.label() == LABEL));
    let slot = match existing {
        Some(slot) => {
            println!("token       reusing \"{LABEL}\" in slot {slot}");
            slot
        }
        None => {
            let free = p11
                .get_all_slots()?
                .into_iter()
                .find(|s| p11.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
                .ok_or("no free slot")?;
            p11.init_token(free, &AuthPin::from(SO_PIN), LABEL)?;
            let s = p11.open_rw_session(free)?;
            s.login(UserType::So, Some(&AuthPin::from(SO_PIN)))?;
            s.init_pin(&AuthPin::from(USER_PIN))?;
            s.logout()?;
            println!("token       created \"{LABEL}\" in slot {free}");
            free
        }
    };
    let t = p11.get_token_info(slot)?;
    println!(
        "            serial {}, model {}",
        t.serial_number(),
        t.model()
    );

    // 3. Log in and find (or generate) the P-256 key pair.
    let session = p11.open_rw_session(slot)?;
    session.login(UserType::User, Some(&AuthPin::from(USER_PIN)))?;
    let find = |class| {
        session.find_objects(&[
            Attribute::Class(class),
            Attribute::Label(KEY_LABEL.to_vec()),
        ])
    };
    let (public, private) = match (
        find(ObjectClass::PUBLIC_KEY)?.first(),
        find(ObjectClass::PRIVATE_KEY)?.first(),
    ) {
        (Some(p), Some(k)) => {
            println!("key         reusing EC P-256 key \"demo-p256\"");
            (*p, *k)
        }
        _ => {
            let pair = session.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::EcParams(P256.to_vec()),
                    Attribute::Verify(true),
                    Attribute::Label(KEY_LABEL.to_vec()),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Sign(true),
                    Attribute::Label(KEY_LABEL.to_vec()),
                ],
            )?;
            println!(
                "key         generated EC P-256 key \"demo-p256\" (private key never leaves the token)"
            );
            pair
        }
    };

    // 4. Sign and verify through the module.
    let message = b"Hello from Keyward";
    let signature = session.sign(&Mechanism::EcdsaSha256, private, message)?;
    println!(
        "sign        ECDSA-SHA256 over {:?}: {} bytes\n            {}",
        String::from_utf8_lossy(message),
        signature.len(),
        hex::encode(&signature)
    );
    session.verify(&Mechanism::EcdsaSha256, public, message, &signature)?;
    println!("verify      the module accepts the signature");

    // 5. Verify independently with OpenSSL from the exported public point.
    let point_der = session
        .get_attributes(public, &[AttributeType::EcPoint])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(v) => Some(v),
            _ => None,
        })
        .ok_or("no CKA_EC_POINT")?;
    // CKA_EC_POINT is a DER OCTET STRING holding the 65-byte uncompressed point.
    let point = point_der
        .get(2..)
        .filter(|p| point_der.first() == Some(&0x04) && p.len() == 65)
        .ok_or("unexpected CKA_EC_POINT")?;
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let mut ctx = BigNumContext::new()?;
    let ec_point = EcPoint::from_bytes(&group, point, &mut ctx)?;
    let key = EcKey::from_public_key(&group, &ec_point)?;
    let sig = EcdsaSig::from_private_components(
        BigNum::from_slice(&signature[..32])?,
        BigNum::from_slice(&signature[32..])?,
    )?;
    let digest = hash(MessageDigest::sha256(), message)?;
    if !sig.verify(&digest, &key)? {
        return Err("OpenSSL rejects the signature".into());
    }
    println!("verify      OpenSSL accepts the signature with the exported public key");

    session.logout()?;
    drop(session);
    p11.finalize()?;
    println!(
        "done        run again to reuse the token; remove {} to start over",
        dir.display()
    );
    Ok(())
}
