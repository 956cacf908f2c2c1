//! Object management functions (PKCS#11 3.0 §5.7).

use cryptoki_sys::*;
use keyward_core::Code;

use crate::ffi::template::{self, ResultTemplate};
use crate::ffi::{entry, ptr};

/// C_CreateObject.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phObject: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    entry("C_CreateObject", |api| {
        ptr::require(phObject)?;
        // SAFETY: the caller's contract for (pTemplate, ulCount).
        let tmpl = unsafe { template::read(pTemplate.cast_const(), ulCount) }?;
        let h = api.create_object(hSession, tmpl)?;
        // SAFETY: non-NULL (checked) and writable for a handle.
        unsafe { ptr::write(phObject, h) }
    })
}

/// C_CopyObject.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phNewObject: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    entry("C_CopyObject", |api| {
        ptr::require(phNewObject)?;
        // SAFETY: the caller's contract for (pTemplate, ulCount).
        let tmpl = unsafe { template::read(pTemplate.cast_const(), ulCount) }?;
        let h = api.copy_object(hSession, hObject, tmpl)?;
        // SAFETY: non-NULL (checked) and writable for a handle.
        unsafe { ptr::write(phNewObject, h) }
    })
}

/// C_DestroyObject.
///
/// # Safety
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_DestroyObject", |api| {
        api.destroy_object(hSession, hObject)
    })
}

/// C_GetObjectSize.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_GetObjectSize", |api| {
        ptr::require(pulSize)?;
        let size = api.object_size(hSession, hObject)?;
        // SAFETY: non-NULL (checked) and writable for a CK_ULONG.
        unsafe { ptr::write(pulSize, size) }
    })
}

/// C_GetAttributeValue: every entry is processed (five-case rule) before the combined code
/// is returned.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    entry("C_GetAttributeValue", |api| {
        // SAFETY: the caller's contract for (pTemplate, ulCount) and each entry's buffer.
        let t = unsafe { ResultTemplate::new(pTemplate, ulCount) }?;
        let results = api.get_attribute_value(hSession, hObject, &t.types())?;
        t.write(&results)
    })
}

/// C_SetAttributeValue.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    entry("C_SetAttributeValue", |api| {
        // SAFETY: the caller's contract for (pTemplate, ulCount).
        let tmpl = unsafe { template::read(pTemplate.cast_const(), ulCount) }?;
        api.set_attribute_value(hSession, hObject, tmpl)
    })
}

/// C_FindObjectsInit.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    entry("C_FindObjectsInit", |api| {
        // SAFETY: the caller's contract for (pTemplate, ulCount).
        let tmpl = unsafe { template::read(pTemplate.cast_const(), ulCount) }?;
        api.find_objects_init(hSession, tmpl)
    })
}

/// C_FindObjects.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: CK_OBJECT_HANDLE_PTR,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_FindObjects", |api| {
        ptr::require(pulObjectCount)?;
        let max = ptr::to_usize(ulMaxObjectCount)?;
        if max > 0 {
            ptr::require(phObject)?;
        }
        let found = api.find_objects(hSession, max)?;
        if found.len() > max {
            return Err(Code::GeneralError.err("engine returned more handles than asked for"));
        }
        // SAFETY: `phObject` is non-NULL when `max > 0` and holds `max >= found.len()`
        // handles; nothing is written when `found` is empty.
        unsafe { ptr::copy_out(phObject, &found) };
        let n = ptr::to_ulong(found.len())?;
        // SAFETY: non-NULL (checked) and writable for a CK_ULONG.
        unsafe { ptr::write(pulObjectCount, n) }
    })
}

/// C_FindObjectsFinal.
///
/// # Safety
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_FindObjectsFinal", |api| api.find_objects_final(hSession))
}
