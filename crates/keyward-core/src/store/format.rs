//! The store's versioned, bounded binary encoding of attribute sets (`Attrs`), with a decoder
//! that rejects every malformed input with an error and never panics.
//!
//! Layout (all integers little-endian; see docs/storage-format.md):
//! ```text
//! record  = version:u8 (=1) · fields
//! fields  = count:u32 · count × field        (top level: types strictly ascending)
//! field   = type:u64 · value
//! value   = 0x01 · b:u8 (0|1)                 CK_BBOOL
//!         | 0x02 · v:u64                      CK_ULONG
//!         | 0x03 · len:u32 · bytes            byte string
//!         | 0x04 · fields                     nested template (order kept)
//!         | 0x05 · n:u32 · n × u64            mechanism list
//!         | 0x06 · len:u32 · bytes            sealed value (top level of public records only)
//! ```

use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CK_MECHANISM_TYPE, CK_ULONG};
use zeroize::Zeroizing;

use crate::error::{Code, Error, Result};
use crate::types::{AttrValue, Attribute, Attrs};

/// The record encoding version this code writes and reads.
pub(crate) const RECORD_VERSION: u8 = 1;
/// Nested templates deeper than this are refused (a template inside a template is depth 2).
pub(crate) const MAX_DEPTH: usize = 4;
/// Most fields in one template level, and most mechanisms in one list.
pub(crate) const MAX_COUNT: u32 = 4096;
/// Longest single byte-string value (16 MiB).
pub(crate) const MAX_VALUE_LEN: u32 = 1 << 24;

const T_BOOL: u8 = 1;
const T_ULONG: u8 = 2;
const T_BYTES: u8 = 3;
const T_TEMPLATE: u8 = 4;
const T_MECHS: u8 = 5;
const T_SEALED: u8 = 6;

/// A top-level field of a stored record: a value in clear, or one sealed under the master key
/// (`nonce ‖ ciphertext ‖ tag` of the value's own encoding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Clear(AttrValue),
    Sealed(Vec<u8>),
}

fn bad(why: &'static str) -> Error {
    Code::DeviceError.err(format!("malformed stored record: {why}"))
}

/// CK_ULONG widened to the stored 64 bits (it is 32 bits wide on some targets).
#[allow(clippy::useless_conversion)]
pub(crate) fn wide(v: CK_ULONG) -> u64 {
    u64::from(v)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<()> {
    let n = u32::try_from(len)
        .ok()
        .filter(|n| *n <= MAX_VALUE_LEN)
        .ok_or_else(|| Code::DeviceMemory.err("attribute value too long to store"))?;
    put_u32(out, n);
    Ok(())
}

fn put_count(out: &mut Vec<u8>, count: usize) -> Result<()> {
    let n = u32::try_from(count)
        .ok()
        .filter(|n| *n <= MAX_COUNT)
        .ok_or_else(|| Code::DeviceMemory.err("too many attributes or mechanisms to store"))?;
    put_u32(out, n);
    Ok(())
}

fn put_value(out: &mut Vec<u8>, v: &AttrValue, depth: usize) -> Result<()> {
    match v {
        AttrValue::Bool(b) => {
            out.push(T_BOOL);
            out.push(u8::from(*b));
        }
        AttrValue::Ulong(u) => {
            out.push(T_ULONG);
            put_u64(out, wide(*u));
        }
        AttrValue::Bytes(b) => {
            out.push(T_BYTES);
            put_len(out, b.len())?;
            out.extend_from_slice(b);
        }
        AttrValue::Template(t) => {
            if depth + 1 > MAX_DEPTH {
                return Err(Code::TemplateInconsistent.err("attribute templates nested too deeply"));
            }
            out.push(T_TEMPLATE);
            put_count(out, t.len())?;
            for a in t {
                put_u64(out, wide(a.ty));
                put_value(out, &a.value, depth + 1)?;
            }
        }
        AttrValue::Mechanisms(m) => {
            out.push(T_MECHS);
            put_count(out, m.len())?;
            for mech in m {
                put_u64(out, wide(*mech));
            }
        }
    }
    Ok(())
}

/// Encode a record from its top-level fields, which must be in ascending type order (a
/// BTreeMap's order). With `skeleton`, sealed fields are written with an empty payload: that
/// form is what each sealed value's associated data covers.
pub(crate) fn encode_fields<'a>(
    fields: impl ExactSizeIterator<Item = (CK_ATTRIBUTE_TYPE, &'a Field)>,
    skeleton: bool,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    out.push(RECORD_VERSION);
    put_count(&mut out, fields.len())?;
    let mut last: Option<CK_ATTRIBUTE_TYPE> = None;
    for (ty, f) in fields {
        if last.is_some_and(|l| l >= ty) {
            return Err(Code::GeneralError.err("record fields not in ascending order"));
        }
        last = Some(ty);
        put_u64(&mut out, wide(ty));
        match f {
            Field::Clear(v) => put_value(&mut out, v, 0)?,
            Field::Sealed(blob) => {
                out.push(T_SEALED);
                if skeleton {
                    put_u32(&mut out, 0);
                } else {
                    put_len(&mut out, blob.len())?;
                    out.extend_from_slice(blob);
                }
            }
        }
    }
    Ok(out)
}

/// Encode a whole attribute set in clear (the plaintext of a private object's record).
pub(crate) fn encode_attrs(attrs: &Attrs) -> Result<Zeroizing<Vec<u8>>> {
    let fields: Vec<(CK_ATTRIBUTE_TYPE, Field)> = attrs
        .iter()
        .map(|(t, v)| (t, Field::Clear(v.clone())))
        .collect();
    encode_fields(fields.iter().map(|(t, f)| (*t, f)), false)
}

/// Encode one value alone (the plaintext of a sealed field).
pub(crate) fn encode_value(v: &AttrValue) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    out.push(RECORD_VERSION);
    put_value(&mut out, v, 0)?;
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| bad("truncated"))?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| bad("truncated"))?;
        Ok(u64::from_le_bytes(b))
    }

    fn ulong(&mut self) -> Result<CK_ULONG> {
        CK_ULONG::try_from(self.u64()?).map_err(|_| bad("value does not fit CK_ULONG"))
    }

    fn count(&mut self) -> Result<usize> {
        let n = self.u32()?;
        if n > MAX_COUNT {
            return Err(bad("count over the limit"));
        }
        usize::try_from(n).map_err(|_| bad("count over the limit"))
    }

    fn len(&mut self) -> Result<usize> {
        let n = self.u32()?;
        if n > MAX_VALUE_LEN {
            return Err(bad("length over the limit"));
        }
        usize::try_from(n).map_err(|_| bad("length over the limit"))
    }

    fn version(&mut self) -> Result<()> {
        if self.u8()? != RECORD_VERSION {
            return Err(bad("unknown record version"));
        }
        Ok(())
    }

    fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(bad("trailing bytes"))
        }
    }

    fn value_after_tag(&mut self, tag: u8, depth: usize) -> Result<AttrValue> {
        match tag {
            T_BOOL => match self.u8()? {
                0 => Ok(AttrValue::Bool(false)),
                1 => Ok(AttrValue::Bool(true)),
                _ => Err(bad("boolean not 0 or 1")),
            },
            T_ULONG => Ok(AttrValue::Ulong(self.ulong()?)),
            T_BYTES => {
                let n = self.len()?;
                Ok(AttrValue::Bytes(Zeroizing::new(self.take(n)?.to_vec())))
            }
            T_TEMPLATE => {
                if depth + 1 > MAX_DEPTH {
                    return Err(bad("templates nested too deeply"));
                }
                let n = self.count()?;
                let mut t = Vec::new();
                for _ in 0..n {
                    let ty = self.ulong()?;
                    let tag = self.u8()?;
                    let value = self.value_after_tag(tag, depth + 1)?;
                    t.push(Attribute { ty, value });
                }
                Ok(AttrValue::Template(t))
            }
            T_MECHS => {
                let n = self.count()?;
                if n.saturating_mul(8) > self.buf.len() {
                    return Err(bad("truncated"));
                }
                let mut m: Vec<CK_MECHANISM_TYPE> = Vec::with_capacity(n);
                for _ in 0..n {
                    m.push(self.ulong()?);
                }
                Ok(AttrValue::Mechanisms(m))
            }
            T_SEALED => Err(bad("sealed value where a clear one is required")),
            _ => Err(bad("unknown value tag")),
        }
    }
}

/// Decode a record into its top-level fields (ascending, no duplicates).
pub(crate) fn decode_fields(bytes: &[u8]) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Field)>> {
    let mut r = Reader { buf: bytes };
    r.version()?;
    let n = r.count()?;
    let mut out: Vec<(CK_ATTRIBUTE_TYPE, Field)> = Vec::new();
    for _ in 0..n {
        let ty = r.ulong()?;
        if out.last().is_some_and(|(l, _)| *l >= ty) {
            return Err(bad("attribute types not strictly ascending"));
        }
        let tag = r.u8()?;
        let field = if tag == T_SEALED {
            let len = r.len()?;
            Field::Sealed(r.take(len)?.to_vec())
        } else {
            Field::Clear(r.value_after_tag(tag, 0)?)
        };
        out.push((ty, field));
    }
    r.finish()?;
    Ok(out)
}

/// Decode a record that must hold every value in clear.
pub(crate) fn decode_attrs(bytes: &[u8]) -> Result<Attrs> {
    let mut attrs = Attrs::new();
    for (ty, f) in decode_fields(bytes)? {
        match f {
            Field::Clear(v) => attrs.set(ty, v),
            Field::Sealed(_) => return Err(bad("sealed field inside a sealed record")),
        }
    }
    Ok(attrs)
}

/// Decode one value alone (the plaintext of a sealed field).
pub(crate) fn decode_value(bytes: &[u8]) -> Result<AttrValue> {
    let mut r = Reader { buf: bytes };
    r.version()?;
    let tag = r.u8()?;
    let v = r.value_after_tag(tag, 0)?;
    r.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use cryptoki_sys::*;

    use super::*;

    fn sample() -> Attrs {
        let mut a = Attrs::new();
        a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
        a.set(CKA_SENSITIVE, AttrValue::Bool(true));
        a.set(CKA_LABEL, AttrValue::bytes(b"k".to_vec()));
        a.set(CKA_VALUE, AttrValue::bytes(vec![0x11; 32]));
        a.set(
            CKA_ALLOWED_MECHANISMS,
            AttrValue::Mechanisms(vec![CKM_AES_GCM, CKM_AES_CBC]),
        );
        a.set(
            CKA_WRAP_TEMPLATE,
            AttrValue::Template(vec![
                Attribute::bool(CKA_EXTRACTABLE, false),
                Attribute {
                    ty: CKA_DERIVE_TEMPLATE,
                    value: AttrValue::Template(vec![Attribute::ulong(CKA_KEY_TYPE, CKK_AES)]),
                },
            ]),
        );
        a
    }

    #[test]
    fn round_trip_is_exact() {
        let a = sample();
        let enc = encode_attrs(&a).unwrap();
        assert_eq!(decode_attrs(&enc).unwrap(), a);
        // Canonical: re-encoding the decoded set gives the same bytes.
        assert_eq!(encode_attrs(&decode_attrs(&enc).unwrap()).unwrap(), enc);
        let v = AttrValue::bytes(vec![1, 2, 3]);
        assert_eq!(decode_value(&encode_value(&v).unwrap()).unwrap(), v);
    }

    #[test]
    fn known_bytes() {
        let mut a = Attrs::new();
        a.set(CKA_TOKEN, AttrValue::Bool(true));
        let enc = encode_attrs(&a).unwrap();
        // version 1, one field, type CKA_TOKEN (0x1), tag Bool, TRUE.
        assert_eq!(hex::encode(&enc[..]), "010100000001000000000000000101");
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let enc = encode_attrs(&sample()).unwrap();
        for n in 0..enc.len() {
            assert!(decode_attrs(&enc[..n]).is_err(), "prefix {n} accepted");
        }
        let mut long = enc.to_vec();
        long.push(0);
        assert!(decode_attrs(&long).is_err());
    }

    #[test]
    fn every_single_byte_change_fails_or_decodes() {
        // No panic for any single-byte corruption, and no change goes unnoticed unless it
        // lands inside a value (where integrity is the sealing layer's job).
        let enc = encode_attrs(&sample()).unwrap();
        for i in 0..enc.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = enc.to_vec();
                b[i] ^= x;
                let _ = decode_attrs(&b);
                let _ = decode_fields(&b);
                let _ = decode_value(&b);
            }
        }
    }

    #[test]
    fn garbage_and_limits_rejected() {
        // Pseudo-random garbage of many lengths.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..512 {
            let mut b = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b.push(state as u8);
            }
            let _ = decode_attrs(&b);
            let _ = decode_value(&b);
        }
        // Huge counts and lengths are refused before any allocation.
        assert!(decode_attrs(&[1, 0xff, 0xff, 0xff, 0xff]).is_err());
        let mut b = vec![1, 1, 0, 0, 0];
        b.extend_from_slice(&0u64.to_le_bytes());
        b.push(T_BYTES);
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_attrs(&b).is_err());
        let mut m = vec![1, 1, 0, 0, 0];
        m.extend_from_slice(&0u64.to_le_bytes());
        m.push(T_MECHS);
        m.extend_from_slice(&4000u32.to_le_bytes());
        assert!(decode_attrs(&m).is_err());
        // Booleans other than 0/1, unknown tags, unknown versions.
        let mut bb = vec![1, 1, 0, 0, 0];
        bb.extend_from_slice(&1u64.to_le_bytes());
        bb.extend_from_slice(&[T_BOOL, 2]);
        assert!(decode_attrs(&bb).is_err());
        let mut t = bb.clone();
        t[13] = 0x7f;
        assert!(decode_attrs(&t).is_err());
        assert!(decode_attrs(&[2, 0, 0, 0, 0]).is_err());
        assert!(decode_attrs(&[1, 0, 0, 0, 0]).unwrap().0.is_empty());
    }

    #[test]
    fn duplicates_and_disorder_rejected() {
        let mut b = vec![1, 2, 0, 0, 0];
        for _ in 0..2 {
            b.extend_from_slice(&5u64.to_le_bytes());
            b.extend_from_slice(&[T_BOOL, 1]);
        }
        assert!(decode_attrs(&b).is_err());
    }

    #[test]
    fn deep_nesting_bounded() {
        let mut v = AttrValue::Bool(true);
        for _ in 0..MAX_DEPTH {
            v = AttrValue::Template(vec![Attribute {
                ty: CKA_WRAP_TEMPLATE,
                value: v,
            }]);
        }
        let mut ok = Attrs::new();
        ok.set(CKA_WRAP_TEMPLATE, v.clone());
        assert!(encode_attrs(&ok).is_ok());
        let mut deep = Attrs::new();
        deep.set(
            CKA_WRAP_TEMPLATE,
            AttrValue::Template(vec![Attribute {
                ty: CKA_WRAP_TEMPLATE,
                value: v,
            }]),
        );
        assert!(encode_attrs(&deep).is_err());
        // A hand-built deeply nested record is refused by the decoder (no stack exhaustion).
        let mut b = vec![1, 1, 0, 0, 0];
        b.extend_from_slice(&0u64.to_le_bytes());
        for _ in 0..10_000 {
            b.push(T_TEMPLATE);
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&0u64.to_le_bytes());
        }
        assert!(decode_attrs(&b).is_err());
    }

    #[test]
    fn sealed_fields_and_skeleton() {
        let fields = vec![
            (CKA_CLASS, Field::Clear(AttrValue::Ulong(CKO_SECRET_KEY))),
            (CKA_VALUE, Field::Sealed(vec![9u8; 40])),
        ];
        let full = encode_fields(fields.iter().map(|(t, f)| (*t, f)), false).unwrap();
        let skel = encode_fields(fields.iter().map(|(t, f)| (*t, f)), true).unwrap();
        assert_eq!(decode_fields(&full).unwrap(), fields);
        assert_eq!(full.len() - skel.len(), 40);
        // A sealed field is never accepted where clear values are required.
        assert!(decode_attrs(&full).is_err());
        assert!(decode_value(&[1, T_SEALED, 0, 0, 0, 0]).is_err());
    }
}
