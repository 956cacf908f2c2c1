//! The tool's errors: what failed, the PKCS#11 code in words, what to do about it, and the
//! documented exit code.

use std::fmt;
use std::path::Path;

use cryptoki::error::{Error as CkError, RvError};

/// Exit codes, documented in `keyward --help` and the README.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  usage error (bad arguments, malformed URI or input)
  2  not found (no token, slot, object or module matches)
  3  PIN or login error (wrong, locked or missing PIN)
  4  PKCS#11 error reported by the module
  5  I/O error (reading or writing files, the terminal)
  6  the signature does not verify (keyward verify)";

/// What kind of failure ended the command; each maps to one exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Usage = 1,
    NotFound = 2,
    Pin = 3,
    Pkcs11 = 4,
    Io = 5,
    Invalid = 6,
}

/// A failure with a message for people and an exit code for scripts.
#[derive(Debug)]
pub struct Error {
    pub exit: Exit,
    pub msg: String,
    pub hint: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(exit: Exit, msg: impl Into<String>) -> Self {
        Error {
            exit,
            msg: msg.into(),
            hint: None,
        }
    }
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::new(Exit::Usage, msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(Exit::NotFound, msg)
    }
    pub fn pin(msg: impl Into<String>) -> Self {
        Self::new(Exit::Pin, msg)
    }
    pub fn pkcs11(msg: impl Into<String>) -> Self {
        Self::new(Exit::Pkcs11, msg)
    }
    /// An I/O failure on `path` while `doing` something.
    pub fn io(doing: &str, path: &Path, e: std::io::Error) -> Self {
        Self::new(Exit::Io, format!("{doing} {}: {e}", path.display()))
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A PKCS#11 failure while `doing` something, with the CKR code in words and advice.
    pub fn ck(doing: &str, e: CkError) -> Self {
        match e {
            CkError::Pkcs11(rv, _) => from_rv(doing, rv),
            CkError::LibraryLoading(e) => {
                Error::not_found(format!("{doing}: cannot load the PKCS#11 module: {e}"))
                    .hint("name the module with --module PATH or KEYWARD_MODULE")
            }
            other => Error::pkcs11(format!("{doing}: {other}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.msg)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// `PinIncorrect` -> `CKR_PIN_INCORRECT`: cryptoki's variant names are the spec names in
/// camel case.
pub fn ckr_name(rv: RvError) -> String {
    let debug = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The exit code and what to do for a CKR code.
fn advice(rv: RvError) -> (Exit, &'static str, Option<&'static str>) {
    use RvError::*;
    match rv {
        PinIncorrect => (Exit::Pin, "wrong PIN", Some("check the PIN source")),
        PinLocked => (
            Exit::Pin,
            "the PIN is locked after too many wrong attempts",
            Some("the security officer can reset it: keyward pin unlock URI"),
        ),
        PinLenRange => (
            Exit::Pin,
            "the PIN is too short or too long for this token",
            Some("see the PIN length limits in `keyward token info`"),
        ),
        PinInvalid | PinTooWeak => (
            Exit::Pin,
            "the token does not accept this PIN",
            Some("choose another PIN"),
        ),
        PinExpired => (
            Exit::Pin,
            "the PIN has expired",
            Some("change it: keyward pin change URI"),
        ),
        UserPinNotInitialized => (
            Exit::Pin,
            "the token has no user PIN yet",
            Some("set one as the security officer: keyward pin set URI"),
        ),
        UserNotLoggedIn => (
            Exit::Pin,
            "this needs a login",
            Some("give a PIN (--pin-source FILE, KEYWARD_PIN, or the prompt)"),
        ),
        UserAlreadyLoggedIn | UserAnotherAlreadyLoggedIn => (
            Exit::Pin,
            "another login is active on this token",
            Some("close other applications using the token and retry"),
        ),
        TokenNotPresent | SlotIdInvalid => (
            Exit::NotFound,
            "no token in that slot",
            Some("list slots with: keyward slots"),
        ),
        TokenNotRecognized => (Exit::NotFound, "the token is not recognised", None),
        ObjectHandleInvalid | KeyHandleInvalid => (
            Exit::NotFound,
            "the object no longer exists",
            Some("list objects with: keyward list"),
        ),
        TokenWriteProtected => (Exit::Pkcs11, "the token is write-protected", None),
        SessionReadOnly => (Exit::Pkcs11, "the session is read-only", None),
        MechanismInvalid => (
            Exit::Pkcs11,
            "the token does not support this mechanism",
            Some("see what it supports: keyward mechanisms"),
        ),
        CurveNotSupported | DomainParamsInvalid => (
            Exit::Pkcs11,
            "the token does not support this curve",
            Some("see what it supports: keyward mechanisms"),
        ),
        KeySizeRange => (
            Exit::Pkcs11,
            "the key size is outside what the token supports",
            Some("see the key sizes in: keyward mechanisms"),
        ),
        TemplateInconsistent
        | TemplateIncomplete
        | AttributeValueInvalid
        | AttributeTypeInvalid => (
            Exit::Pkcs11,
            "the token refused the object's attributes",
            Some("this module may not support this key type or usage"),
        ),
        AttributeSensitive | KeyUnextractable => (
            Exit::Pkcs11,
            "the value is sensitive and never leaves the token",
            None,
        ),
        KeyFunctionNotPermitted => (
            Exit::Pkcs11,
            "the key may not be used for this",
            Some("check the key's usage flags with: keyward list --json"),
        ),
        ActionProhibited => (Exit::Pkcs11, "the token prohibits this action", None),
        DeviceMemory => (Exit::Pkcs11, "the token is out of memory", None),
        DeviceError | GeneralError | FunctionFailed => (
            Exit::Pkcs11,
            "the token failed",
            Some("the module's log may say more"),
        ),
        CryptokiNotInitialized | CryptokiAlreadyInitialized => {
            (Exit::Pkcs11, "the module is in an unexpected state", None)
        }
        _ => (Exit::Pkcs11, "the module refused the call", None),
    }
}

fn from_rv(doing: &str, rv: RvError) -> Error {
    let (exit, words, hint) = advice(rv);
    let e = Error::new(exit, format!("{doing}: {words} ({})", ckr_name(rv)));
    match hint {
        Some(h) => e.hint(h),
        None => e,
    }
}

/// The CKR code of a cryptoki error, if it is one.
pub fn rv_of(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names_follow_the_spec() {
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            ckr_name(RvError::SessionReadWriteSoExists),
            "CKR_SESSION_READ_WRITE_SO_EXISTS"
        );
        assert_eq!(ckr_name(RvError::Cancel), "CKR_CANCEL");
    }

    #[test]
    fn pin_errors_exit_3() {
        let e = from_rv("logging in", RvError::PinLocked);
        assert_eq!(e.exit, Exit::Pin);
        assert!(e.msg.contains("CKR_PIN_LOCKED"));
        assert!(e.hint.is_some());
    }
}
