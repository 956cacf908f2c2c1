//! Signature throughput through the mechanism layer (sign_init + one_shot per signature, as
//! C_SignInit + C_Sign run it) next to the bare `keyward_ossl` key, to show what the layer
//! costs. Run with `cargo run --release -p keyward-core --example mech_speed [seconds]`.

use std::time::{Duration, Instant};

use cryptoki_sys::*;
use keyward_core::mechanism::registry;
use keyward_core::object::Object;
use keyward_core::types::{AttrValue, Attrs, Mechanism};

fn rate(secs: u64, mut op: impl FnMut()) -> f64 {
    let limit = Duration::from_secs(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < limit {
        for _ in 0..16 {
            op();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn private_key(
    gen_mech: CK_MECHANISM_TYPE,
    public_template: Attrs,
) -> Result<Object, Box<dyn std::error::Error>> {
    let (_, mut private) = registry()
        .get(gen_mech)
        .map_err(|e| e.to_string())?
        .generate_key_pair(&Mechanism::new(gen_mech), &public_template, &Attrs::new())
        .map_err(|e| e.to_string())?;
    private.set(CKA_CLASS, AttrValue::Ulong(CKO_PRIVATE_KEY));
    Ok(Object::new(private))
}

fn compare(name: &str, secs: u64, key: &Object, mech: CK_MECHANISM_TYPE, data: &[u8]) {
    let m = Mechanism::new(mech);
    let Ok(family) = registry().get(mech) else {
        return;
    };
    let layered = rate(secs, || {
        if let Ok(mut op) = family.sign_init(&m, key) {
            let _ = op.one_shot(data);
        }
    });
    let bare = match key.key_type() {
        Some(CKK_EC) => keyward_core::mechanism::ec::ec_key(key).map(|k| {
            rate(secs, || {
                let _ = k.ecdsa_sign_digest(data);
            })
        }),
        _ => keyward_core::mechanism::rsa::rsa_key(key).map(|k| {
            rate(secs, || {
                let _ = k.rsa_pkcs1_sign_raw(data);
            })
        }),
    };
    match bare {
        Ok(b) => println!(
            "{name:<12} mechanism {layered:>9.0}/s   bare key {b:>9.0}/s   ({:.3}x)",
            layered / b
        ),
        Err(e) => println!("{name}: {e}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut ec = Attrs::new();
    ec.set(
        CKA_EC_PARAMS,
        AttrValue::bytes(keyward_ossl::pkey::Curve::P256.oid_der()),
    );
    let ec_key = private_key(CKM_EC_KEY_PAIR_GEN, ec)?;
    compare("ecdsa p256", secs, &ec_key, CKM_ECDSA, &[0x3c; 32]);
    let mut rsa = Attrs::new();
    rsa.set(CKA_MODULUS_BITS, AttrValue::Ulong(2048));
    let rsa_key = private_key(CKM_RSA_PKCS_KEY_PAIR_GEN, rsa)?;
    compare("rsa 2048", secs, &rsa_key, CKM_RSA_PKCS, &[0x5a; 36]);
    Ok(())
}
