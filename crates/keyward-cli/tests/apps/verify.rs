//! Independent checks of signatures made in the token: openssl with the exported public key
//! or the certificate, and the conversion of PKCS#11's raw ECDSA r||s to the DER openssl reads.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Does `openssl dgst -sha256 -verify` accept `sig` (DER for ECDSA) over `data` for the
/// public key in `key`? `key` is a SPKI PEM or, with `cert`, a certificate.
pub fn openssl_verifies(dir: &Path, key: &Path, cert: bool, sig: &Path, data: &Path) -> bool {
    let public = if cert {
        let spki = dir.join(format!(
            "{}.spki.pem",
            key.file_name().unwrap().to_string_lossy()
        ));
        let o = Command::new("openssl")
            .args(["x509", "-noout", "-pubkey", "-in"])
            .arg(key)
            .arg("-out")
            .arg(&spki)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "openssl x509 -pubkey {}: {}",
            key.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        spki
    } else {
        key.to_path_buf()
    };
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(sig)
        .arg(data)
        .current_dir(dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.success(),
        out.contains("Verified OK"),
        "openssl dgst: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.status.success()
}

/// ECDSA-Sig-Value (SEQUENCE of two INTEGERs) from PKCS#11's r||s.
pub fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    assert!(
        !raw.is_empty() && raw.len().is_multiple_of(2),
        "raw ECDSA signature of {} bytes",
        raw.len()
    );
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = der_integer(r);
    body.extend(der_integer(s));
    let mut out = vec![0x30];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

fn der_integer(be: &[u8]) -> Vec<u8> {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len() - 1);
    let mut v = be[start..].to_vec();
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    let mut out = vec![0x02];
    out.extend(der_len(v.len()));
    out.extend(v);
    out
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else if n < 0x100 {
        vec![0x81, n as u8]
    } else {
        vec![0x82, (n >> 8) as u8, n as u8]
    }
}
