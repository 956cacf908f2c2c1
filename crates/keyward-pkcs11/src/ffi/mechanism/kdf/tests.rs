//! Decoding of the key-derivation parameters: both PBKDF2 layouts, HKDF's optional parts,
//! the nested SP 800-108 data array and its bounds.

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::{null_mut, with_exposed_provenance_mut};

use keyward_core::Code;

use super::*;

fn decode<T>(mech: CK_MECHANISM_TYPE, t: &mut T) -> Result<MechParams> {
    let p: *mut c_void = (t as *mut T).cast();
    // SAFETY: `t` is a live structure of the stated size whose pointers point to live locals.
    unsafe { super::super::params(mech, p, size_of::<T>() as CK_ULONG) }
}

fn code(r: Result<MechParams>) -> Code {
    r.unwrap_err().code()
}

#[test]
fn hkdf_reads_salt_and_info_only_when_used() {
    let mut salt = *b"salt";
    let mut info = *b"info";
    let mut k = CK_HKDF_PARAMS {
        bExtract: CK_TRUE,
        bExpand: CK_TRUE,
        prfHashMechanism: CKM_SHA256,
        ulSaltType: CKF_HKDF_SALT_DATA,
        pSalt: salt.as_mut_ptr(),
        ulSaltLen: 4,
        hSaltKey: 0,
        pInfo: info.as_mut_ptr(),
        ulInfoLen: 4,
    };
    let m = decode(CKM_HKDF_DERIVE, &mut k).unwrap();
    assert_eq!(
        m,
        MechParams::Hkdf {
            extract: true,
            expand: true,
            prf: CKM_SHA256,
            salt: HkdfSalt::Data(b"salt".to_vec()),
            info: b"info".to_vec(),
        }
    );
    // Expand only: a dangling salt is never read; extract only: nor is the info.
    k.bExtract = CK_FALSE;
    k.pSalt = with_exposed_provenance_mut(0x10);
    k.ulSaltType = 77;
    let m = decode(CKM_HKDF_DATA, &mut k).unwrap();
    assert!(matches!(
        m,
        MechParams::Hkdf {
            salt: HkdfSalt::Null,
            ..
        }
    ));
    k.bExtract = CK_TRUE;
    k.bExpand = CK_FALSE;
    k.ulSaltType = CKF_HKDF_SALT_KEY;
    k.hSaltKey = 42;
    k.pInfo = with_exposed_provenance_mut(0x10);
    let m = decode(CKM_HKDF_DERIVE, &mut k).unwrap();
    assert!(
        matches!(m, MechParams::Hkdf { salt: HkdfSalt::Key(42), ref info, .. } if info.is_empty())
    );
    k.ulSaltType = 8;
    assert_eq!(
        code(decode(CKM_HKDF_DERIVE, &mut k)),
        Code::MechanismParamInvalid
    );
    // NULL salt with a length.
    k.ulSaltType = CKF_HKDF_SALT_DATA;
    k.pSalt = null_mut();
    assert_eq!(
        code(decode(CKM_HKDF_DERIVE, &mut k)),
        Code::MechanismParamInvalid
    );
    let mut short = [0u8; 8];
    assert_eq!(
        code(decode(CKM_HKDF_DERIVE, &mut short)),
        Code::MechanismParamInvalid
    );
}

fn pbkdf2_password(m: MechParams) -> Vec<u8> {
    match m {
        MechParams::Pbkdf2 { password, salt, .. } => {
            assert_eq!(salt, b"NaCl");
            password.to_vec()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pbkdf2_both_layouts() {
    let mut salt = *b"NaCl";
    let mut password = *b"Password";
    let mut k2 = CK_PKCS5_PBKD2_PARAMS2 {
        saltSource: CKZ_SALT_SPECIFIED,
        pSaltSourceData: salt.as_mut_ptr().cast(),
        ulSaltSourceDataLen: 4,
        iterations: 80000,
        prf: CKP_PKCS5_PBKD2_HMAC_SHA256,
        pPrfData: null_mut(),
        ulPrfDataLen: 0,
        pPassword: password.as_mut_ptr(),
        ulPasswordLen: 8,
    };
    assert_eq!(
        pbkdf2_password(decode(CKM_PKCS5_PBKD2, &mut k2).unwrap()),
        b"Password"
    );
    // The old layout: ulPasswordLen points to the length.
    let mut len: CK_ULONG = 8;
    let mut k1 = CK_PKCS5_PBKD2_PARAMS {
        saltSource: CKZ_SALT_SPECIFIED,
        pSaltSourceData: salt.as_mut_ptr().cast(),
        ulSaltSourceDataLen: 4,
        iterations: 80000,
        prf: CKP_PKCS5_PBKD2_HMAC_SHA256,
        pPrfData: null_mut(),
        ulPrfDataLen: 0,
        pPassword: password.as_mut_ptr(),
        ulPasswordLen: &mut len,
    };
    assert_eq!(
        pbkdf2_password(decode(CKM_PKCS5_PBKD2, &mut k1).unwrap()),
        b"Password"
    );
    k1.ulPasswordLen = null_mut();
    if size_of::<CK_PKCS5_PBKD2_PARAMS>() != size_of::<CK_PKCS5_PBKD2_PARAMS2>() {
        assert_eq!(
            code(decode(CKM_PKCS5_PBKD2, &mut k1)),
            Code::MechanismParamInvalid
        );
    }
    // A value past the length range that is no aligned pointer is refused.
    k2.ulPasswordLen = (1 << 16) + 1;
    assert_eq!(
        code(decode(CKM_PKCS5_PBKD2, &mut k2)),
        Code::MechanismParamInvalid
    );
    // PRF data is for GOST only.
    k2.ulPasswordLen = 8;
    k2.ulPrfDataLen = 4;
    assert_eq!(
        code(decode(CKM_PKCS5_PBKD2, &mut k2)),
        Code::MechanismParamInvalid
    );
    // The password is never printed.
    k2.ulPrfDataLen = 0;
    let shown = format!("{:?}", decode(CKM_PKCS5_PBKD2, &mut k2).unwrap());
    assert!(!shown.contains("Password"), "{shown}");
}

#[test]
fn sp800_108_nested_array() {
    let mut ctr = CK_SP800_108_COUNTER_FORMAT {
        bLittleEndian: CK_TRUE,
        ulWidthInBits: 16,
    };
    let mut dkm = CK_SP800_108_DKM_LENGTH_FORMAT {
        dkmLengthMethod: CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS,
        bLittleEndian: CK_FALSE,
        ulWidthInBits: 32,
    };
    let mut label = *b"label";
    let mut handle: CK_OBJECT_HANDLE = 9;
    let mut entries = [
        CK_PRF_DATA_PARAM {
            type_: CK_SP800_108_ITERATION_VARIABLE,
            pValue: (&raw mut ctr).cast(),
            ulValueLen: size_of::<CK_SP800_108_COUNTER_FORMAT>() as CK_ULONG,
        },
        CK_PRF_DATA_PARAM {
            type_: CK_SP800_108_BYTE_ARRAY,
            pValue: label.as_mut_ptr().cast(),
            ulValueLen: 5,
        },
        CK_PRF_DATA_PARAM {
            type_: CK_SP800_108_DKM_LENGTH,
            pValue: (&raw mut dkm).cast(),
            ulValueLen: size_of::<CK_SP800_108_DKM_LENGTH_FORMAT>() as CK_ULONG,
        },
        CK_PRF_DATA_PARAM {
            type_: CK_SP800_108_KEY_HANDLE,
            pValue: (&raw mut handle).cast(),
            ulValueLen: size_of::<CK_OBJECT_HANDLE>() as CK_ULONG,
        },
    ];
    let mut k = CK_SP800_108_KDF_PARAMS {
        prfType: CKM_SHA256_HMAC,
        ulNumberOfDataParams: 4,
        pDataParams: entries.as_mut_ptr(),
        ulAdditionalDerivedKeys: 0,
        pAdditionalDerivedKeys: null_mut(),
    };
    assert_eq!(
        decode(CKM_SP800_108_COUNTER_KDF, &mut k).unwrap(),
        MechParams::Sp800108 {
            prf: CKM_SHA256_HMAC,
            data: vec![
                PrfData::Counter {
                    little_endian: true,
                    bits: 16
                },
                PrfData::Bytes(b"label".to_vec()),
                PrfData::DkmLength {
                    method: CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS,
                    little_endian: false,
                    bits: 32
                },
                PrfData::Key(9),
            ],
        }
    );
    // Each case builds the structure afresh, so the array pointer is never stale.
    let run = |edit: &dyn Fn(&mut [CK_PRF_DATA_PARAM]), count: CK_ULONG, extra: CK_ULONG| {
        let mut copy = entries;
        edit(&mut copy);
        let mut k = CK_SP800_108_KDF_PARAMS {
            prfType: CKM_SHA256_HMAC,
            ulNumberOfDataParams: count,
            pDataParams: copy.as_mut_ptr(),
            ulAdditionalDerivedKeys: extra,
            pAdditionalDerivedKeys: null_mut(),
        };
        decode(CKM_SP800_108_COUNTER_KDF, &mut k)
    };
    // A counter format of the wrong size, and the feedback-only optional counter.
    let r = run(&|e| e[0].ulValueLen = 8, 4, 0);
    assert_eq!(code(r), Code::MechanismParamInvalid);
    let r = run(&|e| e[0].type_ = CK_SP800_108_COUNTER, 4, 0);
    assert_eq!(code(r), Code::MechanismParamInvalid);
    // Additional derived keys are not supported.
    assert_eq!(code(run(&|_| {}, 4, 1)), Code::MechanismParamInvalid);
    // More than 32 entries.
    assert_eq!(code(run(&|_| {}, 33, 0)), Code::MechanismParamInvalid);
    // A NULL array with a count.
    k.ulNumberOfDataParams = 1;
    k.pDataParams = null_mut();
    assert_eq!(
        code(decode(CKM_SP800_108_COUNTER_KDF, &mut k)),
        Code::MechanismParamInvalid
    );
}

#[test]
fn cbc_encrypt_data_and_key_gen() {
    let mut data = [7u8; 32];
    let mut c = CK_AES_CBC_ENCRYPT_DATA_PARAMS {
        iv: [1; 16],
        pData: data.as_mut_ptr(),
        length: 32,
    };
    assert_eq!(
        decode(CKM_AES_CBC_ENCRYPT_DATA, &mut c).unwrap(),
        MechParams::EncryptData {
            iv: vec![1; 16],
            data: vec![7; 32]
        }
    );
    let mut u: CK_ULONG = 1;
    assert_eq!(
        code(decode(CKM_HKDF_KEY_GEN, &mut u)),
        Code::MechanismParamInvalid
    );
}
