//! Message-based encryption and decryption (PKCS#11 3.0 §5.15–5.16): one key, many AEAD
//! messages, each with its own IV, AAD and tag, single-part or in parts.
//!
//! A mechanism offers this when its info has CKF_MESSAGE_ENCRYPT / CKF_MESSAGE_DECRYPT; each
//! message then runs as that mechanism's own one-message encryption (AES-GCM, AES-CCM,
//! ChaCha20-Poly1305) with the per-message parameters, so both paths share one
//! implementation. The tag travels in the per-message parameter, not in the ciphertext.
//!
//! IV generation (encryption only; decryption uses the IV it is given): CKG_NO_GENERATE
//! takes the caller's IV; CKG_GENERATE and CKG_GENERATE_COUNTER keep the caller's leading
//! ulIvFixedBits and put a per-operation message counter, big-endian, in the rest;
//! CKG_GENERATE_COUNTER_XOR XORs the counter into the caller's IV (TLS 1.3 style);
//! CKG_GENERATE_RANDOM fills the rest from the DRBG. The counter starts at zero with each
//! C_MessageEncryptInit, so the fixed field must tell operations on one key apart, as
//! SP 800-38D §8.2.1 requires of the deterministic construction; a counter that would
//! repeat is refused.

use std::sync::Arc;

use cryptoki_sys::*;

use crate::api::{ObjectHandle, SessionHandle};
use crate::engine::app::{Application, poisoned};
use crate::engine::crypto::KeyRole;
use crate::engine::session::{Session, bounded, exact};
use crate::error::{Code, Result};
use crate::mechanism::{Bytes, CipherOp, Mech};
use crate::object::Object;
use crate::types::{MechParams, Mechanism, OutCap, Output};

/// A message-based encryption or decryption: the mechanism and key of C_Message*Init, the
/// message counter, and the message in progress, if any.
pub(crate) struct MessageOp {
    mech: CK_MECHANISM_TYPE,
    m: &'static dyn Mech,
    key: Arc<Object>,
    counter: u64,
    current: Option<InFlight>,
}

/// A message being processed in parts (C_*MessageBegin / C_*MessageNext).
struct InFlight {
    op: Box<dyn CipherOp>,
    tag_len: usize,
    /// Output of the last part that did not fit the caller's buffer, with the tag that goes
    /// with it (encryption), handed over on the retry.
    pending: Option<Bytes>,
    pending_tag: Option<Vec<u8>>,
}

fn not_initialized(encrypt: bool) -> crate::Error {
    let what = if encrypt { "encryption" } else { "decryption" };
    Code::OperationNotInitialized.err(format!("no message-based {what} operation"))
}

fn aead_params(params: &MechParams) -> Result<(&[u8], usize, CK_ULONG)> {
    match params {
        MechParams::AeadMessage {
            iv, tag, data_len, ..
        } => Ok((iv, tag.len(), *data_len)),
        _ => Err(Code::MechanismParamInvalid.err("a per-message AEAD parameter is needed")),
    }
}

/// The one-message mechanism equivalent to a message of `mech` with these parameters.
fn per_message(
    mech: CK_MECHANISM_TYPE,
    iv: &[u8],
    tag_len: usize,
    data_len: CK_ULONG,
    aad: &[u8],
) -> Result<Mechanism> {
    let bits = |n: usize| CK_ULONG::try_from(n.saturating_mul(8)).unwrap_or(CK_ULONG::MAX);
    let params = match mech {
        CKM_AES_GCM | CKM_CHACHA20_POLY1305 => MechParams::Gcm {
            iv: iv.to_vec(),
            iv_bits: bits(iv.len()),
            aad: aad.to_vec(),
            tag_bits: bits(tag_len),
        },
        CKM_AES_CCM => MechParams::Ccm {
            data_len,
            nonce: iv.to_vec(),
            aad: aad.to_vec(),
            mac_len: CK_ULONG::try_from(tag_len).unwrap_or(CK_ULONG::MAX),
        },
        _ => {
            return Err(Code::MechanismInvalid
                .err(format!("mechanism {mech:#x} has no message-based form")));
        }
    };
    if mech == CKM_CHACHA20_POLY1305 && tag_len != 16 {
        return Err(Code::MechanismParamInvalid.err("the ChaCha20-Poly1305 tag is 16 bytes"));
    }
    Ok(Mechanism { mech, params })
}

/// The IV of the next message to encrypt, per the caller's generator; written back into
/// `params` so the caller learns it.
fn next_iv(params: &mut MechParams, counter: &mut u64) -> Result<Vec<u8>> {
    let MechParams::AeadMessage {
        iv,
        iv_fixed_bits,
        generator,
        ..
    } = params
    else {
        return Err(Code::MechanismParamInvalid.err("a per-message AEAD parameter is needed"));
    };
    if iv.is_empty() {
        return Err(Code::MechanismParamInvalid.err("the IV is empty"));
    }
    if *generator == CKG_NO_GENERATE {
        return Ok(iv.clone());
    }
    let fixed = usize::try_from(*iv_fixed_bits)
        .ok()
        .filter(|b| b % 8 == 0 && b / 8 < iv.len())
        .map(|b| b / 8)
        .ok_or_else(|| {
            Code::MechanismParamInvalid
                .err("ulIvFixedBits must be whole bytes and leave room in the IV")
        })?;
    let free = iv.len() - fixed;
    match *generator {
        CKG_GENERATE | CKG_GENERATE_COUNTER | CKG_GENERATE_COUNTER_XOR => {
            let n = *counter;
            // The counter must fit the free bytes: a repeated IV under GCM reveals the
            // authentication key.
            if free < 8 && n >> (free * 8) != 0 {
                return Err(Code::MechanismParamInvalid
                    .err("the IV counter is exhausted; start a new operation"));
            }
            let be = n.to_be_bytes();
            let tail = &mut iv[fixed..];
            for (i, b) in tail.iter_mut().rev().enumerate() {
                let c = if i < 8 { be[7 - i] } else { 0 };
                if *generator == CKG_GENERATE_COUNTER_XOR {
                    *b ^= c;
                } else {
                    *b = c;
                }
            }
            *counter = n
                .checked_add(1)
                .ok_or_else(|| Code::MechanismParamInvalid.err("the IV counter is exhausted"))?;
        }
        CKG_GENERATE_RANDOM => keyward_ossl::rand::fill(&mut iv[fixed..])?,
        other => {
            return Err(Code::MechanismParamInvalid.err(format!("unknown IV generator {other:#x}")));
        }
    }
    Ok(iv.clone())
}

fn set_tag(params: &mut MechParams, value: &[u8]) -> Result<()> {
    match params {
        MechParams::AeadMessage { tag, .. } if tag.len() == value.len() => {
            tag.copy_from_slice(value);
            Ok(())
        }
        _ => Err(Code::GeneralError.err("the tag does not fit the per-message parameter")),
    }
}

/// Split the tag off the end of one message's encryption output.
fn split_tag(mut out: Bytes, tag_len: usize) -> Result<(Bytes, Vec<u8>)> {
    let at = out
        .len()
        .checked_sub(tag_len)
        .ok_or_else(|| Code::GeneralError.err("the mechanism produced no tag"))?;
    let tag = out[at..].to_vec();
    out.truncate(at);
    Ok((out, tag))
}

impl Application {
    fn slot_of(g: &mut Session, encrypt: bool) -> &mut Option<MessageOp> {
        if encrypt {
            &mut g.msg_encrypt
        } else {
            &mut g.msg_decrypt
        }
    }

    pub(crate) fn message_init_impl(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
        encrypt: bool,
    ) -> Result<()> {
        let s = self.session(session)?;
        if Self::slot_of(&mut *s.lock().map_err(|_| poisoned())?, encrypt).is_some() {
            return Err(Code::OperationActive.err("a message-based operation is already active"));
        }
        let (usage, flag) = if encrypt {
            (CKA_ENCRYPT, CKF_MESSAGE_ENCRYPT)
        } else {
            (CKA_DECRYPT, CKF_MESSAGE_DECRYPT)
        };
        let (m, object, _) = self.prepare_as(session, mech, key, usage, KeyRole::OPERATION)?;
        if m.info().flags & flag == 0 {
            return Err(Code::MechanismInvalid.err(format!(
                "mechanism {:#x} has no message-based form",
                mech.mech
            )));
        }
        if !matches!(mech.params, MechParams::None) {
            return Err(Code::MechanismParamInvalid
                .err("parameters are given per message, not to C_Message*Init"));
        }
        let mut g = s.lock().map_err(|_| poisoned())?;
        let slot = Self::slot_of(&mut g, encrypt);
        if slot.is_some() {
            return Err(Code::OperationActive.err("a message-based operation is already active"));
        }
        *slot = Some(MessageOp {
            mech: mech.mech,
            m,
            key: object,
            counter: 0,
            current: None,
        });
        Ok(())
    }

    pub(crate) fn message_final_impl(&self, session: SessionHandle, encrypt: bool) -> Result<()> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        Self::slot_of(&mut g, encrypt)
            .take()
            .map(|_| ())
            .ok_or_else(|| not_initialized(encrypt))
    }

    /// C_EncryptMessage / C_DecryptMessage: one whole message.
    pub(crate) fn message_one_shot(
        &self,
        session: SessionHandle,
        encrypt: bool,
        params: &mut MechParams,
        aad: &[u8],
        input: &[u8],
        cap: OutCap,
    ) -> Result<Output> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let state = Self::slot_of(&mut g, encrypt)
            .as_mut()
            .ok_or_else(|| not_initialized(encrypt))?;
        if state.current.is_some() {
            return Err(Code::OperationActive.err("a message is being processed in parts"));
        }
        let (_, tag_len, data_len) = aead_params(params)?;
        // AEAD output is as long as its input; the tag goes to the parameter.
        exact(input.len(), cap, || {
            if encrypt {
                let iv = next_iv(params, &mut state.counter)?;
                let pm = per_message(state.mech, &iv, tag_len, data_len, aad)?;
                let out = state.m.encrypt_init(&pm, &state.key)?.one_shot(input)?;
                let (ct, tag) = split_tag(out, tag_len)?;
                set_tag(params, &tag)?;
                Ok(ct)
            } else {
                let (iv, _, _) = aead_params(params)?;
                let pm = per_message(state.mech, iv, tag_len, data_len, aad)?;
                let MechParams::AeadMessage { tag, .. } = &*params else {
                    return Err(Code::MechanismParamInvalid.err("no tag"));
                };
                let mut sealed = zeroize::Zeroizing::new(Vec::with_capacity(input.len() + tag_len));
                sealed.extend_from_slice(input);
                sealed.extend_from_slice(tag);
                state.m.decrypt_init(&pm, &state.key)?.one_shot(&sealed)
            }
        })
    }

    /// C_EncryptMessageBegin / C_DecryptMessageBegin.
    pub(crate) fn message_begin(
        &self,
        session: SessionHandle,
        encrypt: bool,
        params: &mut MechParams,
        aad: &[u8],
    ) -> Result<()> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let state = Self::slot_of(&mut g, encrypt)
            .as_mut()
            .ok_or_else(|| not_initialized(encrypt))?;
        if state.current.is_some() {
            return Err(Code::OperationActive.err("a message is already in progress"));
        }
        let (_, tag_len, data_len) = aead_params(params)?;
        let op = if encrypt {
            let iv = next_iv(params, &mut state.counter)?;
            let pm = per_message(state.mech, &iv, tag_len, data_len, aad)?;
            state.m.encrypt_init(&pm, &state.key)?
        } else {
            let (iv, _, _) = aead_params(params)?;
            let pm = per_message(state.mech, iv, tag_len, data_len, aad)?;
            state.m.decrypt_init(&pm, &state.key)?
        };
        state.current = Some(InFlight {
            op,
            tag_len,
            pending: None,
            pending_tag: None,
        });
        Ok(())
    }

    /// C_EncryptMessageNext / C_DecryptMessageNext. A failure ends the message, not the
    /// message-based operation.
    pub(crate) fn message_next(
        &self,
        session: SessionHandle,
        encrypt: bool,
        params: &mut MechParams,
        part: &[u8],
        last: bool,
        cap: OutCap,
    ) -> Result<Output> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let state = Self::slot_of(&mut g, encrypt)
            .as_mut()
            .ok_or_else(|| not_initialized(encrypt))?;
        let fl = state
            .current
            .as_mut()
            .ok_or_else(|| Code::OperationNotInitialized.err("no message was begun"))?;
        let tag_len = fl.tag_len;
        let op = &mut fl.op;
        let mut tag_out = None;
        let r = if !last {
            bounded(
                op.output_len(part.len(), false),
                cap,
                &mut fl.pending,
                || op.update(part),
            )
        } else if encrypt {
            let bound = op.output_len(part.len(), true).saturating_sub(tag_len);
            let r = bounded(bound, cap, &mut fl.pending, || {
                let mut out = op.update(part)?;
                out.extend_from_slice(&op.finish()?);
                let (ct, tag) = split_tag(out, tag_len)?;
                tag_out = Some(tag);
                Ok(ct)
            });
            // Kept until the ciphertext is handed over, which may take a retry.
            if let Some(t) = tag_out {
                fl.pending_tag = Some(t);
            }
            r
        } else {
            let MechParams::AeadMessage { tag, .. } = &*params else {
                return Err(Code::MechanismParamInvalid.err("no tag"));
            };
            let tag = tag.clone();
            let bound = op.output_len(part.len() + tag.len(), true);
            bounded(bound, cap, &mut fl.pending, || {
                let mut out = op.update(part)?;
                out.extend_from_slice(&op.update(&tag)?);
                out.extend_from_slice(&op.finish()?);
                Ok(out)
            })
        };
        match &r {
            Err(_) => state.current = None,
            Ok(Output::Data(_)) if last => {
                if let Some(fl) = state.current.take()
                    && let Some(t) = fl.pending_tag
                {
                    set_tag(params, &t)?;
                }
            }
            Ok(_) => {}
        }
        r
    }
}
