//! Errors of the engine: one `Code` per CKR_ value the engine returns, mapped one-to-one.
//!
//! The code is chosen where the fault is detected, by the code that knows the spec's meaning;
//! nothing is translated later. `detail` is for logs and tool messages and never holds secrets.

use std::borrow::Cow;
use std::fmt;

use cryptoki_sys::*;

macro_rules! codes {
    ($($(#[$m:meta])* $name:ident = $ckr:ident,)*) => {
        /// A PKCS#11 return code other than CKR_OK.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code { $($(#[$m])* $name,)* }

        impl Code {
            /// The CK_RV this code stands for.
            pub const fn ck_rv(self) -> CK_RV {
                match self { $(Code::$name => $ckr,)* }
            }

            /// The code for a CK_RV, for values received over the wire; unknown values are
            /// `GeneralError`.
            pub fn from_ck_rv(rv: CK_RV) -> Code {
                match rv { $($ckr => Code::$name,)* _ => Code::GeneralError }
            }

            /// The spec's name, e.g. `CKR_PIN_INCORRECT`.
            pub const fn name(self) -> &'static str {
                match self { $(Code::$name => stringify!($ckr),)* }
            }
        }
    };
}

codes! {
    Cancel = CKR_CANCEL,
    HostMemory = CKR_HOST_MEMORY,
    SlotIdInvalid = CKR_SLOT_ID_INVALID,
    GeneralError = CKR_GENERAL_ERROR,
    FunctionFailed = CKR_FUNCTION_FAILED,
    ArgumentsBad = CKR_ARGUMENTS_BAD,
    NoEvent = CKR_NO_EVENT,
    NeedToCreateThreads = CKR_NEED_TO_CREATE_THREADS,
    CantLock = CKR_CANT_LOCK,
    AttributeReadOnly = CKR_ATTRIBUTE_READ_ONLY,
    AttributeSensitive = CKR_ATTRIBUTE_SENSITIVE,
    AttributeTypeInvalid = CKR_ATTRIBUTE_TYPE_INVALID,
    AttributeValueInvalid = CKR_ATTRIBUTE_VALUE_INVALID,
    ActionProhibited = CKR_ACTION_PROHIBITED,
    DataInvalid = CKR_DATA_INVALID,
    DataLenRange = CKR_DATA_LEN_RANGE,
    DeviceError = CKR_DEVICE_ERROR,
    DeviceMemory = CKR_DEVICE_MEMORY,
    DeviceRemoved = CKR_DEVICE_REMOVED,
    EncryptedDataInvalid = CKR_ENCRYPTED_DATA_INVALID,
    EncryptedDataLenRange = CKR_ENCRYPTED_DATA_LEN_RANGE,
    AeadDecryptFailed = CKR_AEAD_DECRYPT_FAILED,
    FunctionCanceled = CKR_FUNCTION_CANCELED,
    FunctionNotParallel = CKR_FUNCTION_NOT_PARALLEL,
    FunctionNotSupported = CKR_FUNCTION_NOT_SUPPORTED,
    KeyHandleInvalid = CKR_KEY_HANDLE_INVALID,
    KeySizeRange = CKR_KEY_SIZE_RANGE,
    KeyTypeInconsistent = CKR_KEY_TYPE_INCONSISTENT,
    KeyNotNeeded = CKR_KEY_NOT_NEEDED,
    KeyChanged = CKR_KEY_CHANGED,
    KeyNeeded = CKR_KEY_NEEDED,
    KeyIndigestible = CKR_KEY_INDIGESTIBLE,
    KeyFunctionNotPermitted = CKR_KEY_FUNCTION_NOT_PERMITTED,
    KeyNotWrappable = CKR_KEY_NOT_WRAPPABLE,
    KeyUnextractable = CKR_KEY_UNEXTRACTABLE,
    MechanismInvalid = CKR_MECHANISM_INVALID,
    MechanismParamInvalid = CKR_MECHANISM_PARAM_INVALID,
    ObjectHandleInvalid = CKR_OBJECT_HANDLE_INVALID,
    OperationActive = CKR_OPERATION_ACTIVE,
    OperationNotInitialized = CKR_OPERATION_NOT_INITIALIZED,
    PinIncorrect = CKR_PIN_INCORRECT,
    PinInvalid = CKR_PIN_INVALID,
    PinLenRange = CKR_PIN_LEN_RANGE,
    PinExpired = CKR_PIN_EXPIRED,
    PinLocked = CKR_PIN_LOCKED,
    PinTooWeak = CKR_PIN_TOO_WEAK,
    SessionClosed = CKR_SESSION_CLOSED,
    SessionCount = CKR_SESSION_COUNT,
    SessionHandleInvalid = CKR_SESSION_HANDLE_INVALID,
    SessionParallelNotSupported = CKR_SESSION_PARALLEL_NOT_SUPPORTED,
    SessionReadOnly = CKR_SESSION_READ_ONLY,
    SessionExists = CKR_SESSION_EXISTS,
    SessionReadOnlyExists = CKR_SESSION_READ_ONLY_EXISTS,
    SessionReadWriteSoExists = CKR_SESSION_READ_WRITE_SO_EXISTS,
    SignatureInvalid = CKR_SIGNATURE_INVALID,
    SignatureLenRange = CKR_SIGNATURE_LEN_RANGE,
    TemplateIncomplete = CKR_TEMPLATE_INCOMPLETE,
    TemplateInconsistent = CKR_TEMPLATE_INCONSISTENT,
    TokenNotPresent = CKR_TOKEN_NOT_PRESENT,
    TokenNotRecognized = CKR_TOKEN_NOT_RECOGNIZED,
    TokenWriteProtected = CKR_TOKEN_WRITE_PROTECTED,
    UnwrappingKeyHandleInvalid = CKR_UNWRAPPING_KEY_HANDLE_INVALID,
    UnwrappingKeySizeRange = CKR_UNWRAPPING_KEY_SIZE_RANGE,
    UnwrappingKeyTypeInconsistent = CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
    UserAlreadyLoggedIn = CKR_USER_ALREADY_LOGGED_IN,
    UserNotLoggedIn = CKR_USER_NOT_LOGGED_IN,
    UserPinNotInitialized = CKR_USER_PIN_NOT_INITIALIZED,
    UserTypeInvalid = CKR_USER_TYPE_INVALID,
    UserAnotherAlreadyLoggedIn = CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
    UserTooManyTypes = CKR_USER_TOO_MANY_TYPES,
    WrappedKeyInvalid = CKR_WRAPPED_KEY_INVALID,
    WrappedKeyLenRange = CKR_WRAPPED_KEY_LEN_RANGE,
    WrappingKeyHandleInvalid = CKR_WRAPPING_KEY_HANDLE_INVALID,
    WrappingKeySizeRange = CKR_WRAPPING_KEY_SIZE_RANGE,
    WrappingKeyTypeInconsistent = CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
    RandomSeedNotSupported = CKR_RANDOM_SEED_NOT_SUPPORTED,
    RandomNoRng = CKR_RANDOM_NO_RNG,
    DomainParamsInvalid = CKR_DOMAIN_PARAMS_INVALID,
    CurveNotSupported = CKR_CURVE_NOT_SUPPORTED,
    BufferTooSmall = CKR_BUFFER_TOO_SMALL,
    SavedStateInvalid = CKR_SAVED_STATE_INVALID,
    InformationSensitive = CKR_INFORMATION_SENSITIVE,
    StateUnsaveable = CKR_STATE_UNSAVEABLE,
    CryptokiNotInitialized = CKR_CRYPTOKI_NOT_INITIALIZED,
    CryptokiAlreadyInitialized = CKR_CRYPTOKI_ALREADY_INITIALIZED,
    MutexBad = CKR_MUTEX_BAD,
    MutexNotLocked = CKR_MUTEX_NOT_LOCKED,
    NewPinMode = CKR_NEW_PIN_MODE,
    NextOtp = CKR_NEXT_OTP,
    ExceededMaxIterations = CKR_EXCEEDED_MAX_ITERATIONS,
    FipsSelfTestFailed = CKR_FIPS_SELF_TEST_FAILED,
    PublicKeyInvalid = CKR_PUBLIC_KEY_INVALID,
    FunctionRejected = CKR_FUNCTION_REJECTED,
    TokenResourceExceeded = CKR_TOKEN_RESOURCE_EXCEEDED,
    OperationCancelFailed = CKR_OPERATION_CANCEL_FAILED,
}

/// An engine error: the CKR code plus a human-readable reason for logs and tools.
pub struct Error {
    code: Code,
    detail: Cow<'static, str>,
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Code {
    /// An error with this code and a reason (never key bytes, PINs or templates).
    pub fn err(self, detail: impl Into<Cow<'static, str>>) -> Error {
        Error {
            code: self,
            detail: detail.into(),
        }
    }
}

impl Error {
    /// The PKCS#11 code of this error.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The CK_RV to return to the caller.
    pub fn rv(&self) -> CK_RV {
        self.code.ck_rv()
    }

    /// The reason, for logs.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Prefix the reason with what the caller was doing; the code is kept.
    pub fn context(self, what: impl fmt::Display) -> Error {
        Error {
            code: self.code,
            detail: format!("{what}: {}", self.detail).into(),
        }
    }
}

impl From<Code> for Error {
    fn from(code: Code) -> Error {
        Error {
            code,
            detail: Cow::Borrowed(""),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.code.name())
        } else {
            write!(f, "{}: {}", self.code.name(), self.detail)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

/// SQLite failures are device errors: the store could not be read or written.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Code::DeviceError.err(format!("token store: {e}"))
    }
}

/// OpenSSL failures the spec does not name are function failures.
impl From<keyward_ossl::Error> for Error {
    fn from(e: keyward_ossl::Error) -> Error {
        Code::FunctionFailed.err(format!("crypto: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_ck_rv() {
        for code in [
            Code::PinIncorrect,
            Code::BufferTooSmall,
            Code::AttributeSensitive,
            Code::ActionProhibited,
        ] {
            assert_eq!(Code::from_ck_rv(code.ck_rv()), code);
        }
        assert_eq!(Code::PinLocked.ck_rv(), 0xA4);
        assert_eq!(Code::from_ck_rv(0xdead_beef), Code::GeneralError);
    }

    #[test]
    fn display_names_the_code_and_reason() {
        let e = Code::PinLenRange
            .err("PIN shorter than 4 bytes")
            .context("C_InitPIN");
        assert_eq!(
            e.to_string(),
            "CKR_PIN_LEN_RANGE: C_InitPIN: PIN shorter than 4 bytes"
        );
    }
}
