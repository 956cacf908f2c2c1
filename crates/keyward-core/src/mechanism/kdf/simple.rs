//! The simple derivations: CKM_CONCATENATE_BASE_AND_KEY, CKM_CONCATENATE_BASE_AND_DATA and
//! CKM_CONCATENATE_DATA_AND_BASE (PKCS#11 3.0 Current Mechanisms §6.43), and
//! CKM_AES_ECB_ENCRYPT_DATA / CKM_AES_CBC_ENCRYPT_DATA (§2.15.4).
//!
//! The derived value is the concatenation or the ciphertext, truncated from the end to
//! CKA_VALUE_LEN; it is never lengthened. The derived key inherits its inputs' protection
//! (see the family's rules), since its value shows theirs.

use cryptoki_sys::*;
use keyward_ossl::cipher::{AesCipher, AesMode, BLOCK};
use zeroize::Zeroizing;

use super::{VALUE_KEY_TYPES, derived, inherit_protection, named_key, ulong, value_of};
use crate::error::{Code, Result};
use crate::mechanism::{Bytes, KeyLookup, Mech, Registry, derived_key_len};
use crate::object::Object;
use crate::types::{Attrs, MechParams, Mechanism, MechanismInfo};

/// Longest input key or data, in bytes.
const MAX_LEN: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Concat {
    BaseAndKey,
    BaseAndData,
    DataAndBase,
}

struct Concatenate(Concat);

impl Mech for Concatenate {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 1,
            max_key_size: ulong(MAX_LEN),
            flags: CKF_DERIVE,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        VALUE_KEY_TYPES
    }

    fn derive_key(
        &self,
        mech: &Mechanism,
        base: &Object,
        template: &Attrs,
        keys: &dyn KeyLookup,
    ) -> Result<Attrs> {
        let base_value = value_of(base)?;
        let mut value: Bytes = Zeroizing::new(Vec::new());
        match (self.0, &mech.params) {
            (Concat::BaseAndKey, MechParams::Ulong(handle)) => {
                let other = named_key(keys, *handle, mech, VALUE_KEY_TYPES)?;
                inherit_protection(template, &[base, &other])?;
                value.extend_from_slice(base_value);
                value.extend_from_slice(value_of(&other)?);
            }
            (Concat::BaseAndData, MechParams::Bytes(data)) => {
                inherit_protection(template, &[base])?;
                value.extend_from_slice(base_value);
                value.extend_from_slice(data);
            }
            (Concat::DataAndBase, MechParams::Bytes(data)) => {
                inherit_protection(template, &[base])?;
                value.extend_from_slice(data);
                value.extend_from_slice(base_value);
            }
            _ => {
                return Err(Code::MechanismParamInvalid.err(format!(
                    "mechanism {:#x} needs a key handle or CK_KEY_DERIVATION_STRING_DATA",
                    mech.mech
                )));
            }
        }
        if value.len() > 2 * MAX_LEN {
            return Err(Code::MechanismParamInvalid.err(format!(
                "the concatenation is longer than {} bytes",
                2 * MAX_LEN
            )));
        }
        let len = derived_key_len(template, Some(value.len()))?;
        if len > value.len() {
            return Err(Code::TemplateInconsistent.err(format!(
                "the concatenation has {} bytes, fewer than the {len} asked for",
                value.len()
            )));
        }
        value.truncate(len);
        Ok(derived(value))
    }
}

/// CKM_AES_ECB_ENCRYPT_DATA (`iv` None) and CKM_AES_CBC_ENCRYPT_DATA.
struct EncryptData {
    cbc: bool,
}

impl Mech for EncryptData {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 16,
            max_key_size: 32,
            flags: CKF_DERIVE,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }

    fn derive_key(
        &self,
        mech: &Mechanism,
        base: &Object,
        template: &Attrs,
        _keys: &dyn KeyLookup,
    ) -> Result<Attrs> {
        let (iv, data) = match (self.cbc, &mech.params) {
            (false, MechParams::Bytes(data)) => (None, data),
            (true, MechParams::EncryptData { iv, data }) if iv.len() == BLOCK => {
                (Some(iv.as_slice()), data)
            }
            _ => {
                return Err(Code::MechanismParamInvalid.err(format!(
                    "mechanism {:#x} needs its data parameter structure",
                    mech.mech
                )));
            }
        };
        if data.is_empty() || !data.len().is_multiple_of(BLOCK) || data.len() > MAX_LEN {
            return Err(Code::MechanismParamInvalid.err(format!(
                "the data is a non-zero multiple of {BLOCK} bytes up to {MAX_LEN}, not {}",
                data.len()
            )));
        }
        let key = value_of(base)?;
        if ![16, 24, 32].contains(&key.len()) {
            return Err(Code::KeySizeRange.err("an AES key is 16, 24 or 32 bytes"));
        }
        inherit_protection(template, &[base])?;
        let len = derived_key_len(template, Some(data.len()))?;
        if len > data.len() {
            // The spec's code for data too short for the key.
            return Err(Code::DataLenRange.err(format!(
                "{} bytes of data cannot make a {len}-byte key",
                data.len()
            )));
        }
        let mode = if self.cbc { AesMode::Cbc } else { AesMode::Ecb };
        let mut cipher = AesCipher::new(mode, true, key, iv)?;
        let mut out: Bytes = Zeroizing::new(Vec::with_capacity(data.len() + BLOCK));
        cipher.update(data, &mut out)?;
        cipher.finish(&mut out)?;
        out.truncate(len);
        Ok(derived(out))
    }
}

pub(super) fn register(reg: &mut Registry) {
    reg.add(
        CKM_CONCATENATE_BASE_AND_KEY,
        Box::new(Concatenate(Concat::BaseAndKey)),
    );
    reg.add(
        CKM_CONCATENATE_BASE_AND_DATA,
        Box::new(Concatenate(Concat::BaseAndData)),
    );
    reg.add(
        CKM_CONCATENATE_DATA_AND_BASE,
        Box::new(Concatenate(Concat::DataAndBase)),
    );
    reg.add(
        CKM_AES_ECB_ENCRYPT_DATA,
        Box::new(EncryptData { cbc: false }),
    );
    reg.add(
        CKM_AES_CBC_ENCRYPT_DATA,
        Box::new(EncryptData { cbc: true }),
    );
}
