//! The few PKCS#11 calls cryptoki cannot make: it refuses mechanism and key type numbers that
//! are missing from its tables (ChaCha20 among them). The module is opened a second time by
//! the same path; the dynamic loader hands back the library already loaded, so the function
//! list, the initialisation and the sessions are the very ones cryptoki uses. This is the only
//! `unsafe` code of the tool.

#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cryptoki::context::Function;
use cryptoki::error::Rv;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki_sys::{
    CK_ATTRIBUTE, CK_C_GetFunctionList, CK_FUNCTION_LIST, CK_FUNCTION_LIST_PTR_PTR, CK_KEY_TYPE,
    CK_MECHANISM, CK_MECHANISM_INFO, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV,
    CK_SALSA20_CHACHA20_POLY1305_PARAMS, CK_ULONG, CKA_KEY_TYPE, CKR_OK,
};

use crate::error::{Error, Result};

/// The module loaded by [`crate::module::load`], for [`functions`].
static PATH: OnceLock<PathBuf> = OnceLock::new();

/// The library handle (kept open for the life of the process) and its function list.
struct Loaded {
    _lib: libloading::Library,
    list: &'static CK_FUNCTION_LIST,
}

static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();

/// Remember which module the tool loaded.
pub fn set_module(path: &Path) {
    // One module per run: a second call (never made today) keeps the first.
    let _ = PATH.set(path.to_owned());
}

fn functions() -> Result<&'static CK_FUNCTION_LIST> {
    let loaded = LOADED.get_or_init(|| {
        let path = PATH.get().ok_or("no module has been loaded")?;
        // SAFETY: the same library cryptoki has already loaded and initialised; loading it
        // again runs no initialiser and returns the same handle.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
        // SAFETY: C_GetFunctionList has this signature in every PKCS#11 module.
        let get: libloading::Symbol<'_, CK_C_GetFunctionList> =
            unsafe { lib.get(b"C_GetFunctionList\0") }.map_err(|e| e.to_string())?;
        let get = (*get).ok_or("C_GetFunctionList is NULL")?;
        let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
        // SAFETY: `list` is a valid out-pointer.
        let rv = unsafe { get(&mut list as CK_FUNCTION_LIST_PTR_PTR) };
        if rv != CKR_OK || list.is_null() {
            return Err(format!("C_GetFunctionList returned {rv:#x}"));
        }
        // SAFETY: the module owns the list for as long as it stays loaded, and `_lib` keeps it
        // loaded for the rest of the process.
        let list: &'static CK_FUNCTION_LIST = unsafe { &*list };
        Ok(Loaded { _lib: lib, list })
    });
    match loaded {
        Ok(l) => Ok(l.list),
        Err(e) => Err(Error::pkcs11(format!(
            "opening the module's function list: {e}"
        ))),
    }
}

/// A CKR code as cryptoki's error, so messages and exit codes are the same as elsewhere.
fn check(rv: CK_RV, f: Function, doing: &str) -> Result<()> {
    Rv::from(rv).into_result(f).map_err(|e| Error::ck(doing, e))
}

fn missing(name: &str) -> Error {
    Error::pkcs11(format!("the module does not provide {name}"))
}

/// Every mechanism number the token lists, known to cryptoki or not.
pub fn mechanism_list(slot: Slot) -> Result<Vec<CK_MECHANISM_TYPE>> {
    let f = functions()?;
    let get = f
        .C_GetMechanismList
        .ok_or_else(|| missing("C_GetMechanismList"))?;
    let mut n: CK_ULONG = 0;
    // SAFETY: a NULL list asks for the count only.
    let rv = unsafe { get(slot.id(), std::ptr::null_mut(), &mut n) };
    check(rv, Function::GetMechanismList, "listing mechanisms")?;
    let mut out: Vec<CK_MECHANISM_TYPE> = vec![0; n as usize];
    // SAFETY: `out` has room for `n` entries.
    let rv = unsafe { get(slot.id(), out.as_mut_ptr(), &mut n) };
    check(rv, Function::GetMechanismList, "listing mechanisms")?;
    out.truncate(n as usize);
    Ok(out)
}

/// C_GetMechanismInfo for any mechanism number.
pub fn mechanism_info(slot: Slot, m: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    let f = functions()?;
    let get = f
        .C_GetMechanismInfo
        .ok_or_else(|| missing("C_GetMechanismInfo"))?;
    let mut info = CK_MECHANISM_INFO::default();
    // SAFETY: `info` is a valid out-structure.
    let rv = unsafe { get(slot.id(), m, &mut info) };
    check(
        rv,
        Function::GetMechanismInfo,
        &format!("reading information on mechanism {m:#x}"),
    )?;
    Ok(info)
}

/// CKA_KEY_TYPE as its number, for key types cryptoki cannot name.
pub fn key_type(s: &Session, h: ObjectHandle) -> Option<CK_KEY_TYPE> {
    let f = functions().ok()?;
    let get = f.C_GetAttributeValue?;
    let mut kt: CK_KEY_TYPE = 0;
    let mut a = CK_ATTRIBUTE {
        type_: CKA_KEY_TYPE,
        pValue: (&mut kt as *mut CK_KEY_TYPE).cast(),
        ulValueLen: size_of::<CK_KEY_TYPE>() as CK_ULONG,
    };
    // SAFETY: one attribute whose buffer is `kt`, of the size it gives.
    let rv = unsafe { get(s.handle(), h.handle(), &mut a, 1) };
    (rv == CKR_OK).then_some(kt)
}

/// C_GenerateKey with a mechanism that takes no parameter.
pub fn generate_key(
    s: &Session,
    mech: CK_MECHANISM_TYPE,
    template: &[Attribute],
    doing: &str,
) -> Result<ObjectHandle> {
    let f = functions()?;
    let gen_key = f.C_GenerateKey.ok_or_else(|| missing("C_GenerateKey"))?;
    let mut m = CK_MECHANISM {
        mechanism: mech,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    // The CK_ATTRIBUTEs point into `template`, which outlives the call.
    let mut t: Vec<CK_ATTRIBUTE> = template.iter().map(CK_ATTRIBUTE::from).collect();
    let mut h: CK_OBJECT_HANDLE = 0;
    // SAFETY: the mechanism, the template and the handle are valid for the call.
    let rv = unsafe {
        gen_key(
            s.handle(),
            &mut m,
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            &mut h,
        )
    };
    check(rv, Function::GenerateKey, doing)?;
    // SAFETY: a handle the module just returned for this session.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// CKM_CHACHA20_POLY1305 in one part: `encrypt` gives ciphertext || 16-byte tag, decrypt takes
/// it back.
pub fn chacha20_poly1305(
    s: &Session,
    key: ObjectHandle,
    nonce: &[u8; 12],
    aad: &[u8],
    data: &[u8],
    encrypt: bool,
) -> Result<Vec<u8>> {
    let f = functions()?;
    let mut nonce = *nonce;
    let mut aad = aad.to_vec();
    let mut p = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: nonce.len() as CK_ULONG,
        pAAD: if aad.is_empty() {
            std::ptr::null_mut()
        } else {
            aad.as_mut_ptr()
        },
        ulAADLen: aad.len() as CK_ULONG,
    };
    let mut m = CK_MECHANISM {
        mechanism: cryptoki_sys::CKM_CHACHA20_POLY1305,
        pParameter: (&mut p as *mut CK_SALSA20_CHACHA20_POLY1305_PARAMS).cast(),
        ulParameterLen: size_of::<CK_SALSA20_CHACHA20_POLY1305_PARAMS>() as CK_ULONG,
    };
    let (init, op, fi, fo, doing) = if encrypt {
        (
            f.C_EncryptInit.ok_or_else(|| missing("C_EncryptInit"))?,
            f.C_Encrypt.ok_or_else(|| missing("C_Encrypt"))?,
            Function::EncryptInit,
            Function::Encrypt,
            "encrypting with ChaCha20-Poly1305",
        )
    } else {
        (
            f.C_DecryptInit.ok_or_else(|| missing("C_DecryptInit"))?,
            f.C_Decrypt.ok_or_else(|| missing("C_Decrypt"))?,
            Function::DecryptInit,
            Function::Decrypt,
            "decrypting with ChaCha20-Poly1305",
        )
    };
    // SAFETY: the mechanism and its parameters (nonce, AAD) live until the operation ends
    // below; the module copies what it keeps.
    let rv = unsafe { init(s.handle(), &mut m, key.handle()) };
    check(rv, fi, doing)?;
    // A copy because the C prototype takes a mutable pointer; it may be plaintext.
    let mut input = zeroize::Zeroizing::new(data.to_vec());
    // The output is never longer than the input plus the tag; asking the length first would
    // cost a second call.
    let mut out = vec![0u8; data.len() + 16];
    let mut n = out.len() as CK_ULONG;
    // SAFETY: the input and output buffers have the lengths given.
    let rv = unsafe {
        op(
            s.handle(),
            input.as_mut_ptr(),
            input.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut n,
        )
    };
    check(rv, fo, doing)?;
    out.truncate(n as usize);
    Ok(out)
}
