//! Implicit rejection: the draft's 2049-bit test vectors byte for byte, and every padding
//! branch against a plain (branching) reference written over the `openssl` crate's default
//! context, independent of this crate's HMAC and digest wrappers.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey as OsslPKey;
use openssl::rsa::Rsa;
use openssl::sign::Signer;

use super::*;
use crate::pkey::{RsaComponents, RsaCrt};

/// draft-irtf-cfrg-rsa-guidance appendix B.2: a 2049-bit key (k = 257, top byte 0x01).
const K2049: &str = "-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQFV+IlVahd18cen
eGpQsYvCjJ6Ybt5WZ8qzm4QSTpDrp1wdsIOsPkQ7upTcI1YPdeOoFpOipDvcdCbY
xOr+aMhd4P51f25Ju57UR+YCQwgA27BM6yLn+lehjTOPtmAmzbRn5wzAQOfTZ+9A
PHvx499iRlAJRjHyHq/S+1vJFf8EN5rNERL3MsC0ZgfBeNOKIPUu2lCfL5wEBdUQ
aegMz5QVVNBHBGdQXDz1QeoIl9/J9ADOyymP/HUzctn2kzrxdMxA7ZbUZwMXM7l/
jN3T+SvDoD6oV2xBfyQAe15PdQEQW1RN6frc3/rfmN+0uwW4GZ8/haz9kfepoJS5
o4P1BJCXAgMBAAECggEBARnCs/UKetYVJnnX/1EJWKwtjKbwAoWS8zLVWhZzYXio
5n8X5wXOMA4+h1RyUQBgE/l00KPbSe80TKWiajTARQcE0OQi4M4jppQlwV/vtvJu
EG7v9kzIuddELk2k6MhQCOrrNlhZoilPo5N7wmvlYzLn2B4sFg72NcxSiqe+VeYz
pyPbweFrop5SsprvL55WVP3AZmuw/CVKy+gOY4dPD18CB4Ljydz8JSDQycSntjTk
UD+7ST4ar+6z+IvXoTOYcl2ub+OZ53XNXUzwn8g4NHxMmNqxpIg8zmIFE2Fa+qEK
YzaObXt530FmqxYnOe9RWkQC7h4GAcWlW8cd8OMO34ECgYEBiPaTYPAeGNmi3ilS
U9JSwx5Eds6l/3v4QT33/eNWUjzcl2gF+E/A3ex3DfBs7QZcgRNIdUs0avFpdWh3
/Ts9VoaCyHh9CzFO9qxn1l6BMzmLYqCDwPh2XFrUDVqB+bvc4lJ+1+lQCMsQKctM
q9H56b7fwobJZVIlXafqsZIXjvcCgYEA3sfPEdreg6TEPS+AGX8h/V1G/Ve0MfRP
6Bod439qCR/8BGTtlx3IUIg1rebMX1ZvOWVhOos2eYyS5uI/Uu+QfpVn40G+vFM3
GJYl+76rHzt7P5L/smgebvWnhKjC1498LYmqqiTSztvQZoHP5lw2x7+jxboTUWIi
LvXC6RTJg2ECgYASCT86c8rt2Q9gowTkVAL4casyyMlVsJr0Y6O+Q3Dy1VhKmrur
af2wMepE+YQGXQRh6ECrIYiGYA43FVRsiwuFrSbTjLQwj1LQf5lEfZHwh/Od00A4
2y6TjpetBTpx++1ndeHchxjlTmyvfmVGfZy63cfnZchYniyY39wlyk7KgQKBgQCM
zmE0ec+WCPf3bCRc+Ru0ldYeneZIhJBUtN0bQxbz+YFCDcCVeL95Fv5Gkc+ummTm
NAuGAyNFI/Jdd7ZqZvw+5ZOp8Y3qXfY+1fff650gummlvvVZ/7DslNtyX2/26ruj
1JVHwMp08D4B7B5JDROaoKeUe41mLM5KPA8bXoYXQQKBgQD5lZs0xLyozkiIeBsx
sem12K310NPj7VReg2fT+FRbpkQyuIcwNe+IHCvN4A0YCfksQNh4N7XE+az0iza4
3FOllWGkVlI0AtHo+jrzAOVMkbY+bO4G/m3mZvOSlYKgPh9FTneJ+weBpNb7tSbv
iBYh/R6s0hRm5M3Ziu0Q9OdveQ==
-----END PRIVATE KEY-----
";

/// Appendix B.2 (ciphertext, expected output): valid messages, then invalid paddings with
/// their synthetic messages.
const B2: &[(&str, &str)] = &[
    // Valid: "lorem ipsum".
    (
        "013300edbf0bb3571e59889f7ed76970bf6d57e1c89bbb6d1c3991d9df8e65ed54b556d928da7d768facb395bbcc81e9f8573b45cf8195dbd85d83a59281cddf4163aec11b53b4140053e3bd109f787a7c3cec31d535af1f50e0598d85d96d91ea01913d07097d25af99c67464ebf2bb396fb28a9233e56f31f7e105d71a23e9ef3b736d1e80e713d1691713df97334779552fc94b40dd733c7251bc522b673d3ec9354af3dd4ad44fa71c0662213a57ada1d75149697d0eb55c053aaed5ffd0b815832f454179519d3736fb4faf808416071db0d0f801aca8548311ee708c131f4be658b15f6b54256872c2903ac708bd43b017b073b5707bc84c2cd9da70e967",
        "6c6f72656d20697073756d",
    ),
    // Valid empty message.
    (
        "00cc52e83755a4526fea5e62450450638430a84a5878fd12c2a571f33c55729cfab6e35c2e1703c452cff65731249460919aeb1b40084bdef573407851e48b3c72923e48d5c4f3e80990c462bc291a3e635515636ab9ebeb317ca0d75b04b80c17e2f4851f8929f72c9bea4ec4a6a1fbc5155837813567062d6b4b2a6b6e40be545d25da39b08c52f3543e2f2cdfa314832dcbf475fcbb8d3565a64bb09b55f922e6ec6cd8bb5203a11e2fa0c1b383674c4f0b63acd78f3690e3a16ad1b71f6cfe48c56533e2ae42b1393b2d156c2323272490a574ce4f14055249b6a34c3e08d4a417039450910ec34bd5f08eb06078f51bdd6e50334ee64c9695a5bde52938e3",
        "",
    ),
    // Valid, ciphertext starting with two zero bytes.
    (
        "0002aadf846a329fadc6760980303dbd87bfadfa78c2015ce4d6c5782fd9d3f1078bd3c0a2c5bfbdd1c024552e5054d98b5bcdc94e476dd280e64d650089326542ce7c61d4f1ab40004c2e6a88a883613568556a10f3f9edeab67ae8dddc1e6b0831c2793d2715de943f7ce34c5c05d1b09f14431fde566d17e76c9feee90d86a2c158616ec81dda0c642f58c0ba8fa4495843124a7235d46fb4069715a51bf710fd024259131ba94da73597ace494856c94e7a3ec261545793b0990279b15fa91c7fd13dbfb1df2f221dab9fa9f7c1d21e48aa49f6aaecbabf5ee76dc6c2af2317ffb4e303115386a97f8729afc3d0c89419669235f1a3a69570e0836c79fc162",
        "6c6f72656d20697073756d",
    ),
    // Invalid, synthetic message of length zero.
    (
        "0128a1f7837e53b21ee37f0b4d08c76180305d5d854a1bcf3885471610646795f1e4c85ce7fce0f71ac3504598afdfc26792dea8ac55c7da10f96d26236ae652b282459d679ec84847d523f07213e81d1c713fb159eded43112eab68b610e3f871d9c0009fde783ad7bcdca5568f7a86a716be6b96219c34b061f68718abad7c947ed107097dc68341b865d73f2e857a345f5cf05c53bb2899d2895565009125c7b5fe1c35a73c03bb0f59e7faf381c784988bb71194307ee9a8ac122990fabb5cc1fd877aaa79039ac163d084c7ee1642aaf05befb9d7ed0e29558f11f0708c8e83f804f92fd41310a6fd21d91c3ceb88ceee3e424a3fcdda57fe3abb8b7bae7d",
        "",
    ),
    // Invalid, synthetic message of the largest length (k - 11 = 246 bytes).
    (
        "013a60aa202dedad2d9e78c0c99077ccc17b7d0533aeaf184dcb8c9a81ca4de5715ada598d59b926606dcb005935421f6ebfd32e62802f0e2de8df08f1ae00e4aced6ebf361a38df817c892309bd07c92c4f2f7be89f286f99711372e3dd959ccb0a150b28578f29040b39ecf989c26eb77a3480c2d4d363b9563a70f0a0789cc4300af1e600de39dae4a49335d35ac0156f5395ebebf35531c819c9cf498a97e67ee2299d84564444f7bcd51f9f08d6bac0872439ad57eb9a8134dc665add1f813d5031484c905a433c115bf889dc46ac672a8898fe235bf463b1b46345299b6f100b48fa954fc262ce58e83f95955b321c1e86bbfe398b588dd5c75c2c68532b",
        "5c5345594cec69769af002af6513415a0848a4d45601c44b9e84b6e0a42c1356cfc20604df8d334de53fafc6de2125f2eae2ec9864b0b0d03ef1539017ecf312460cbb3c7c49fe124cf1becce8903f227ec85daaae73fe256acdf39f47b46c14fbd289d7f9b9e22ee0e7c5d77cbbf22a2f9fbf4e26c5999a7b8335f6478912edfb77a373a82dabbc8233e585ea5ddfef3d0d872a4a007018005014a8873495951210a4b90209b8286466030e56b1050ed600c777b4dbdb64f86516ef269a3ba77285f9be9afebcaad35226f7b3296932baf8dbfea3d77eb6520da203ffc0672232761e2a8a05186181b8dd1f77f069f7af8de118aa18",
    ),
    // Invalid, ciphertext with a leading zero byte.
    (
        "000a56cfd7abf21e2c65a28b8145fee663818b6cd218601e9e62bed7de5ac74ceb07b435b305c99e3e286152036086b4a13eb26164f6f4bf79ac7d6c3fbcdcd74c6dc324c04949a0c88cbf616626cb171a4e333a0e124524b44f78e2d8100c03e231791523b7d76db2d464e6b5e64244e04ad21128a5feb56092b4ceda35ebfb84f7fafa8e1c098d9923d66e541b36307574db8912630fcf734af7bcd4118f1f700804c5001a5950780188fc7862384fb3fc0708eaf3cb2b119177bb6928758fa75e644d258ac02748dcae7a78ec6c8679598fa9deee4663f1efe27efe8bd15572ff40676b95469aaa42eab4226d86c1160343255cce4fb7728f7349da27ed096b",
        "fc874af235e261083c2c",
    ),
    // Invalid, length taken from the second-to-last candidate (the last is too large).
    (
        "011644d88f2955389b6d215fc3acd733265d82348fa15178d99e38fd2842030d4e31d1ab15b0f00a80add1a9bfe112f9c42e827c487193c360dc5888c8c42d5459b1f2c1952dca679ded08f190b6a78bbb6ea00438ebb8b03dc56e45cb36bee49a385c71fbf9bbcceda7b130ad6cee2106eff34dd224fba8e9990edf893ae52b0910cdadf44bf29812a98bb9dc1638815112950bb9e7bad11c610d6406dd2d1c36cddd639e024205a1a2bd82ec97059ef61b5226e3246ca672962194d1222cc032003fe34bf5ca0227f1c86439dcfba5203cf57099884276b0fbbf9b9cec93392673d8290a1a3452f3791c3881c9be6a1eef23841a8a5fde255cbbd3c4fc33827c",
        "9b9b496e44544456e70d9be86bd398dae00c7c05d6ea76c45d12f050b1c61c219b2fe47749451e44d96d11916f6ec4cf9eea67cb",
    ),
    // Invalid first byte of the padding.
    (
        "002c9ddc36ba4cf0038692b2d3a1c61a4bb3786a97ce2e46a3ba74d03158aeef456ce0f4db04dda3fe062268a1711250a18c69778a6280d88e133a16254e1f0e30ce8dac9b57d2e39a2f7d7be3ee4e08aec2fdbe8dadad7fdbf442a29a8fb40857407bf6be35596b8eefb5c2b3f58b894452c2dc54a6123a1a38d642e23751746597e08d71ac92704adc17803b19e131b4d1927881f43b0200e6f95658f559f912c889b4cd51862784364896cd6e8618f485a992f82997ad6a0917e32ae5872eaf850092b2d6c782ad35f487b79682333c1750c685d7d32ab3e1538f31dcaa5e7d5d2825875242c83947308dcf63ba4bfff20334c9c140c837dbdbae7a8dee72ff",
        "f6d0f5b78082fe61c04674",
    ),
    // Invalid second byte of the padding.
    (
        "00c5d77826c1ab7a34d6390f9d342d5dbe848942e2618287952ba0350d7de6726112e9cebc391a0fae1839e2bf168229e3e0d71d4161801509f1f28f6e1487ca52df05c466b6b0a6fbbe57a3268a970610ec0beac39ec0fa67babce1ef2a86bf77466dc127d7d0d2962c20e66593126f276863cd38dc6351428f884c1384f67cad0a0ffdbc2af16711fb68dc559b96b37b4f04cd133ffc7d79c43c42ca4948fa895b9daeb853150c8a5169849b730cc77d68b0217d6c0e3dbf38d751a1998186633418367e7576530566c23d6d4e0da9b038d0bb5169ce40133ea076472d055001f0135645940fd08ea44269af2604c8b1ba225053d6db9ab43577689401bdc0f3",
        "1ab287fcef3ff17067914d",
    ),
    // Invalid, PS of length zero.
    (
        "011e24da411e182d85e7c350a7dbff898c3e17bee1573fe3d0c0d3be53a384a65d597d52247e56d10b01cf1a51533e47c37f38bc62490e449b5f4ea35aec422a63142c95da26e800e14504ce704edc7e38faaff697b74814c14d19f7f6f4d942c1db61eca70266748ed83195bffa2eb85f49047a7bc7aae7f927ff445f15136b28b4cad396312ae09a62ef894688ad50bc53d6977236b76d30c9bb2dacd0d58300f2b3dc69a7c3212c6dcf6db583c59d94e7550ecc871991139259a9a001451635c777c7ac46db113a2460f157f9f830c186f0a0c47ca3012c8d309bea899852febe76b87874292b8230be9de5c88fb94a0f19b2df71ca1efeb5f772b2d9b38016",
        "5659f49338cfcd423dfcce",
    ),
    // Invalid, zero as the eighth byte of PS.
    (
        "014b47d00714b92e98eacd73b07816ef530f8355fca68de6ba56828afab9d43b96fcb11bee0e900e966a51705b95e82599f3df202d51d520c96adf32e1c0758a7e0a8694699af8cfd9ed2850678f70e952f029a4b461ac8a8e049ef9ffc483ebdc9a525bae3ddf8d69f8f711d30135fd9cce0c3d09d1a75c5b837d9f0d86827a5f9edccd56af835572ba099a44a69277f31999753cd9887fe46ae7c7eb98d5894692847179dac0ba305ed584f2887f7a6e88c843e6f0d4e99ffdcf51e266198301dab2bcb7b07944207c71a89f1449f3690cf09b9f15a5588a2c16d18ef437876285e9d04fd01ff30dea46a3eb17151e63b784548f1c65eeb08bec9901b9353432",
        "c917a56bd800b8d9578657",
    ),
    // Invalid, no separator after PS.
    (
        "01541f0012b2dfd2d2b91cd22570dd577af0d27c29baa4d7a3cec2ddf8cdb957257d8d436455d331e35730d1df7058cbb01649beb236154858843e2e14ae54fd53496883163b8cb30fea540778726453204a846b04535878bebe9e60f8783b77e5dfd4d346cd688aa2ee9e0ba9ac2bfd16005de994ea4a9c40adbafcf79dac4859480a8e6e6849077b07f5e3dce8b97f678fc4b1da7e72004cfae36f01cb23f69180a46e3b9488f3b595e83510c9c4b298c953971d82610562976271e756f97ef317b440271be9847178a482098447516ea29bd599592dbf22e35c91f8e2155bd2f6289bac31c4c608b80bc208608a17cc45f7cff774549782882cf72baf0feb2f",
        "a4e88815652839f2482a8f",
    ),
];

struct Fixture {
    reference: Rsa<openssl::pkey::Private>,
    key: PKey,
    ir: ImplicitRejection,
}

fn fixture() -> Fixture {
    let reference = Rsa::private_key_from_pem(K2049.as_bytes()).unwrap();
    let v = |b: &openssl::bn::BigNumRef| b.to_vec();
    let (n, e, d) = (v(reference.n()), v(reference.e()), v(reference.d()));
    let (p, q) = (v(reference.p().unwrap()), v(reference.q().unwrap()));
    let (dp, dq) = (v(reference.dmp1().unwrap()), v(reference.dmq1().unwrap()));
    let qinv = v(reference.iqmp().unwrap());
    let key = PKey::rsa_private_from_components(&RsaComponents {
        n: &n,
        e: &e,
        d: &d,
        crt: Some(RsaCrt {
            p: &p,
            q: &q,
            dp: &dp,
            dq: &dq,
            qinv: &qinv,
        }),
    })
    .unwrap();
    let ir = ImplicitRejection::new(&key, &d).unwrap();
    Fixture { reference, key, ir }
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn draft_vectors_2049_bit_key() {
    let f = fixture();
    assert_eq!((f.key.bits(), f.ir.k()), (2049, 257));
    for (i, (ct, expected)) in B2.iter().enumerate() {
        let out = f.ir.decrypt(&f.key, &h(ct)).unwrap().unwrap();
        assert_eq!(hex::encode(&*out), *expected, "B.2 vector {i}");
    }
}

#[test]
fn public_faults_are_none_and_stray_keys_are_refused() {
    let f = fixture();
    let n = f.reference.n().to_vec_padded(257).unwrap();
    let mut above = n.clone();
    above[256] = above[256].wrapping_add(1);
    for ct in [
        &n[..],
        &above[..],
        &[0xff; 257][..],
        &n[1..],
        &[&n[..], &[0][..]].concat(),
    ] {
        assert!(f.ir.decrypt(&f.key, ct).unwrap().is_none());
    }
    // A ciphertext of n - 1 is below the modulus, so it decrypts (to a synthetic message).
    let mut below = n.clone();
    below[256] -= 1;
    assert!(f.ir.decrypt(&f.key, &below).unwrap().is_some());
    let other = PKey::generate_rsa(2048, &[1, 0, 1]).unwrap();
    assert!(f.ir.decrypt(&other, &[1; 256]).is_err());
    let public = PKey::rsa_public_from_components(&f.reference.n().to_vec(), &[1, 0, 1]).unwrap();
    assert!(ImplicitRejection::new(&public, &[1]).is_err());
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let k = OsslPKey::hmac(key).unwrap();
    let mut s = Signer::new(MessageDigest::sha256(), &k).unwrap();
    for p in parts {
        s.update(p).unwrap();
    }
    s.sign_to_vec().unwrap()
}

/// The draft's PRF written out plainly.
fn reference_prf(kdk: &[u8], label: &[u8], len: usize) -> Vec<u8> {
    let bits = u16::try_from(len * 8).unwrap().to_be_bytes();
    let mut out = Vec::new();
    for i in 0u16.. {
        if out.len() >= len {
            break;
        }
        out.extend(hmac_sha256(kdk, &[&i.to_be_bytes(), label, &bits]));
    }
    out.truncate(len);
    out
}

/// The draft's decryption written the obvious, branching way.
fn reference_unpad(d: &[u8], ct: &[u8], em: &[u8]) -> Vec<u8> {
    let k = em.len();
    let mut d_padded = vec![0u8; k - d.len()];
    d_padded.extend_from_slice(d);
    let kdk = hmac_sha256(&openssl::sha::sha256(&d_padded), &[ct]);
    if em[0] == 0
        && em[1] == 2
        && let Some(sep) = em[2..].iter().position(|&b| b == 0)
        && sep >= 8
    {
        return em[2 + sep + 1..].to_vec();
    }
    let synthetic = reference_prf(&kdk, b"message", k);
    let max = k - 10;
    let mask = (1usize << (usize::BITS - max.leading_zeros())) - 1;
    let len = reference_prf(&kdk, b"length", 256)
        .chunks(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])) & mask)
        .rfind(|&c| c < max)
        .unwrap_or(0);
    synthetic[k - len..].to_vec()
}

/// (what, block, the real message if the padding is right)
type Case<'a> = (&'a str, Vec<u8>, Option<&'a [u8]>);

/// A block of k bytes: `head`, then nonzero filler, then `tail`.
fn block(k: usize, head: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut b = head.to_vec();
    b.extend((0..k - head.len() - tail.len()).map(|i| 0x11 + (i % 200) as u8));
    b.extend_from_slice(tail);
    b
}

#[test]
fn every_padding_branch_matches_the_reference() {
    let f = fixture();
    let d = f.reference.d().to_vec();
    let k = 257;
    let msg = b"a real message";
    let sep_msg = [&[0u8][..], msg].concat();
    let ps_zero_at = |pos: usize| {
        let mut b = block(k, &[0, 2], &sep_msg);
        b[2 + pos] = 0;
        b
    };
    let ps8 = ps_zero_at(8);
    let ps8_msg = ps8[11..].to_vec();
    let cases: Vec<Case<'_>> = vec![
        ("valid", block(k, &[0, 2], &sep_msg), Some(msg)),
        ("valid, empty message", block(k, &[0, 2], &[0]), Some(b"")),
        ("valid, PS of exactly 8", ps8.clone(), Some(&ps8_msg)),
        ("first byte not 0", block(k, &[1, 2], &sep_msg), None),
        ("second byte not 2", block(k, &[0, 1], &sep_msg), None),
        ("zero at PS byte 1", ps_zero_at(0), None),
        ("zero at PS byte 8", ps_zero_at(7), None),
        ("no separator", block(k, &[0, 2], &[]), None),
        ("all zero", vec![0; k], None),
    ];
    for (i, (what, em, real)) in cases.iter().enumerate() {
        // Any k bytes stand for the ciphertext: the unpadding only hashes it.
        let ct: Vec<u8> = (0..k).map(|j| (j * 7 + i * 13) as u8).collect();
        let out = f.ir.unpad(&ct, em).unwrap();
        assert_eq!(&out[..], &reference_unpad(&d, &ct, em)[..], "{what}");
        match real {
            Some(m) => assert_eq!(&out[..], *m, "{what}"),
            None => assert_ne!(&out[..], &msg[..], "{what}"),
        }
        // The same ciphertext gives the same output.
        assert_eq!(&f.ir.unpad(&ct, em).unwrap()[..], &out[..], "{what}");
    }
    // Another ciphertext with the same bad block gives another synthetic message.
    let bad = block(k, &[0, 1], &sep_msg);
    let a = f.ir.unpad(&[1; 257], &bad).unwrap();
    let b = f.ir.unpad(&[2; 257], &bad).unwrap();
    assert_ne!(a, b);
    assert!(f.ir.unpad(&[1; 256], &bad).is_err());
    assert!(f.ir.unpad(&[1; 257], &bad[1..]).is_err());
}

#[test]
fn masks() {
    assert_eq!(ct_is_zero(0), u32::MAX);
    for x in [1, 2, 0x80, 0x8000_0000, u32::MAX] {
        assert_eq!(ct_is_zero(x), 0, "{x:#x}");
    }
    assert_eq!(ct_eq(7, 7), u32::MAX);
    assert_eq!(ct_eq(7, 6), 0);
    for (a, b) in [(0, 1), (9, 10), (0, 0x7fff_ffff), (245, 246)] {
        assert_eq!(ct_lt(a, b), u32::MAX, "{a} < {b}");
        assert_eq!(ct_lt(b, a), 0, "{b} < {a}");
    }
    assert_eq!(ct_lt(10, 10), 0);
    assert_eq!(ct_select(u32::MAX, 3, 4), 3);
    assert_eq!(ct_select(0, 3, 4), 4);
    assert_eq!(ct_select_u8(u32::MAX, 0xab, 0xcd), 0xab);
    assert_eq!(ct_select_u8(0, 0xab, 0xcd), 0xcd);
}
