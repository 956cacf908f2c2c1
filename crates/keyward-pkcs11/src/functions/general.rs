//! General-purpose functions (PKCS#11 3.0 §5.4): library lifecycle, information, function
//! lists and interfaces, and the legacy parallel-function stubs.

use cryptoki_sys::*;
use keyward_core::{Code, Result};

use crate::backend;
use crate::ffi::out::{OutBuf, padded};
use crate::ffi::{entry, guarded, ptr};
use crate::lists::{FUNCTION_LIST, HANDED_OUT, INTERFACE_NAME, INTERFACE_VERSIONS, INTERFACES};

/// Check CK_C_INITIALIZE_ARGS: pReserved must be NULL; the four mutex callbacks all NULL or
/// all set; callbacks without CKF_OS_LOCKING_OK would oblige us to lock through them, which
/// our internal locks cannot do (CKR_CANT_LOCK, as the spec permits).
/// CKF_LIBRARY_CANT_CREATE_OS_THREADS needs nothing: the module creates no threads.
fn check_init_args(a: &CK_C_INITIALIZE_ARGS) -> Result<()> {
    if !a.pReserved.is_null() {
        return Err(Code::ArgumentsBad.err("CK_C_INITIALIZE_ARGS.pReserved is not NULL"));
    }
    let set = [
        a.CreateMutex.is_some(),
        a.DestroyMutex.is_some(),
        a.LockMutex.is_some(),
        a.UnlockMutex.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    match set {
        0 => Ok(()),
        4 if a.flags & CKF_OS_LOCKING_OK != 0 => Ok(()),
        4 => Err(Code::CantLock
            .err("application mutex callbacks without CKF_OS_LOCKING_OK are not supported")),
        _ => Err(Code::ArgumentsBad.err("mutex callbacks must be all NULL or all set")),
    }
}

/// C_Initialize.
///
/// # Safety
/// `pInitArgs` is NULL or points to a readable CK_C_INITIALIZE_ARGS.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Initialize(pInitArgs: CK_VOID_PTR) -> CK_RV {
    guarded("C_Initialize", || {
        // SAFETY: NULL or a readable CK_C_INITIALIZE_ARGS by the caller's contract.
        let args = unsafe { ptr::read_opt(pInitArgs.cast_const().cast::<CK_C_INITIALIZE_ARGS>()) };
        if let Some(a) = args {
            check_init_args(&a)?;
        }
        backend::initialize(backend::real)
    })
}

/// C_Finalize.
///
/// # Safety
/// None beyond the PKCS#11 contract; `pReserved` must be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Finalize(pReserved: CK_VOID_PTR) -> CK_RV {
    guarded("C_Finalize", || {
        if !pReserved.is_null() {
            return Err(Code::ArgumentsBad.err("pReserved is not NULL"));
        }
        backend::finalize()
    })
}

/// The library version from the crate version.
fn library_version() -> CK_VERSION {
    CK_VERSION {
        major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
    }
}

/// C_GetInfo.
///
/// # Safety
/// `pInfo` is NULL or writable for a CK_INFO.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInfo(pInfo: CK_INFO_PTR) -> CK_RV {
    entry("C_GetInfo", |_api| {
        let info = CK_INFO {
            cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
            manufacturerID: padded("Keyward"),
            flags: 0,
            libraryDescription: padded("Keyward PKCS#11 module"),
            libraryVersion: library_version(),
        };
        // SAFETY: NULL (refused inside) or writable for a CK_INFO.
        unsafe { ptr::write(pInfo, info) }
    })
}

/// C_GetFunctionList: the 2.40 list.
///
/// # Safety
/// `ppFunctionList` is NULL or writable for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    guarded("C_GetFunctionList", || {
        let list = (&raw const FUNCTION_LIST).cast_mut();
        // SAFETY: NULL (refused inside) or writable for a pointer.
        unsafe { ptr::write(ppFunctionList, list) }
    })
}

/// C_GetInterfaceList.
///
/// # Safety
/// `pulCount` is NULL or readable and writable for a CK_ULONG; `pInterfacesList` is NULL or
/// writable for `*pulCount` CK_INTERFACEs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: CK_INTERFACE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    guarded("C_GetInterfaceList", || {
        // SAFETY: the caller's contract for (pInterfacesList, pulCount).
        let out = unsafe { OutBuf::new(pInterfacesList, pulCount) }?;
        let all: Vec<CK_INTERFACE> = INTERFACES.iter().map(|i| i.0).collect();
        out.put(&all)
    })
}

/// Whether interface `i` matches the optional name, version and required flags.
fn interface_matches(
    i: usize,
    name: Option<&[u8]>,
    version: Option<CK_VERSION>,
    flags: CK_FLAGS,
) -> bool {
    let (Some(iface), Some(v)) = (INTERFACES.get(i), INTERFACE_VERSIONS.get(i)) else {
        return false;
    };
    name.is_none_or(|n| n == INTERFACE_NAME.to_bytes())
        && version.is_none_or(|want| want.major == v.major && want.minor == v.minor)
        && iface.0.flags & flags == flags
}

/// C_GetInterface: by name ("PKCS 11"), version (3.0 or 2.40) and flags; NULL name and
/// version give the 3.0 interface. No match is CKR_ARGUMENTS_BAD.
///
/// # Safety
/// `pInterfaceName` is NULL or a NUL-terminated string; `pVersion` is NULL or a readable
/// CK_VERSION; `ppInterface` is NULL or writable for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: CK_UTF8CHAR_PTR,
    pVersion: CK_VERSION_PTR,
    ppInterface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    guarded("C_GetInterface", || {
        ptr::require(ppInterface)?;
        // SAFETY: NULL or a NUL-terminated string by the caller's contract.
        let name = unsafe { ptr::c_str(pInterfaceName.cast_const(), 64) };
        // SAFETY: NULL or a readable CK_VERSION by the caller's contract.
        let version = unsafe { ptr::read_opt(pVersion.cast_const()) };
        let found = (0..INTERFACES.len())
            .find(|i| interface_matches(*i, name.as_deref(), version, flags))
            .ok_or_else(|| {
                Code::ArgumentsBad.err("no interface matches the name, version and flags")
            })?;
        let iface = HANDED_OUT
            .get(found)
            .map(|i| i.0.get())
            .ok_or_else(|| Code::GeneralError.err("interface index out of range"))?;
        // SAFETY: checked non-NULL above; writable for a pointer by the caller's contract.
        unsafe { ptr::write(ppInterface, iface) }
    })
}

/// C_GetFunctionStatus: a legacy function; always CKR_FUNCTION_NOT_PARALLEL.
///
/// # Safety
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionStatus(_hSession: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_GetFunctionStatus", |_api| {
        Err(Code::FunctionNotParallel.err("no function runs in parallel"))
    })
}

/// C_CancelFunction: a legacy function; always CKR_FUNCTION_NOT_PARALLEL.
///
/// # Safety
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CancelFunction(_hSession: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_CancelFunction", |_api| {
        Err(Code::FunctionNotParallel.err("no function runs in parallel"))
    })
}
