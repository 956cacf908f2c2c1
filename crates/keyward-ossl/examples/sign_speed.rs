//! Signature throughput of `keyward_ossl::pkey` against `openssl speed` on the same machine.
//!
//! Run with `cargo run --release -p keyward-ossl --example sign_speed [seconds]`. The target is
//! at least 0.95× OpenSSL's own rate for ECDSA P-256 and RSA-2048, signing and verifying.

use std::process::Command;
use std::time::{Duration, Instant};

use keyward_ossl::pkey::{Curve, PKey};

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

/// (sign/s, verify/s) from `openssl speed -mr`: "+F2:i:bits:sign_rate:verify_rate" for RSA
/// and "+F4:…" for ECDSA.
fn openssl_speed(secs: u64, alg: &str, tag: &str) -> Option<(f64, f64)> {
    let out = Command::new("openssl")
        .args(["speed", "-mr", "-seconds", &secs.to_string(), alg])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(tag))?;
    let f: Vec<&str> = line.split(':').collect();
    let sign: f64 = f.get(3)?.parse().ok()?;
    let verify: f64 = f.get(4)?.parse().ok()?;
    Some((sign, verify))
}

fn report(name: &str, ours: (f64, f64), theirs: Option<(f64, f64)>) {
    match theirs {
        Some(t) => println!(
            "{name:<12} sign {:>9.0}/s vs openssl {:>9.0}/s ({:.3}x)   verify {:>9.0}/s vs {:>9.0}/s ({:.3}x)",
            ours.0,
            t.0,
            ours.0 / t.0,
            ours.1,
            t.1,
            ours.1 / t.1
        ),
        None => println!(
            "{name:<12} sign {:>9.0}/s   verify {:>9.0}/s (openssl speed unavailable)",
            ours.0, ours.1
        ),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);

    let ec = PKey::generate_ec(Curve::P256)?;
    let digest = [0x3cu8; 32];
    let sig = ec.ecdsa_sign_digest(&digest)?;
    let ours_ec = (
        rate(secs, || {
            let _ = ec.ecdsa_sign_digest(&digest);
        }),
        rate(secs, || {
            let _ = ec.ecdsa_verify_digest(&digest, &sig);
        }),
    );
    report(
        "ecdsa p256",
        ours_ec,
        openssl_speed(secs, "ecdsap256", "+F4:"),
    );

    let rsa = PKey::generate_rsa(2048, &[1, 0, 1])?;
    // `openssl speed` signs 36 bytes (an MD5+SHA-1 TLS 1.0 digest) with PKCS#1 v1.5 padding.
    let data = [0x5au8; 36];
    let sig = rsa.rsa_pkcs1_sign_raw(&data)?;
    let ours_rsa = (
        rate(secs, || {
            let _ = rsa.rsa_pkcs1_sign_raw(&data);
        }),
        rate(secs, || {
            let _ = rsa.rsa_pkcs1_verify_raw(&data, &sig);
        }),
    );
    report("rsa 2048", ours_rsa, openssl_speed(secs, "rsa2048", "+F2:"));
    Ok(())
}
