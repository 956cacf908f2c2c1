//! CKM_AES_CCM (PKCS#11 3.0 §2.14): counter with CBC-MAC over CK_CCM_PARAMS, single- and
//! multi-part. CCM needs the whole message before its first output block (the length opens
//! the CBC-MAC), so multi-part calls collect the input and `finish` produces everything.

use cryptoki_sys::*;
use keyward_ossl::ccm;
use zeroize::Zeroizing;

use super::aes_value;
use crate::error::{Code, Result};
use crate::mechanism::{Bytes, CipherOp, Mech};
use crate::object::Object;
use crate::types::{MechParams, Mechanism, MechanismInfo};

/// CK_CCM_PARAMS, checked.
struct CcmParams<'a> {
    nonce: &'a [u8],
    aad: &'a [u8],
    data_len: usize,
    tag_len: usize,
}

fn param_invalid(why: String) -> crate::error::Error {
    Code::MechanismParamInvalid.err(why)
}

fn ccm_params(mech: &Mechanism) -> Result<CcmParams<'_>> {
    let MechParams::Ccm {
        data_len,
        nonce,
        aad,
        mac_len,
    } = &mech.params
    else {
        return Err(Code::MechanismParamInvalid.err("CKM_AES_CCM needs CK_CCM_PARAMS"));
    };
    if !(ccm::MIN_NONCE_LEN..=ccm::MAX_NONCE_LEN).contains(&nonce.len()) {
        return Err(param_invalid(format!(
            "a CCM nonce is 7 to 13 bytes, not {}",
            nonce.len()
        )));
    }
    let tag_len = usize::try_from(*mac_len)
        .ok()
        .filter(|t| ccm::tag_len_valid(*t))
        .ok_or_else(|| param_invalid(format!("CCM MAC of {mac_len} bytes (4, 6, ..., 16)")))?;
    // The nonce leaves 15 - ulNonceLen bytes to encode the payload length.
    if u128::from(*data_len) > u128::from(ccm::max_data_len(nonce.len())) {
        return Err(param_invalid(format!(
            "ulDataLen {data_len} does not fit the length field a {}-byte nonce leaves",
            nonce.len()
        )));
    }
    let data_len = usize::try_from(*data_len)
        .ok()
        .filter(|l| *l <= ccm::MAX_INPUT)
        .ok_or_else(|| param_invalid(format!("ulDataLen {data_len} is above 1 GiB")))?;
    if aad.len() > ccm::MAX_INPUT {
        return Err(param_invalid("CCM AAD above 1 GiB".into()));
    }
    Ok(CcmParams {
        nonce,
        aad,
        data_len,
        tag_len,
    })
}

pub(super) struct AesCcmMech;

impl AesCcmMech {
    fn init(encrypt: bool, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        let p = ccm_params(mech)?;
        let key = Zeroizing::new(aes_value(key)?.to_vec());
        Ok(Box::new(CcmOp {
            key,
            nonce: p.nonce.to_vec(),
            aad: p.aad.to_vec(),
            data_len: p.data_len,
            tag_len: p.tag_len,
            encrypt,
            buf: Zeroizing::new(Vec::new()),
        }))
    }
}

impl Mech for AesCcmMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 16,
            max_key_size: 32,
            // Authenticated: fit to wrap keys and to run as messages (engine/message.rs).
            flags: CKF_ENCRYPT
                | CKF_DECRYPT
                | CKF_WRAP
                | CKF_UNWRAP
                | CKF_MESSAGE_ENCRYPT
                | CKF_MESSAGE_DECRYPT,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }

    fn encrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        AesCcmMech::init(true, mech, key)
    }

    fn decrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        AesCcmMech::init(false, mech, key)
    }
}

/// A CCM operation: the input is collected until `finish`, so a decryption releases no
/// plaintext before its tag has been checked.
struct CcmOp {
    key: Zeroizing<Vec<u8>>,
    nonce: Vec<u8>,
    aad: Vec<u8>,
    data_len: usize,
    tag_len: usize,
    encrypt: bool,
    buf: Zeroizing<Vec<u8>>,
}

impl CcmOp {
    /// The exact input length: ulDataLen of plaintext, or ulDataLen + ulMACLen of ciphertext.
    fn expected(&self) -> usize {
        if self.encrypt {
            self.data_len
        } else {
            self.data_len + self.tag_len
        }
    }

    fn len_error(&self, got: usize) -> crate::error::Error {
        if self.encrypt {
            Code::DataLenRange.err(format!(
                "CCM plaintext is ulDataLen = {} bytes, not {got}",
                self.data_len
            ))
        } else {
            Code::EncryptedDataLenRange.err(format!(
                "CCM ciphertext is ulDataLen + ulMACLen = {} bytes, not {got}",
                self.expected()
            ))
        }
    }

    fn run(&self, input: &[u8]) -> Result<Bytes> {
        if input.len() != self.expected() {
            return Err(self.len_error(input.len()));
        }
        if self.encrypt {
            let sealed = ccm::seal(&self.key, &self.nonce, &self.aad, self.tag_len, input)?;
            Ok(Zeroizing::new(sealed))
        } else {
            ccm::open(&self.key, &self.nonce, &self.aad, self.tag_len, input)?.ok_or_else(|| {
                Code::EncryptedDataInvalid.err("CCM tag does not authenticate the data")
            })
        }
    }
}

impl CipherOp for CcmOp {
    fn output_len(&self, _input_len: usize, last: bool) -> usize {
        match (last, self.encrypt) {
            (false, _) => 0,
            (true, true) => self.data_len + self.tag_len,
            (true, false) => self.data_len,
        }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        let total = self.buf.len().saturating_add(input.len());
        if total > self.expected() {
            return Err(self.len_error(total));
        }
        self.buf.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish(&mut self) -> Result<Bytes> {
        let buf = std::mem::take(&mut self.buf);
        self.run(&buf)
    }

    fn one_shot(&mut self, input: &[u8]) -> Result<Bytes> {
        if self.buf.is_empty() {
            // Nothing collected: seal or open the caller's buffer without copying it.
            self.run(input)
        } else {
            self.update(input)?;
            self.finish()
        }
    }
}

#[cfg(test)]
mod tests;
