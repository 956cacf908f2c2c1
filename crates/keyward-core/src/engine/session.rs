//! A session's state: its slot, R/W flag, active find, and active cryptographic operations.

use std::sync::Arc;

use cryptoki_sys::*;

use crate::api::ObjectHandle;
use crate::engine::message::MessageOp;
use crate::engine::token::Token;
use crate::error::{Code, Result};
use crate::mechanism::{Bytes, CipherOp, DigestOp, SignOp, VerifyOp};
use crate::types::{OutCap, Output};

/// Whether an operation's key needs a CKU_CONTEXT_SPECIFIC login (CKA_ALWAYS_AUTHENTICATE).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContextAuth {
    NotNeeded,
    Needed,
    Done,
}

impl ContextAuth {
    pub fn check(self) -> Result<()> {
        match self {
            ContextAuth::Needed => Err(Code::UserNotLoggedIn.err(
                "the key has CKA_ALWAYS_AUTHENTICATE: log in with CKU_CONTEXT_SPECIFIC first",
            )),
            _ => Ok(()),
        }
    }
}

/// An active operation with the output it computed but could not yet hand over because the
/// caller's buffer was too small (returned on the retry, as PKCS#11's length convention expects).
pub(crate) struct Active<T: ?Sized> {
    pub op: Box<T>,
    pub pending: Option<Bytes>,
    pub auth: ContextAuth,
}

impl<T: ?Sized> Active<T> {
    pub fn new(op: Box<T>, auth: ContextAuth) -> Active<T> {
        Active {
            op,
            pending: None,
            auth,
        }
    }
}

pub(crate) struct Find {
    pub results: Vec<ObjectHandle>,
    pub pos: usize,
}

pub(crate) struct Session {
    pub slot: CK_SLOT_ID,
    pub token: Arc<Token>,
    pub rw: bool,
    pub find: Option<Find>,
    pub encrypt: Option<Active<dyn CipherOp>>,
    pub decrypt: Option<Active<dyn CipherOp>>,
    pub digest: Option<Active<dyn DigestOp>>,
    pub sign: Option<Active<dyn SignOp>>,
    pub verify: Option<Active<dyn VerifyOp>>,
    pub msg_encrypt: Option<MessageOp>,
    pub msg_decrypt: Option<MessageOp>,
}

impl Session {
    pub fn new(slot: CK_SLOT_ID, token: Arc<Token>, rw: bool) -> Session {
        Session {
            slot,
            token,
            rw,
            find: None,
            encrypt: None,
            decrypt: None,
            digest: None,
            sign: None,
            verify: None,
            msg_encrypt: None,
            msg_decrypt: None,
        }
    }

    /// Cancel the operations named by CKF_ flags (C_SessionCancel), or all with `!0`.
    pub fn cancel(&mut self, flags: CK_FLAGS) {
        if flags & CKF_ENCRYPT != 0 {
            self.encrypt = None;
        }
        if flags & CKF_DECRYPT != 0 {
            self.decrypt = None;
        }
        if flags & CKF_DIGEST != 0 {
            self.digest = None;
        }
        if flags & CKF_SIGN != 0 {
            self.sign = None;
        }
        if flags & CKF_VERIFY != 0 {
            self.verify = None;
        }
        if flags & CKF_FIND_OBJECTS != 0 {
            self.find = None;
        }
        if flags & CKF_MESSAGE_ENCRYPT != 0 {
            self.msg_encrypt = None;
        }
        if flags & CKF_MESSAGE_DECRYPT != 0 {
            self.msg_decrypt = None;
        }
    }

    pub fn any_operation(&self) -> bool {
        self.find.is_some()
            || self.encrypt.is_some()
            || self.decrypt.is_some()
            || self.digest.is_some()
            || self.sign.is_some()
            || self.verify.is_some()
            || self.msg_encrypt.is_some()
            || self.msg_decrypt.is_some()
    }

    /// Whether a CKU_CONTEXT_SPECIFIC login has an operation to authorise; marks it done.
    pub fn authorise_context(&mut self) -> bool {
        let mut any = false;
        for auth in [
            self.encrypt.as_mut().map(|a| &mut a.auth),
            self.decrypt.as_mut().map(|a| &mut a.auth),
            self.sign.as_mut().map(|a| &mut a.auth),
            self.verify.as_mut().map(|a| &mut a.auth),
        ]
        .into_iter()
        .flatten()
        {
            if *auth == ContextAuth::Needed {
                *auth = ContextAuth::Done;
                any = true;
            }
        }
        any
    }
}

/// Apply the output-length convention to a step whose output length is known up front:
/// `Len`/`TooSmall` leave the operation as it is; otherwise `run` produces the output.
pub(crate) fn exact<F>(len: usize, cap: OutCap, run: F) -> Result<Output>
where
    F: FnOnce() -> Result<Bytes>,
{
    match cap {
        None => Ok(Output::Len(len)),
        Some(c) if c < len => Ok(Output::TooSmall(len)),
        Some(_) => run().map(Output::Data),
    }
}

/// The same for a step whose output length is only bounded up front: a buffer below the bound
/// runs the step and keeps the output in `pending` if it still does not fit.
pub(crate) fn bounded<F>(
    bound: usize,
    cap: OutCap,
    pending: &mut Option<Bytes>,
    run: F,
) -> Result<Output>
where
    F: FnOnce() -> Result<Bytes>,
{
    if let Some(out) = pending.take() {
        return Ok(hand_over(out, cap, pending));
    }
    match cap {
        None => Ok(Output::Len(bound)),
        Some(_) => {
            let out = run()?;
            Ok(hand_over(out, cap, pending))
        }
    }
}

fn hand_over(out: Bytes, cap: OutCap, pending: &mut Option<Bytes>) -> Output {
    match cap {
        None => {
            let n = out.len();
            *pending = Some(out);
            Output::Len(n)
        }
        Some(c) if c < out.len() => {
            let n = out.len();
            *pending = Some(out);
            Output::TooSmall(n)
        }
        Some(_) => Output::Data(out),
    }
}
