//! OTA update tooling with a signing key in the token: RAUC signs a bundle with a key and
//! certificate named by PKCS#11 URIs (through OpenSSL's PKCS#11 engine); the bundle verifies
//! against the CA keyring and not against another.

mod common;

use common::Mode;
use common::apps::*;

/// A RAUC bundle signed in the token verifies with `rauc info --keyring`.
fn rauc_signs_a_bundle_in_the_token(mode: Mode) {
    let d = Device::new(mode);
    // RAUC checks the signer for S/MIME use: no TLS-only extended key usage.
    let k = d.key_with_cert_ext(
        "ec:p256",
        "ota-signing",
        "0a",
        "Keyward OTA signer",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    );
    let content = d.path("bundle");
    std::fs::create_dir(&content).unwrap();
    std::fs::write(content.join("rootfs.img"), b"root file system image 1.0\n").unwrap();
    std::fs::write(
        content.join("manifest.raucm"),
        "[update]\ncompatible=keyward-device\nversion=1.0\n\n[image.rootfs]\nfilename=rootfs.img\n",
    )
    .unwrap();
    let bundle = d.p("update.raucb");
    require("mksquashfs");
    let out = run_ok(
        d.command("rauc")
            .env("RAUC_PKCS11_MODULE", d.module())
            .env("RAUC_PKCS11_PIN", d.pin())
            .arg("bundle")
            .arg(format!("--cert={};type=cert", k.uri))
            .arg(format!("--key={};type=private", k.uri))
            .arg(&content)
            .arg(&bundle),
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(std::path::Path::new(&bundle).exists(), "{log}");

    // Verified against the CA that issued the token's certificate.
    let info = run_ok(
        d.command("rauc")
            .arg("info")
            .arg(format!("--keyring={}", d.ca.display()))
            .arg(&bundle),
    );
    let all = format!("{}{}", text(&info), String::from_utf8_lossy(&info.stderr));
    assert!(
        all.contains("Verified detached signature by 'CN = Keyward OTA signer'"),
        "{all}"
    );
    assert!(all.contains("Compatible: \t'keyward-device'"), "{all}");

    // The signer's public key in the bundle is the token's key.
    let sig = d.p("bundle.sig");
    run_ok(
        d.command("rauc")
            .arg("extract-signature")
            .arg(format!("--keyring={}", d.ca.display()))
            .arg(&bundle)
            .arg(&sig),
    );
    let signer = d.p("signer.pem");
    run_ok(d.command("openssl").args([
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &sig,
        "-print_certs",
        "-out",
        &signer,
    ]));
    let spki = run_ok(
        d.command("openssl")
            .args(["x509", "-in", &signer, "-noout", "-pubkey"]),
    );
    let token_public = std::fs::read_to_string(&k.public).unwrap();
    assert_eq!(text(&spki), token_public);

    // Another keyring refuses it.
    let other = make_ca(d.path("").as_path(), "other-ca", "Other CA");
    let refused = d
        .command("rauc")
        .arg("info")
        .arg(format!("--keyring={}", other.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("signature verification failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

both_modes!(rauc_signs_a_bundle_in_the_token);
