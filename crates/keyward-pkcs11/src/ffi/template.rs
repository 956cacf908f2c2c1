//! CK_ATTRIBUTE arrays (PKCS#11 3.0 §4.1 and §5.7): decoding caller templates into owned
//! `Attribute`s, and writing C_GetAttributeValue results by the spec's five-case rule
//! (SECURITY ABI-01, ATTR-05, ATTR-08).

use std::marker::PhantomData;
use std::mem::size_of;

use cryptoki_sys::*;
use keyward_core::types::{AttrKind, AttrResult, AttrValue, Attribute, attr_kind};
use keyward_core::{Code, Result};
use zeroize::Zeroizing;

use super::ptr;

/// Most entries accepted in one template (SECURITY ABI-04).
pub(crate) const MAX_ATTRS: usize = 1024;
/// Largest attribute value accepted, in bytes (SECURITY ABI-04).
pub(crate) const MAX_VALUE_LEN: usize = 1 << 20;

/// Copy a caller template into owned attributes (C_CreateObject, C_SetAttributeValue,
/// C_FindObjectsInit, key generation, ...). Fixed-size kinds must have their exact C size;
/// pValue NULL with ulValueLen != 0 is CKR_ATTRIBUTE_VALUE_INVALID; nested templates are
/// accepted one level deep.
///
/// # Safety
/// If `p` is not NULL it must point to `count` CK_ATTRIBUTEs whose pValue pointers are
/// valid for reading ulValueLen bytes each (recursively for nested templates).
pub(crate) unsafe fn read(p: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Vec<Attribute>> {
    let n = ptr::to_usize(count)?;
    if n > 0 && p.is_null() {
        return Err(Code::ArgumentsBad.err("NULL template with a non-zero count"));
    }
    if n > MAX_ATTRS {
        return Err(Code::ArgumentsBad.err(format!("template has {n} entries, limit {MAX_ATTRS}")));
    }
    // SAFETY: forwarded caller contract; `p` is non-NULL when `n > 0`.
    unsafe { read_entries(p, n, 0) }
}

/// # Safety
/// `p` points to `n` CK_ATTRIBUTEs (possibly misaligned) as in [`read`]; NULL only if `n == 0`.
unsafe fn read_entries(p: *const CK_ATTRIBUTE, n: usize, depth: u8) -> Result<Vec<Attribute>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: `i < n` entries exist at `p`; read_unaligned needs no alignment (nested
        // arrays live at an arbitrary pValue).
        let a = unsafe { std::ptr::read_unaligned(p.wrapping_add(i)) };
        // SAFETY: the entry's pValue/ulValueLen are covered by the caller's contract.
        let value = unsafe { read_value(a.type_, a.pValue.cast_const(), a.ulValueLen, depth) }?;
        out.push(Attribute { ty: a.type_, value });
    }
    Ok(out)
}

/// # Safety
/// If `p` is not NULL it must be valid for reading `len` bytes.
unsafe fn read_value(
    ty: CK_ATTRIBUTE_TYPE,
    p: *const std::ffi::c_void,
    len: CK_ULONG,
    depth: u8,
) -> Result<AttrValue> {
    let bad =
        |why: &'static str| Code::AttributeValueInvalid.err(format!("attribute {ty:#x}: {why}"));
    let n = usize::try_from(len).map_err(|_| bad("length does not fit in memory"))?;
    if p.is_null() && n != 0 {
        return Err(bad("NULL pValue with a non-zero length"));
    }
    if n > MAX_VALUE_LEN {
        return Err(bad("value too long"));
    }
    match attr_kind(ty) {
        AttrKind::Bool => {
            if n != size_of::<CK_BBOOL>() {
                return Err(bad("CK_BBOOL must be exactly one byte"));
            }
            // SAFETY: non-NULL (n == 1) and one readable byte.
            let b = unsafe { p.cast::<CK_BBOOL>().read() };
            Ok(AttrValue::Bool(b != CK_FALSE))
        }
        AttrKind::Ulong => {
            if n != size_of::<CK_ULONG>() {
                return Err(bad("CK_ULONG value has the wrong size"));
            }
            // SAFETY: non-NULL with sizeof(CK_ULONG) readable bytes; possibly misaligned.
            Ok(AttrValue::Ulong(unsafe {
                p.cast::<CK_ULONG>().read_unaligned()
            }))
        }
        AttrKind::Bytes => {
            // SAFETY: `n` readable bytes at `p` when non-NULL.
            let v = unsafe { ptr::copy_in(p.cast(), n, Code::AttributeValueInvalid) }?;
            Ok(AttrValue::Bytes(Zeroizing::new(v)))
        }
        AttrKind::Template => {
            if depth > 0 {
                return Err(Code::TemplateInconsistent.err(format!(
                    "attribute {ty:#x}: templates nest at most one level"
                )));
            }
            if n % size_of::<CK_ATTRIBUTE>() != 0 {
                return Err(bad("template length is not a whole number of CK_ATTRIBUTE"));
            }
            let count = n / size_of::<CK_ATTRIBUTE>();
            // SAFETY: `count` entries fill the `n` readable bytes at `p`.
            let inner = unsafe { read_entries(p.cast(), count, depth + 1) }?;
            Ok(AttrValue::Template(inner))
        }
        AttrKind::Mechanisms => {
            let size = size_of::<CK_MECHANISM_TYPE>();
            if n % size != 0 {
                return Err(bad(
                    "mechanism list length is not a whole number of entries",
                ));
            }
            let base = p.cast::<CK_MECHANISM_TYPE>();
            let list = (0..n / size)
                // SAFETY: every index is inside the `n` readable bytes; possibly misaligned.
                .map(|i| unsafe { base.wrapping_add(i).read_unaligned() })
                .collect();
            Ok(AttrValue::Mechanisms(list))
        }
    }
}

/// The caller's template of C_GetAttributeValue: types in, lengths and values out.
pub(crate) struct ResultTemplate<'a> {
    p: *mut CK_ATTRIBUTE,
    n: usize,
    _caller: PhantomData<&'a mut [CK_ATTRIBUTE]>,
}

impl<'a> ResultTemplate<'a> {
    /// # Safety
    /// If `p` is not NULL it must point to `count` CK_ATTRIBUTEs, readable and writable for
    /// `'a`, whose non-NULL pValue pointers are writable for ulValueLen bytes (and, for
    /// template attributes, point to caller arrays of CK_ATTRIBUTE with the same guarantee).
    pub(crate) unsafe fn new(p: *mut CK_ATTRIBUTE, count: CK_ULONG) -> Result<ResultTemplate<'a>> {
        let n = ptr::to_usize(count)?;
        if n > 0 && p.is_null() {
            return Err(Code::ArgumentsBad.err("NULL template with a non-zero count"));
        }
        if n > MAX_ATTRS {
            return Err(
                Code::ArgumentsBad.err(format!("template has {n} entries, limit {MAX_ATTRS}"))
            );
        }
        Ok(ResultTemplate {
            p,
            n,
            _caller: PhantomData,
        })
    }

    /// The requested attribute types, in order.
    pub(crate) fn types(&self) -> Vec<CK_ATTRIBUTE_TYPE> {
        (0..self.n)
            // SAFETY: `i < n` entries exist at `p` by the contract of `new`; unaligned read of
            // the input field only.
            .map(|i| unsafe { self.p.wrapping_add(i).read_unaligned() }.type_)
            .collect()
    }

    /// Write every entry's outcome. Every attribute is processed before the combined code is
    /// returned: CKR_ATTRIBUTE_SENSITIVE, else CKR_ATTRIBUTE_TYPE_INVALID, else
    /// CKR_BUFFER_TOO_SMALL, else CKR_OK.
    pub(crate) fn write(&self, results: &[AttrResult]) -> Result<()> {
        if results.len() != self.n {
            return Err(Code::GeneralError.err("engine returned a result count unlike the request"));
        }
        let mut worst = Worst::default();
        for (i, r) in results.iter().enumerate() {
            let e = self.p.wrapping_add(i);
            // SAFETY: entry `i < n` is readable by the contract of `new`; possibly misaligned.
            let mut a = unsafe { e.read_unaligned() };
            a.ulValueLen = match r {
                AttrResult::Sensitive => {
                    worst.sensitive = true;
                    CK_UNAVAILABLE_INFORMATION
                }
                AttrResult::Invalid => {
                    worst.invalid = true;
                    CK_UNAVAILABLE_INFORMATION
                }
                // SAFETY: `pValue` is writable for `ulValueLen` bytes by the contract of `new`.
                AttrResult::Value(v) => unsafe {
                    write_value(v, a.pValue, a.ulValueLen, 0, &mut worst)
                },
            };
            // SAFETY: entry `i < n` is writable by the contract of `new`; only ulValueLen
            // differs from what was read.
            unsafe { e.write_unaligned(a) };
        }
        worst.result()
    }
}

#[derive(Default)]
struct Worst {
    sensitive: bool,
    invalid: bool,
    too_small: bool,
}

impl Worst {
    fn result(&self) -> Result<()> {
        if self.sensitive {
            Err(Code::AttributeSensitive.err("an attribute cannot be revealed"))
        } else if self.invalid {
            Err(Code::AttributeTypeInvalid.err("an attribute is not present on the object"))
        } else if self.too_small {
            Err(Code::BufferTooSmall.err("an attribute buffer is too small"))
        } else {
            Ok(())
        }
    }
}

/// The value in C layout, except templates.
fn encode(v: &AttrValue) -> Option<Zeroizing<Vec<u8>>> {
    match v {
        AttrValue::Bool(b) => Some(Zeroizing::new(vec![if *b { CK_TRUE } else { CK_FALSE }])),
        AttrValue::Ulong(u) => Some(Zeroizing::new(u.to_ne_bytes().to_vec())),
        AttrValue::Bytes(b) => Some(b.clone()),
        AttrValue::Mechanisms(m) => Some(Zeroizing::new(
            m.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        )),
        AttrValue::Template(_) => None,
    }
}

/// Cases 3-5 for one value: returns the ulValueLen to write back.
///
/// # Safety
/// If `pv` is not NULL it must be writable for `cap` bytes; for a template value it must point
/// to caller CK_ATTRIBUTEs as in [`ResultTemplate::new`].
unsafe fn write_value(
    v: &AttrValue,
    pv: *mut std::ffi::c_void,
    cap: CK_ULONG,
    depth: u8,
    worst: &mut Worst,
) -> CK_ULONG {
    let needed = match v {
        AttrValue::Template(items) => items.len().checked_mul(size_of::<CK_ATTRIBUTE>()),
        other => encode(other).map(|b| b.len()),
    };
    let Some(needed_ul) = needed.and_then(|n| CK_ULONG::try_from(n).ok()) else {
        worst.too_small = true;
        return CK_UNAVAILABLE_INFORMATION;
    };
    if pv.is_null() {
        return needed_ul;
    }
    if cap < needed_ul {
        worst.too_small = true;
        return CK_UNAVAILABLE_INFORMATION;
    }
    match v {
        AttrValue::Template(items) => {
            if depth > 0 {
                // Stored templates never nest (refused on input), so this is not reachable
                // with engine data; report it as unavailable rather than recurse.
                worst.invalid = true;
                return CK_UNAVAILABLE_INFORMATION;
            }
            let arr = pv.cast::<CK_ATTRIBUTE>();
            for (j, item) in items.iter().enumerate() {
                let e = arr.wrapping_add(j);
                // SAFETY: `cap >= items.len() * sizeof(CK_ATTRIBUTE)` bytes at `arr` are the
                // caller's nested array; possibly misaligned.
                let mut a = unsafe { e.read_unaligned() };
                a.type_ = item.ty;
                // SAFETY: the nested pValue is writable for its ulValueLen by contract.
                a.ulValueLen =
                    unsafe { write_value(&item.value, a.pValue, a.ulValueLen, depth + 1, worst) };
                // SAFETY: as above, entry `j` is inside the caller's nested array.
                unsafe { e.write_unaligned(a) };
            }
            needed_ul
        }
        other => {
            if let Some(bytes) = encode(other) {
                // SAFETY: `pv` is non-NULL and writable for `cap >= bytes.len()` bytes.
                unsafe { ptr::copy_out(pv.cast::<u8>(), &bytes) };
            }
            needed_ul
        }
    }
}

#[cfg(test)]
mod tests;
