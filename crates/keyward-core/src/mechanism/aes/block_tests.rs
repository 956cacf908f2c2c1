//! AES block-mode and CMAC tests: NIST SP 800-38A and RFC 4493 vectors through the operation
//! interface, multi-part splits, length, padding and parameter errors with their exact codes.

use super::*;
use crate::error::Error;
use crate::mechanism::registry;
use crate::types::AttrValue;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn key(value: &[u8]) -> Object {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES));
    a.set(CKA_VALUE, AttrValue::bytes(value));
    Object::new(a)
}

fn mech(ty: CK_MECHANISM_TYPE, params: MechParams) -> Mechanism {
    Mechanism { mech: ty, params }
}

fn iv(s: &str) -> MechParams {
    MechParams::Bytes(h(s))
}

/// Run a cipher over `data` cut into parts of the given sizes (cycled), checking every
/// output against the announced bound.
fn cipher(
    encrypt: bool,
    m: &Mechanism,
    k: &Object,
    data: &[u8],
    sizes: &[usize],
) -> Result<Vec<u8>> {
    let family = registry().get(m.mech)?;
    let mut op = if encrypt {
        family.encrypt_init(m, k)?
    } else {
        family.decrypt_init(m, k)?
    };
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        let (part, tail) = rest.split_at(n);
        let bound = op.output_len(part.len(), false);
        let o = op.update(part)?;
        assert!(o.len() <= bound, "{} > {bound}", o.len());
        out.extend_from_slice(&o);
        rest = tail;
        i += 1;
    }
    let bound = op.output_len(0, true);
    let o = op.finish()?;
    assert!(o.len() <= bound, "final {} > {bound}", o.len());
    out.extend_from_slice(&o);
    Ok(out)
}

fn one_shot(encrypt: bool, m: &Mechanism, k: &Object, data: &[u8]) -> Result<Vec<u8>> {
    let family = registry().get(m.mech)?;
    let mut op = if encrypt {
        family.encrypt_init(m, k)?
    } else {
        family.decrypt_init(m, k)?
    };
    let bound = op.output_len(data.len(), true);
    let out = op.one_shot(data)?;
    assert!(out.len() <= bound);
    Ok(out.to_vec())
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> Code {
    let e: Error = r.unwrap_err();
    e.code()
}

// NIST SP 800-38A appendix F: AES-128 key, the four-block plaintext.
const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const K256: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
const PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
const CBC_IV: &str = "000102030405060708090a0b0c0d0e0f";
const CTR_BLOCK: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const SPLITS: [&[usize]; 4] = [&[1], &[7], &[13, 3], &[31, 17, 5]];

fn check_vector(m: &Mechanism, k: &str, ct: &str) {
    let k = key(&h(k));
    assert_eq!(hex::encode(one_shot(true, m, &k, &h(PT)).unwrap()), ct);
    assert_eq!(one_shot(false, m, &k, &h(ct)).unwrap(), h(PT));
    for sizes in SPLITS {
        assert_eq!(
            hex::encode(cipher(true, m, &k, &h(PT), sizes).unwrap()),
            ct,
            "{sizes:?}"
        );
        assert_eq!(
            cipher(false, m, &k, &h(ct), sizes).unwrap(),
            h(PT),
            "{sizes:?}"
        );
    }
}

#[test]
fn sp800_38a_f1_ecb() {
    let m = mech(CKM_AES_ECB, MechParams::None);
    check_vector(
        &m,
        K128,
        "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4",
    );
    check_vector(
        &m,
        K256,
        "f3eed1bdb5d2a03c064b5a7e3db181f8591ccb10d410ed26dc5ba74a31362870b6ed21b99ca6f4f9f153e7b1beafed1d23304b7a39f9f3ff067d8d8f9e24ecc7",
    );
}

#[test]
fn sp800_38a_f2_cbc() {
    let m = mech(CKM_AES_CBC, iv(CBC_IV));
    check_vector(
        &m,
        K128,
        "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
    );
    check_vector(
        &m,
        K256,
        "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
    );
}

#[test]
fn sp800_38a_f5_ctr() {
    let m = mech(CKM_AES_CTR, iv(CTR_BLOCK));
    check_vector(
        &m,
        K128,
        "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee",
    );
    // CTR takes any length and streams byte for byte.
    let k = key(&h(K128));
    let ct = cipher(true, &m, &k, &h(PT)[..37], &[1]).unwrap();
    assert_eq!(
        hex::encode(&ct),
        &"874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edb"[..74]
    );
}

#[test]
fn cbc_pad_round_trips_and_holds_back_the_last_block() {
    let k = key(&h(K128));
    let m = mech(CKM_AES_CBC_PAD, iv(CBC_IV));
    let raw = mech(CKM_AES_CBC, iv(CBC_IV));
    for len in [0usize, 1, 15, 16, 17, 33, 64] {
        let pt = &h(PT)[..len];
        let ct = one_shot(true, &m, &k, pt).unwrap();
        assert_eq!(ct.len(), (len / 16 + 1) * 16);
        // The padding is PKCS#7, seen through unpadded CBC; whole blocks match F.2.1.
        let inner = one_shot(false, &raw, &k, &ct).unwrap();
        let pad = 16 - len % 16;
        assert_eq!(&inner[..len], pt);
        assert!(inner[len..].iter().all(|b| *b as usize == pad));
        for sizes in SPLITS {
            assert_eq!(cipher(true, &m, &k, pt, sizes).unwrap(), ct);
            assert_eq!(cipher(false, &m, &k, &ct, sizes).unwrap(), pt);
        }
    }
    let mut op = registry()
        .get(CKM_AES_CBC_PAD)
        .unwrap()
        .decrypt_init(&m, &k)
        .unwrap();
    let ct = one_shot(true, &m, &k, &h(PT)[..20]).unwrap();
    assert_eq!(op.update(&ct).unwrap().len(), 16);
    assert_eq!(&op.finish().unwrap()[..], &h(PT)[16..20]);
}

#[test]
fn bad_padding_is_encrypted_data_invalid() {
    let k = key(&h(K128));
    let raw = mech(CKM_AES_CBC, iv(CBC_IV));
    let pad = mech(CKM_AES_CBC_PAD, iv(CBC_IV));
    // Plaintexts whose last block is not valid PKCS#7, encrypted without padding.
    let mut zero_pad = vec![0x41u8; 32];
    zero_pad[31] = 0;
    let mut too_long = vec![0x41u8; 16];
    too_long[15] = 17;
    let mut mixed = vec![0x41u8; 16];
    mixed[13..].copy_from_slice(&[2, 3, 3]);
    for pt in [zero_pad, too_long, mixed] {
        let ct = one_shot(true, &raw, &k, &pt).unwrap();
        assert_eq!(
            code(one_shot(false, &pad, &k, &ct)),
            Code::EncryptedDataInvalid
        );
        assert_eq!(
            code(cipher(false, &pad, &k, &ct, &[5])),
            Code::EncryptedDataInvalid
        );
    }
}

#[test]
fn partial_blocks_have_exact_codes() {
    let k = key(&h(K128));
    for m in [
        mech(CKM_AES_ECB, MechParams::None),
        mech(CKM_AES_CBC, iv(CBC_IV)),
    ] {
        assert_eq!(code(one_shot(true, &m, &k, &[0u8; 17])), Code::DataLenRange);
        assert_eq!(
            code(cipher(true, &m, &k, &[0u8; 15], &[4])),
            Code::DataLenRange
        );
        assert_eq!(
            code(one_shot(false, &m, &k, &[0u8; 31])),
            Code::EncryptedDataLenRange
        );
        assert!(one_shot(true, &m, &k, &[]).unwrap().is_empty());
    }
    let m = mech(CKM_AES_CBC_PAD, iv(CBC_IV));
    assert_eq!(
        code(one_shot(false, &m, &k, &[0u8; 20])),
        Code::EncryptedDataLenRange
    );
    assert_eq!(
        code(one_shot(false, &m, &k, &[])),
        Code::EncryptedDataLenRange
    );
}

#[test]
fn parameters_and_key_sizes_have_exact_codes() {
    let k = key(&h(K128));
    let enc = |m: Mechanism, k: &Object| {
        registry()
            .get(m.mech)
            .unwrap()
            .encrypt_init(&m, k)
            .map(|_| ())
    };
    let dec = |m: Mechanism, k: &Object| {
        registry()
            .get(m.mech)
            .unwrap()
            .decrypt_init(&m, k)
            .map(|_| ())
    };
    for ty in [CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_CTR] {
        for p in [
            MechParams::None,
            MechParams::Bytes(vec![0; 15]),
            MechParams::Bytes(vec![0; 17]),
            MechParams::Ulong(16),
        ] {
            assert_eq!(
                code(enc(mech(ty, p.clone()), &k)),
                Code::MechanismParamInvalid
            );
            assert_eq!(code(dec(mech(ty, p), &k)), Code::MechanismParamInvalid);
        }
    }
    assert_eq!(
        code(enc(mech(CKM_AES_ECB, iv(CBC_IV)), &k)),
        Code::MechanismParamInvalid
    );
    assert!(enc(mech(CKM_AES_ECB, MechParams::Bytes(Vec::new())), &k).is_ok());
    let short = key(&[0u8; 20]);
    assert_eq!(
        code(enc(mech(CKM_AES_CBC, iv(CBC_IV)), &short)),
        Code::KeySizeRange
    );
    assert_eq!(
        code(cmac(CKM_AES_CMAC, MechParams::None, &short, b"")),
        Code::KeySizeRange
    );
}

fn cmac(ty: CK_MECHANISM_TYPE, p: MechParams, k: &Object, data: &[u8]) -> Result<Vec<u8>> {
    let mut op = registry().get(ty)?.sign_init(&mech(ty, p), k)?;
    let len = op.sig_len();
    let out = op.one_shot(data)?;
    assert_eq!(out.len(), len);
    Ok(out.to_vec())
}

fn cmac_verify(
    ty: CK_MECHANISM_TYPE,
    p: MechParams,
    k: &Object,
    parts: &[&[u8]],
    sig: &[u8],
) -> Result<()> {
    let mut op = registry().get(ty)?.verify_init(&mech(ty, p), k)?;
    for part in parts {
        op.update(part)?;
    }
    op.finish(sig)
}

#[test]
fn rfc_4493_cmac_single_and_multi_part() {
    let k = key(&h(K128));
    let msg = h(PT);
    let vectors = [
        (0usize, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ];
    for (len, mac) in vectors {
        let data = &msg[..len];
        assert_eq!(
            hex::encode(cmac(CKM_AES_CMAC, MechParams::None, &k, data).unwrap()),
            mac
        );
        let mut op = registry()
            .get(CKM_AES_CMAC)
            .unwrap()
            .sign_init(&mech(CKM_AES_CMAC, MechParams::None), &k)
            .unwrap();
        for part in data.chunks(7) {
            op.update(part).unwrap();
        }
        assert_eq!(hex::encode(op.finish().unwrap()), mac);
        let parts: Vec<&[u8]> = data.chunks(5).collect();
        cmac_verify(CKM_AES_CMAC, MechParams::None, &k, &parts, &h(mac)).unwrap();
        let general = cmac(CKM_AES_CMAC_GENERAL, MechParams::Ulong(8), &k, data).unwrap();
        assert_eq!(hex::encode(general), &mac[..16]);
        cmac_verify(
            CKM_AES_CMAC_GENERAL,
            MechParams::Ulong(8),
            &k,
            &[data],
            &h(mac)[..8],
        )
        .unwrap();
    }
}

#[test]
fn cmac_errors_have_exact_codes() {
    let k = key(&h(K128));
    let good = h("070a16b46b4d4144f79bdd9dd04a287c");
    let data = &h(PT)[..16];
    let v = |p: MechParams, sig: &[u8]| cmac_verify(CKM_AES_CMAC_GENERAL, p, &k, &[data], sig);
    assert_eq!(
        code(cmac_verify(
            CKM_AES_CMAC,
            MechParams::None,
            &k,
            &[data],
            &good[..15]
        )),
        Code::SignatureLenRange
    );
    assert_eq!(
        code(v(MechParams::Ulong(4), &good[..5])),
        Code::SignatureLenRange
    );
    let mut bad = good.clone();
    bad[15] ^= 1;
    assert_eq!(
        code(cmac_verify(
            CKM_AES_CMAC,
            MechParams::None,
            &k,
            &[data],
            &bad
        )),
        Code::SignatureInvalid
    );
    assert_eq!(code(v(MechParams::Ulong(16), &bad)), Code::SignatureInvalid);
    assert_eq!(
        code(cmac_verify(
            CKM_AES_CMAC,
            MechParams::None,
            &k,
            &[&h(PT)[..15]],
            &good
        )),
        Code::SignatureInvalid
    );
    for p in [
        MechParams::Ulong(0),
        MechParams::Ulong(17),
        MechParams::None,
    ] {
        assert_eq!(
            code(cmac(CKM_AES_CMAC_GENERAL, p, &k, data)),
            Code::MechanismParamInvalid
        );
    }
    assert_eq!(
        code(cmac(CKM_AES_CMAC, MechParams::Ulong(16), &k, data)),
        Code::MechanismParamInvalid
    );
}

#[test]
fn mechanism_info_is_truthful() {
    for (ty, flags) in [
        (CKM_AES_ECB, CKF_ENCRYPT | CKF_DECRYPT),
        (CKM_AES_CBC, CKF_ENCRYPT | CKF_DECRYPT),
        (CKM_AES_CBC_PAD, CKF_ENCRYPT | CKF_DECRYPT),
        (CKM_AES_CTR, CKF_ENCRYPT | CKF_DECRYPT),
        (CKM_AES_CMAC, CKF_SIGN | CKF_VERIFY),
        (CKM_AES_CMAC_GENERAL, CKF_SIGN | CKF_VERIFY),
    ] {
        let m = registry().get(ty).unwrap();
        let info = m.info();
        assert_eq!(
            (info.min_key_size, info.max_key_size, info.flags),
            (16, 32, flags)
        );
        assert_eq!(m.key_types(), &[CKK_AES]);
    }
}
