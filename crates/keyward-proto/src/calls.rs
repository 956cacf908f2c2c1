//! The call table: one row per [`Api`] method, from which the wire messages ([`Call`],
//! [`Answer`]), the daemon's [`dispatch`] and the client's `impl Api for Remote` are all
//! generated, so that no method can be missing or mistyped on either side.
//!
//! Argument kinds in the table say how an `Api` argument travels:
//! `val T` by value; `copy T` is `&T` sent as `T` (Copy); `refd T` is `&T` sent as a clone;
//! `slice T` is `&[T]` sent as `Vec<T>`; `bytes` is `&[u8]` sent as [`Bytes`] (zeroized);
//! `optbytes` is `Option<&[u8]>`; `inout T` is `&mut T`, sent as a clone and returned in the
//! answer (named in brackets after the method) for the client to write back.

use std::fmt;

use cryptoki_sys::*;
use keyward_core::api::{Api, ObjectHandle, SessionHandle};
use keyward_core::types::*;
use keyward_core::{Code, Error, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::client::Remote;
use crate::wire::Bytes;

/// The `Api` parameter type of an argument kind.
macro_rules! api_ty {
    (val $t:ty) => { $t };
    (copy $t:ty) => { &$t };
    (refd $t:ty) => { &$t };
    (slice $t:ty) => { &[$t] };
    (inout $t:ty) => { &mut $t };
    (bytes) => { &[u8] };
    (optbytes) => { Option<&[u8]> };
}

/// The wire type of an argument kind.
macro_rules! wire_ty {
    (val $t:ty) => { $t };
    (copy $t:ty) => { $t };
    (refd $t:ty) => { $t };
    (slice $t:ty) => { Vec<$t> };
    (inout $t:ty) => { $t };
    (bytes) => { Bytes };
    (optbytes) => { Option<Bytes> };
}

/// Client side: the `Api` argument to its wire value.
macro_rules! to_wire {
    (val, $x:ident) => {
        $x
    };
    (copy, $x:ident) => {
        *$x
    };
    (refd, $x:ident) => {
        (*$x).clone()
    };
    (slice, $x:ident) => {
        $x.to_vec()
    };
    (inout, $x:ident) => {
        (*$x).clone()
    };
    (bytes, $x:ident) => {
        Bytes::from($x)
    };
    (optbytes, $x:ident) => {
        $x.map(Bytes::from)
    };
}

/// Daemon side: the wire value to the `Api` argument.
macro_rules! to_api {
    (val, $x:ident) => {
        $x
    };
    (copy, $x:ident) => {
        &$x
    };
    (refd, $x:ident) => {
        &$x
    };
    (slice, $x:ident) => {
        &$x
    };
    (inout, $x:ident) => {
        &mut $x
    };
    (bytes, $x:ident) => {
        &$x
    };
    (optbytes, $x:ident) => {
        $x.as_deref()
    };
}

macro_rules! calls {
    ($(
        $variant:ident = $method:ident $([$io:ident])?
            ( $($arg:ident : $kind:ident $($ty:ty)?),* $(,)? ) -> $ret:ty;
    )*) => {
        /// One `Api` call with owned arguments; variants are named after the C function.
        #[derive(PartialEq, Eq, Serialize, Deserialize)]
        #[allow(missing_docs)]
        pub enum Call {
            $(
                #[doc = concat!("C_", stringify!($variant), ".")]
                $variant { $($arg: wire_ty!($kind $($ty)?)),* },
            )*
        }

        /// The outcome of a [`Call`]: the method's value (and the updated in/out
        /// parameters), or its error.
        #[derive(PartialEq, Eq, Serialize, Deserialize)]
        #[allow(missing_docs)]
        pub enum Answer {
            /// The call failed with this CK_RV; `detail` is the reason for logs.
            Failed { rv: u64, detail: String },
            $(
                #[doc = concat!("C_", stringify!($variant), " succeeded.")]
                $variant { ret: $ret $(, $io: MechParams)? },
            )*
        }

        impl Call {
            /// The C function's name, e.g. `C_Sign` (for logs; never the arguments).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Call::$variant { .. } => concat!("C_", stringify!($variant)),)*
                }
            }
        }

        impl Answer {
            /// The C function's name this answers, or `Failed`.
            pub fn name(&self) -> &'static str {
                match self {
                    Answer::Failed { .. } => "Failed",
                    $(Answer::$variant { .. } => concat!("C_", stringify!($variant)),)*
                }
            }
        }

        /// Run `call` on `api` (the daemon's side of a request).
        pub fn dispatch(api: &dyn Api, call: Call) -> Answer {
            match call {
                $(
                    #[allow(unused_mut)]
                    Call::$variant { $(mut $arg),* } => {
                        match api.$method($(to_api!($kind, $arg)),*) {
                            Ok(ret) => Answer::$variant { ret $(, $io: $io)? },
                            Err(e) => failed(&e),
                        }
                    }
                )*
            }
        }

        impl Api for Remote {
            $(
                fn $method(&self, $($arg: api_ty!($kind $($ty)?)),*) -> Result<$ret> {
                    let call = Call::$variant { $($arg: to_wire!($kind, $arg)),* };
                    match self.current()?.call(call)? {
                        Answer::$variant { ret $(, $io: updated)? } => {
                            $(*$io = updated;)?
                            Ok(ret)
                        }
                        other => Err(unexpected(concat!("C_", stringify!($variant)), &other)),
                    }
                }
            )*
        }

        /// Test doubles generated from the same table.
        #[cfg(test)]
        pub(crate) mod fakes {
            use super::*;
            use crate::tests::{Sample, changed_params};

            /// One sample call per variant.
            pub(crate) fn sample_calls() -> Vec<Call> {
                vec![$(Call::$variant { $($arg: Sample::sample()),* },)*]
            }

            /// One sample success answer per variant.
            pub(crate) fn sample_answers() -> Vec<Answer> {
                vec![$(Answer::$variant { ret: Sample::sample() $(, $io: changed_params())? },)*]
            }

            /// Calls its hook with the method's name, then answers with the method's sample
            /// value and rewrites in/out parameters.
            pub(crate) struct Hooked(pub(crate) Box<dyn Fn(&'static str) + Send + Sync>);

            impl Hooked {
                /// No hook.
                pub(crate) fn echo() -> Hooked {
                    Hooked(Box::new(|_| {}))
                }
            }

            impl Api for Hooked {
                $(
                    #[allow(unused_variables)]
                    fn $method(&self, $($arg: api_ty!($kind $($ty)?)),*) -> Result<$ret> {
                        (self.0)(stringify!($method));
                        $(*$io = changed_params();)?
                        Ok(Sample::sample())
                    }
                )*
            }

            /// Fails every method with CKR_PIN_INCORRECT naming the method.
            pub(crate) struct Refuse;

            impl Api for Refuse {
                $(
                    #[allow(unused_variables)]
                    fn $method(&self, $($arg: api_ty!($kind $($ty)?)),*) -> Result<$ret> {
                        Err(Code::PinIncorrect.err(stringify!($method)))
                    }
                )*
            }
        }
    };
}

calls! {
    // ---- slots and tokens ----
    GetSlotList = slot_list(token_present: val bool) -> Vec<CK_SLOT_ID>;
    GetSlotInfo = slot_info(slot: val CK_SLOT_ID) -> SlotInfo;
    GetTokenInfo = token_info(slot: val CK_SLOT_ID) -> TokenInfo;
    GetMechanismList = mechanism_list(slot: val CK_SLOT_ID) -> Vec<CK_MECHANISM_TYPE>;
    GetMechanismInfo = mechanism_info(slot: val CK_SLOT_ID, mech: val CK_MECHANISM_TYPE)
        -> MechanismInfo;
    InitToken = init_token(slot: val CK_SLOT_ID, so_pin: bytes, label: copy [u8; 32]) -> ();
    InitPIN = init_pin(session: val SessionHandle, pin: bytes) -> ();
    SetPIN = set_pin(session: val SessionHandle, old_pin: bytes, new_pin: bytes) -> ();

    // ---- sessions ----
    OpenSession = open_session(slot: val CK_SLOT_ID, flags: val CK_FLAGS) -> SessionHandle;
    CloseSession = close_session(session: val SessionHandle) -> ();
    CloseAllSessions = close_all_sessions(slot: val CK_SLOT_ID) -> ();
    GetSessionInfo = session_info(session: val SessionHandle) -> SessionInfo;
    SessionCancel = session_cancel(session: val SessionHandle, flags: val CK_FLAGS) -> ();
    GetOperationState = get_operation_state(session: val SessionHandle) -> Vec<u8>;
    SetOperationState = set_operation_state(
        session: val SessionHandle,
        state: bytes,
        encryption_key: val ObjectHandle,
        authentication_key: val ObjectHandle,
    ) -> ();
    Login = login(session: val SessionHandle, user: val CK_USER_TYPE, pin: bytes) -> ();
    LoginUser = login_user(
        session: val SessionHandle,
        user: val CK_USER_TYPE,
        pin: bytes,
        username: bytes,
    ) -> ();
    Logout = logout(session: val SessionHandle) -> ();

    // ---- objects ----
    CreateObject = create_object(session: val SessionHandle, template: val Vec<Attribute>)
        -> ObjectHandle;
    CopyObject = copy_object(
        session: val SessionHandle,
        object: val ObjectHandle,
        template: val Vec<Attribute>,
    ) -> ObjectHandle;
    DestroyObject = destroy_object(session: val SessionHandle, object: val ObjectHandle) -> ();
    GetObjectSize = object_size(session: val SessionHandle, object: val ObjectHandle)
        -> CK_ULONG;
    GetAttributeValue = get_attribute_value(
        session: val SessionHandle,
        object: val ObjectHandle,
        types: slice CK_ATTRIBUTE_TYPE,
    ) -> Vec<AttrResult>;
    SetAttributeValue = set_attribute_value(
        session: val SessionHandle,
        object: val ObjectHandle,
        template: val Vec<Attribute>,
    ) -> ();
    FindObjectsInit = find_objects_init(session: val SessionHandle, template: val Vec<Attribute>)
        -> ();
    FindObjects = find_objects(session: val SessionHandle, max: val usize) -> Vec<ObjectHandle>;
    FindObjectsFinal = find_objects_final(session: val SessionHandle) -> ();

    // ---- encryption and decryption ----
    EncryptInit = encrypt_init(session: val SessionHandle, mech: refd Mechanism, key: val ObjectHandle)
        -> ();
    Encrypt = encrypt(session: val SessionHandle, data: bytes, cap: val OutCap) -> Output;
    EncryptUpdate = encrypt_update(session: val SessionHandle, data: bytes, cap: val OutCap)
        -> Output;
    EncryptFinal = encrypt_final(session: val SessionHandle, cap: val OutCap) -> Output;
    DecryptInit = decrypt_init(session: val SessionHandle, mech: refd Mechanism, key: val ObjectHandle)
        -> ();
    Decrypt = decrypt(session: val SessionHandle, data: bytes, cap: val OutCap) -> Output;
    DecryptUpdate = decrypt_update(session: val SessionHandle, data: bytes, cap: val OutCap)
        -> Output;
    DecryptFinal = decrypt_final(session: val SessionHandle, cap: val OutCap) -> Output;

    // ---- digests ----
    DigestInit = digest_init(session: val SessionHandle, mech: refd Mechanism) -> ();
    Digest = digest(session: val SessionHandle, data: bytes, cap: val OutCap) -> Output;
    DigestUpdate = digest_update(session: val SessionHandle, data: bytes) -> ();
    DigestKey = digest_key(session: val SessionHandle, key: val ObjectHandle) -> ();
    DigestFinal = digest_final(session: val SessionHandle, cap: val OutCap) -> Output;

    // ---- signatures and MACs ----
    SignInit = sign_init(session: val SessionHandle, mech: refd Mechanism, key: val ObjectHandle)
        -> ();
    Sign = sign(session: val SessionHandle, data: bytes, cap: val OutCap) -> Output;
    SignUpdate = sign_update(session: val SessionHandle, data: bytes) -> ();
    SignFinal = sign_final(session: val SessionHandle, cap: val OutCap) -> Output;
    SignRecoverInit = sign_recover_init(
        session: val SessionHandle,
        mech: refd Mechanism,
        key: val ObjectHandle,
    ) -> ();
    SignRecover = sign_recover(session: val SessionHandle, data: bytes, cap: val OutCap) -> Output;
    VerifyInit = verify_init(session: val SessionHandle, mech: refd Mechanism, key: val ObjectHandle)
        -> ();
    Verify = verify(session: val SessionHandle, data: bytes, signature: bytes) -> ();
    VerifyUpdate = verify_update(session: val SessionHandle, data: bytes) -> ();
    VerifyFinal = verify_final(session: val SessionHandle, signature: bytes) -> ();
    VerifyRecoverInit = verify_recover_init(
        session: val SessionHandle,
        mech: refd Mechanism,
        key: val ObjectHandle,
    ) -> ();
    VerifyRecover = verify_recover(session: val SessionHandle, signature: bytes, cap: val OutCap)
        -> Output;

    // ---- key management ----
    GenerateKey = generate_key(
        session: val SessionHandle,
        mech: refd Mechanism,
        template: val Vec<Attribute>,
    ) -> ObjectHandle;
    GenerateKeyPair = generate_key_pair(
        session: val SessionHandle,
        mech: refd Mechanism,
        public_template: val Vec<Attribute>,
        private_template: val Vec<Attribute>,
    ) -> (ObjectHandle, ObjectHandle);
    WrapKey = wrap_key(
        session: val SessionHandle,
        mech: refd Mechanism,
        wrapping_key: val ObjectHandle,
        key: val ObjectHandle,
        cap: val OutCap,
    ) -> Output;
    UnwrapKey = unwrap_key(
        session: val SessionHandle,
        mech: refd Mechanism,
        unwrapping_key: val ObjectHandle,
        wrapped: bytes,
        template: val Vec<Attribute>,
    ) -> ObjectHandle;
    DeriveKey = derive_key(
        session: val SessionHandle,
        mech: refd Mechanism,
        base_key: val ObjectHandle,
        template: val Vec<Attribute>,
    ) -> ObjectHandle;

    // ---- random numbers ----
    SeedRandom = seed_random(session: val SessionHandle, seed: bytes) -> ();
    GenerateRandom = generate_random(session: val SessionHandle, len: val usize)
        -> Zeroizing<Vec<u8>>;

    // ---- message-based encryption ----
    MessageEncryptInit = message_encrypt_init(
        session: val SessionHandle,
        mech: refd Mechanism,
        key: val ObjectHandle,
    ) -> ();
    EncryptMessage = encrypt_message[params](
        session: val SessionHandle,
        params: inout MechParams,
        aad: bytes,
        plaintext: bytes,
        cap: val OutCap,
    ) -> Output;
    EncryptMessageBegin = encrypt_message_begin[params](
        session: val SessionHandle,
        params: inout MechParams,
        aad: bytes,
    ) -> ();
    EncryptMessageNext = encrypt_message_next[params](
        session: val SessionHandle,
        params: inout MechParams,
        part: bytes,
        last: val bool,
        cap: val OutCap,
    ) -> Output;
    MessageEncryptFinal = message_encrypt_final(session: val SessionHandle) -> ();
    MessageDecryptInit = message_decrypt_init(
        session: val SessionHandle,
        mech: refd Mechanism,
        key: val ObjectHandle,
    ) -> ();
    DecryptMessage = decrypt_message[params](
        session: val SessionHandle,
        params: inout MechParams,
        aad: bytes,
        ciphertext: bytes,
        cap: val OutCap,
    ) -> Output;
    DecryptMessageBegin = decrypt_message_begin[params](
        session: val SessionHandle,
        params: inout MechParams,
        aad: bytes,
    ) -> ();
    DecryptMessageNext = decrypt_message_next[params](
        session: val SessionHandle,
        params: inout MechParams,
        part: bytes,
        last: val bool,
        cap: val OutCap,
    ) -> Output;
    MessageDecryptFinal = message_decrypt_final(session: val SessionHandle) -> ();

    // ---- message-based signatures ----
    MessageSignInit = message_sign_init(
        session: val SessionHandle,
        mech: refd Mechanism,
        key: val ObjectHandle,
    ) -> ();
    SignMessage = sign_message[params](
        session: val SessionHandle,
        params: inout MechParams,
        data: bytes,
        cap: val OutCap,
    ) -> Output;
    SignMessageBegin = sign_message_begin[params](
        session: val SessionHandle,
        params: inout MechParams,
    ) -> ();
    SignMessageNext = sign_message_next[params](
        session: val SessionHandle,
        params: inout MechParams,
        data: bytes,
        last: val bool,
        cap: val OutCap,
    ) -> Output;
    MessageSignFinal = message_sign_final(session: val SessionHandle) -> ();
    MessageVerifyInit = message_verify_init(
        session: val SessionHandle,
        mech: refd Mechanism,
        key: val ObjectHandle,
    ) -> ();
    VerifyMessage = verify_message[params](
        session: val SessionHandle,
        params: inout MechParams,
        data: bytes,
        signature: bytes,
    ) -> ();
    VerifyMessageBegin = verify_message_begin[params](
        session: val SessionHandle,
        params: inout MechParams,
    ) -> ();
    VerifyMessageNext = verify_message_next[params](
        session: val SessionHandle,
        params: inout MechParams,
        data: bytes,
        signature: optbytes,
    ) -> ();
    MessageVerifyFinal = message_verify_final(session: val SessionHandle) -> ();
}

/// An error as it crosses the wire.
pub(crate) fn failed(e: &Error) -> Answer {
    // CK_RV is 32 bits wide on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    Answer::Failed {
        rv: u64::from(e.rv()),
        detail: e.detail().to_owned(),
    }
}

/// A `Failed` answer back into the engine's error, with the same code.
pub(crate) fn into_error(rv: u64, detail: String) -> Error {
    // A CK_RV wider than this target's CK_ULONG is no code we know.
    #[allow(clippy::unnecessary_fallible_conversions)]
    let rv = CK_RV::try_from(rv).unwrap_or(CKR_GENERAL_ERROR);
    Code::from_ck_rv(rv).err(detail)
}

fn unexpected(function: &str, answer: &Answer) -> Error {
    Code::DeviceError.err(format!(
        "the daemon answered {function} with {}",
        answer.name()
    ))
}

/// Names only: arguments may be PINs, keys or plaintext.
impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names and error codes only: values may be key material.
impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Failed { rv, detail } => write!(f, "Failed({rv:#x}: {detail})"),
            other => f.write_str(other.name()),
        }
    }
}
