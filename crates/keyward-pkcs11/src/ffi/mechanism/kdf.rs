//! Parameter decoding of the key-derivation mechanisms: CK_HKDF_PARAMS,
//! CK_PKCS5_PBKD2_PARAMS(2), CK_SP800_108_KDF_PARAMS with its nested CK_PRF_DATA_PARAM array,
//! and CK_AES_CBC_ENCRYPT_DATA_PARAMS. Only the shape is checked here; the mechanisms check
//! the values.

use std::mem::{align_of, size_of};

use cryptoki_sys::*;
use keyward_core::Result;
use keyward_core::types::{HkdfSalt, MechParams, PrfData};
use zeroize::Zeroizing;

use super::{bytes, param_invalid, read_struct};

/// Most CK_PRF_DATA_PARAM entries read from one SP 800-108 parameter.
pub(super) const MAX_DATA_PARAMS: usize = 32;

/// Below this value the last field of a CK_PKCS5_PBKD2_PARAMS-sized structure is a password
/// length (CK_PKCS5_PBKD2_PARAMS2); from it on, a pointer to one (the pre-2.40-errata layout).
/// Linux maps nothing below 64 KiB by default (vm.mmap_min_addr), so no pointer is smaller.
const PASSWORD_LEN_POINTER_FLOOR: CK_ULONG = 1 << 16;

/// CK_HKDF_PARAMS. The salt is read only when bExtract is set, and the info only when
/// bExpand is set: the spec tells the token to ignore them otherwise.
///
/// # Safety
/// If `p` is not NULL it must be readable for `n` bytes, with the salt and info pointers
/// readable for their stated lengths.
pub(super) unsafe fn hkdf(
    mech: CK_MECHANISM_TYPE,
    p: *const std::ffi::c_void,
    n: usize,
) -> Result<MechParams> {
    // SAFETY: forwarded contract; the size is checked inside.
    let k: CK_HKDF_PARAMS = unsafe { read_struct(mech, p, n) }?;
    let extract = k.bExtract != CK_FALSE;
    let expand = k.bExpand != CK_FALSE;
    let salt = if !extract {
        HkdfSalt::Null
    } else {
        match k.ulSaltType {
            CKF_HKDF_SALT_NULL => HkdfSalt::Null,
            // SAFETY: the salt is readable for ulSaltLen bytes by contract.
            CKF_HKDF_SALT_DATA => HkdfSalt::Data(unsafe { bytes(mech, k.pSalt, k.ulSaltLen) }?),
            CKF_HKDF_SALT_KEY => HkdfSalt::Key(k.hSaltKey),
            _ => return Err(param_invalid(mech, "unknown ulSaltType")),
        }
    };
    let info = if expand {
        // SAFETY: the info is readable for ulInfoLen bytes by contract.
        unsafe { bytes(mech, k.pInfo, k.ulInfoLen) }?
    } else {
        Vec::new()
    };
    Ok(MechParams::Hkdf {
        extract,
        expand,
        prf: k.prfHashMechanism,
        salt,
        info,
    })
}

/// CK_PKCS5_PBKD2_PARAMS2, or the older CK_PKCS5_PBKD2_PARAMS whose ulPasswordLen is a
/// pointer. Where the two have different sizes (LLP64) the size tells them apart; where they
/// have the same size (every LP64 and ILP32 target), the value does: a length below
/// [`PASSWORD_LEN_POINTER_FLOOR`] is a PARAMS2 length, an aligned value from it on is the old
/// layout's pointer. A PARAMS2 caller with a password of 64 KiB or more is therefore read as
/// the old layout — a documented limit; such passwords are refused anyway.
///
/// # Safety
/// If `p` is not NULL it must be readable for `n` bytes, with the salt and password (and, in
/// the old layout, the password length) readable as the structure states.
pub(super) unsafe fn pbkdf2(
    mech: CK_MECHANISM_TYPE,
    p: *const std::ffi::c_void,
    n: usize,
) -> Result<MechParams> {
    let same_size = size_of::<CK_PKCS5_PBKD2_PARAMS>() == size_of::<CK_PKCS5_PBKD2_PARAMS2>();
    let (k, password_len) = if n == size_of::<CK_PKCS5_PBKD2_PARAMS2>() {
        // SAFETY: forwarded contract; the size is checked inside.
        let k: CK_PKCS5_PBKD2_PARAMS2 = unsafe { read_struct(mech, p, n) }?;
        let v = k.ulPasswordLen;
        let len = if !same_size || v < PASSWORD_LEN_POINTER_FLOOR {
            v
        } else if usize::try_from(v).is_ok_and(|a| a % align_of::<CK_ULONG>() == 0) {
            let at = usize::try_from(v).map_err(|_| param_invalid(mech, "bad pointer"))?;
            let lp: *const CK_ULONG = std::ptr::with_exposed_provenance(at);
            // SAFETY: a value this large is no PARAMS2 length, so the caller used the old
            // layout, whose contract makes it a readable pointer to the password length.
            unsafe { lp.read_unaligned() }
        } else {
            return Err(param_invalid(
                mech,
                "ulPasswordLen is neither a length nor a pointer",
            ));
        };
        let fields = Pbkd2Fields {
            salt_source: k.saltSource,
            salt: k.pSaltSourceData.cast_const().cast(),
            salt_len: k.ulSaltSourceDataLen,
            iterations: k.iterations,
            prf: k.prf,
            prf_data_len: k.ulPrfDataLen,
            password: k.pPassword.cast_const(),
        };
        (fields, len)
    } else if n == size_of::<CK_PKCS5_PBKD2_PARAMS>() {
        // SAFETY: forwarded contract; the size is checked inside.
        let k: CK_PKCS5_PBKD2_PARAMS = unsafe { read_struct(mech, p, n) }?;
        if k.ulPasswordLen.is_null() {
            return Err(param_invalid(mech, "NULL ulPasswordLen"));
        }
        // SAFETY: the old layout's contract makes ulPasswordLen a readable pointer.
        let len = unsafe { k.ulPasswordLen.read_unaligned() };
        let fields = Pbkd2Fields {
            salt_source: k.saltSource,
            salt: k.pSaltSourceData.cast_const().cast(),
            salt_len: k.ulSaltSourceDataLen,
            iterations: k.iterations,
            prf: k.prf,
            prf_data_len: k.ulPrfDataLen,
            password: k.pPassword.cast_const(),
        };
        (fields, len)
    } else {
        return Err(param_invalid(
            mech,
            "parameter size does not match its structure",
        ));
    };
    // PRF data is only defined for the GOST PRF, which is not offered.
    if k.prf_data_len != 0 {
        return Err(param_invalid(mech, "the HMAC PRFs take no PRF data"));
    }
    Ok(MechParams::Pbkdf2 {
        salt_source: k.salt_source,
        // SAFETY: the salt is readable for its stated length by contract.
        salt: unsafe { bytes(mech, k.salt, k.salt_len) }?,
        iterations: k.iterations,
        prf: k.prf,
        // SAFETY: the password is readable for its stated length by contract.
        password: Zeroizing::new(unsafe { bytes(mech, k.password, password_len) }?),
    })
}

/// The fields both PBKDF2 layouts share.
struct Pbkd2Fields {
    salt_source: CK_ULONG,
    salt: *const u8,
    salt_len: CK_ULONG,
    iterations: CK_ULONG,
    prf: CK_ULONG,
    prf_data_len: CK_ULONG,
    password: *const u8,
}

/// CK_SP800_108_KDF_PARAMS of the counter-mode KDF, its data parameters copied into owned
/// values. Additional derived keys are refused: C_DeriveKey returns one handle.
///
/// # Safety
/// If `p` is not NULL it must be readable for `n` bytes, with pDataParams readable for
/// ulNumberOfDataParams entries and each entry's pValue readable for its ulValueLen.
pub(super) unsafe fn sp800_108(
    mech: CK_MECHANISM_TYPE,
    p: *const std::ffi::c_void,
    n: usize,
) -> Result<MechParams> {
    // SAFETY: forwarded contract; the size is checked inside.
    let k: CK_SP800_108_KDF_PARAMS = unsafe { read_struct(mech, p, n) }?;
    if k.ulAdditionalDerivedKeys != 0 {
        return Err(param_invalid(
            mech,
            "additional derived keys are not supported",
        ));
    }
    let count = usize::try_from(k.ulNumberOfDataParams)
        .ok()
        .filter(|c| *c <= MAX_DATA_PARAMS)
        .ok_or_else(|| param_invalid(mech, "too many data parameters"))?;
    if count > 0 && k.pDataParams.is_null() {
        return Err(param_invalid(
            mech,
            "NULL pDataParams with a non-zero count",
        ));
    }
    let mut data = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: `i < count` entries are readable at pDataParams by contract; an array inside
        // a caller's structure may be misaligned.
        let d = unsafe { k.pDataParams.cast_const().wrapping_add(i).read_unaligned() };
        let value = d.pValue.cast_const();
        let len = usize::try_from(d.ulValueLen)
            .map_err(|_| param_invalid(mech, "length does not fit in memory"))?;
        data.push(match d.type_ {
            CK_SP800_108_ITERATION_VARIABLE => {
                // SAFETY: pValue is readable for ulValueLen bytes by contract; size checked.
                let c: CK_SP800_108_COUNTER_FORMAT = unsafe { read_struct(mech, value, len) }?;
                PrfData::Counter {
                    little_endian: c.bLittleEndian != CK_FALSE,
                    bits: c.ulWidthInBits,
                }
            }
            CK_SP800_108_DKM_LENGTH => {
                // SAFETY: pValue is readable for ulValueLen bytes by contract; size checked.
                let f: CK_SP800_108_DKM_LENGTH_FORMAT = unsafe { read_struct(mech, value, len) }?;
                PrfData::DkmLength {
                    method: f.dkmLengthMethod,
                    little_endian: f.bLittleEndian != CK_FALSE,
                    bits: f.ulWidthInBits,
                }
            }
            CK_SP800_108_BYTE_ARRAY => {
                // SAFETY: pValue is readable for ulValueLen bytes by contract.
                PrfData::Bytes(unsafe { bytes(mech, value.cast(), d.ulValueLen) }?)
            }
            CK_SP800_108_KEY_HANDLE => {
                // SAFETY: pValue is readable for ulValueLen bytes by contract; size checked.
                let h: CK_OBJECT_HANDLE = unsafe { read_struct(mech, value, len) }?;
                PrfData::Key(h)
            }
            // CK_SP800_108_COUNTER belongs to the feedback and double-pipeline modes.
            _ => return Err(param_invalid(mech, "data parameter type not valid here")),
        });
    }
    Ok(MechParams::Sp800108 {
        prf: k.prfType,
        data,
    })
}

/// CK_AES_CBC_ENCRYPT_DATA_PARAMS.
///
/// # Safety
/// If `p` is not NULL it must be readable for `n` bytes, with pData readable for `length`.
pub(super) unsafe fn cbc_encrypt_data(
    mech: CK_MECHANISM_TYPE,
    p: *const std::ffi::c_void,
    n: usize,
) -> Result<MechParams> {
    // SAFETY: forwarded contract; the size is checked inside.
    let c: CK_AES_CBC_ENCRYPT_DATA_PARAMS = unsafe { read_struct(mech, p, n) }?;
    Ok(MechParams::EncryptData {
        iv: c.iv.to_vec(),
        // SAFETY: the data is readable for `length` bytes by contract.
        data: unsafe { bytes(mech, c.pData, c.length) }?,
    })
}

#[cfg(test)]
mod tests;
