//! Mechanism parameter decoding: sizes checked before reads, unaligned structures, NULLs.

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use super::*;

fn mech(m: CK_MECHANISM_TYPE, p: *mut c_void, len: usize) -> Result<Mechanism> {
    let cm = CK_MECHANISM {
        mechanism: m,
        pParameter: p,
        ulParameterLen: len as CK_ULONG,
    };
    // SAFETY: parameters in these tests point to live locals of the stated size.
    unsafe { read(&cm) }
}

fn as_void<T>(t: &mut T) -> *mut c_void {
    (t as *mut T).cast()
}

#[test]
fn gcm_params_decode() {
    let mut iv = [1u8; 12];
    let mut aad = *b"header";
    let mut g = CK_GCM_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: 6,
        ulTagBits: 128,
    };
    let m = mech(CKM_AES_GCM, as_void(&mut g), size_of::<CK_GCM_PARAMS>()).unwrap();
    assert_eq!(
        m.params,
        MechParams::Gcm {
            iv: vec![1; 12],
            iv_bits: 96,
            aad: b"header".to_vec(),
            tag_bits: 128
        }
    );
    // Empty AAD with a NULL pointer is fine (SoftHSM #664).
    g.pAAD = null_mut();
    g.ulAADLen = 0;
    let m = mech(CKM_AES_GCM, as_void(&mut g), size_of::<CK_GCM_PARAMS>()).unwrap();
    assert!(matches!(m.params, MechParams::Gcm { ref aad, .. } if aad.is_empty()));
    // NULL AAD with a length is refused.
    g.ulAADLen = 4;
    let e = mech(CKM_AES_GCM, as_void(&mut g), size_of::<CK_GCM_PARAMS>()).unwrap_err();
    assert_eq!(e.code(), Code::MechanismParamInvalid);
}

#[test]
fn struct_size_mismatch_is_param_invalid() {
    let mut g = [0u8; 64];
    // 2.40-style GCM layout (without ulIvBits) is one word shorter.
    let short = size_of::<CK_GCM_PARAMS>() - size_of::<CK_ULONG>();
    for (m, len) in [
        (CKM_AES_GCM, short),
        (CKM_RSA_PKCS_PSS, size_of::<CK_RSA_PKCS_PSS_PARAMS>() + 1),
        (CKM_RSA_PKCS_OAEP, 8),
        (CKM_ECDH1_DERIVE, 4),
        (CKM_SHA256_HMAC_GENERAL, size_of::<CK_ULONG>() - 1),
        (CKM_EDDSA, 3),
    ] {
        let e = mech(m, g.as_mut_ptr().cast(), len).unwrap_err();
        assert_eq!(e.code(), Code::MechanismParamInvalid, "mechanism {m:#x}");
    }
    // NULL parameter with a length.
    let e = mech(CKM_AES_CBC, null_mut(), 16).unwrap_err();
    assert_eq!(e.code(), Code::MechanismParamInvalid);
}

#[test]
fn parameterless_and_unknown() {
    assert_eq!(
        mech(CKM_SHA256, null_mut(), 0).unwrap().params,
        MechParams::None
    );
    let mut junk = [0u8; 8];
    let e = mech(CKM_SHA256, junk.as_mut_ptr().cast(), 8).unwrap_err();
    assert_eq!(e.code(), Code::MechanismParamInvalid);
    // Unknown mechanism: no parameter passes through (the engine decides), a parameter we
    // cannot decode is CKR_MECHANISM_INVALID.
    assert_eq!(
        mech(0x8000_0001, null_mut(), 0).unwrap().params,
        MechParams::None
    );
    let e = mech(0x8000_0001, junk.as_mut_ptr().cast(), 8).unwrap_err();
    assert_eq!(e.code(), Code::MechanismInvalid);
    // NULL CK_MECHANISM pointer.
    // SAFETY: NULL is refused before any access.
    let rv = unsafe { read(std::ptr::null()) };
    assert_eq!(rv.unwrap_err().code(), Code::ArgumentsBad);
}

#[test]
fn pss_oaep_ecdh_eddsa_ulong_bytes() {
    // PSS from a misaligned copy.
    let pss = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        sLen: 32,
    };
    let mut store = vec![0u8; size_of_val(&pss) + 1];
    // SAFETY: `store` has room for the structure at offset 1.
    unsafe {
        store
            .as_mut_ptr()
            .add(1)
            .cast::<CK_RSA_PKCS_PSS_PARAMS>()
            .write_unaligned(pss)
    };
    let m = mech(
        CKM_SHA256_RSA_PKCS_PSS,
        store.as_mut_ptr().wrapping_add(1).cast(),
        size_of_val(&pss),
    )
    .unwrap();
    assert_eq!(
        m.params,
        MechParams::Pss {
            hash: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            salt_len: 32
        }
    );

    let mut label = *b"lbl";
    let mut oaep = CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: CKM_SHA_1,
        mgf: CKG_MGF1_SHA1,
        source: CKZ_DATA_SPECIFIED,
        pSourceData: label.as_mut_ptr().cast(),
        ulSourceDataLen: 3,
    };
    let m = mech(CKM_RSA_PKCS_OAEP, as_void(&mut oaep), size_of_val(&oaep)).unwrap();
    assert_eq!(
        m.params,
        MechParams::Oaep {
            hash: CKM_SHA_1,
            mgf: CKG_MGF1_SHA1,
            label: b"lbl".to_vec()
        }
    );
    oaep.source = 7;
    let e = mech(CKM_RSA_PKCS_OAEP, as_void(&mut oaep), size_of_val(&oaep)).unwrap_err();
    assert_eq!(e.code(), Code::MechanismParamInvalid);

    let mut point = [4u8; 65];
    let mut ecdh = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: null_mut(),
        ulPublicDataLen: 65,
        pPublicData: point.as_mut_ptr(),
    };
    let m = mech(CKM_ECDH1_DERIVE, as_void(&mut ecdh), size_of_val(&ecdh)).unwrap();
    assert_eq!(
        m.params,
        MechParams::Ecdh {
            kdf: CKD_NULL,
            shared_data: Vec::new(),
            public_data: vec![4; 65]
        }
    );

    assert_eq!(
        mech(CKM_EDDSA, null_mut(), 0).unwrap().params,
        MechParams::None
    );
    let mut ctx = *b"ctx";
    let mut ed = CK_EDDSA_PARAMS {
        phFlag: CK_TRUE,
        ulContextDataLen: 3,
        pContextData: ctx.as_mut_ptr(),
    };
    let m = mech(CKM_EDDSA, as_void(&mut ed), size_of_val(&ed)).unwrap();
    assert_eq!(
        m.params,
        MechParams::EdDsa {
            prehash: true,
            context: b"ctx".to_vec()
        }
    );

    let mut mac_len: CK_ULONG = 16;
    let m = mech(
        CKM_SHA256_HMAC_GENERAL,
        as_void(&mut mac_len),
        size_of::<CK_ULONG>(),
    )
    .unwrap();
    assert_eq!(m.params, MechParams::Ulong(16));

    let mut iv = [9u8; 16];
    let m = mech(CKM_AES_CBC_PAD, iv.as_mut_ptr().cast(), 16).unwrap();
    assert_eq!(m.params, MechParams::Bytes(vec![9; 16]));

    let mut ctr = CK_AES_CTR_PARAMS {
        ulCounterBits: 0,
        cb: [3; 16],
    };
    let e = mech(CKM_AES_CTR, as_void(&mut ctr), size_of_val(&ctr)).unwrap_err();
    assert_eq!(e.code(), Code::MechanismParamInvalid);
    ctr.ulCounterBits = 32;
    assert_eq!(
        mech(CKM_AES_CTR, as_void(&mut ctr), size_of_val(&ctr))
            .unwrap()
            .params,
        MechParams::Bytes(vec![3; 16])
    );
}

#[test]
fn gcm_message_params_tag_is_output_when_encrypting() {
    let mut iv = [0u8; 12];
    let mut tag = [0xA5u8; 16];
    let mut g = CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvFixedBits: 32,
        ivGenerator: CKG_GENERATE_COUNTER,
        pTag: tag.as_mut_ptr(),
        ulTagBits: 128,
    };
    // SAFETY: `g` and its buffers are live locals of the stated sizes.
    let (raw, params) =
        unsafe { MessageParams::read(as_void(&mut g), size_of_val(&g) as CK_ULONG, true) }.unwrap();
    let MechParams::AeadMessage {
        tag: t,
        generator,
        iv_fixed_bits,
        ..
    } = &params
    else {
        panic!("wrong variant {params:?}");
    };
    assert_eq!(
        (t.as_slice(), *generator, *iv_fixed_bits),
        (&[0u8; 16][..], CKG_GENERATE_COUNTER, 32)
    );
    // The engine generated an IV and a tag; both are written back.
    let filled = MechParams::AeadMessage {
        iv: vec![7; 12],
        iv_fixed_bits: 32,
        generator: CKG_GENERATE_COUNTER,
        tag: vec![8; 16],
        data_len: 0,
    };
    raw.write_back(&filled, true).unwrap();
    assert_eq!((iv, tag), ([7; 12], [8; 16]));
    // A changed length is refused rather than written past the caller's buffer.
    let longer = MechParams::AeadMessage {
        iv: vec![7; 13],
        iv_fixed_bits: 32,
        generator: CKG_GENERATE_COUNTER,
        tag: vec![8; 16],
        data_len: 0,
    };
    assert_eq!(
        raw.write_back(&longer, true).unwrap_err().code(),
        Code::GeneralError
    );
}
