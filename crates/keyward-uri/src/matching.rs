//! Matching a URI against what a module reports about its library, slots, tokens and objects
//! (RFC 7512 section 3.3's guidelines): an absent attribute matches anything.

use crate::{ObjectType, Pkcs11Uri};

/// What CK_TOKEN_INFO says about a token. The strings may be given as the module returns them,
/// blank-padded to their fixed width: matching ignores trailing spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFields<'a> {
    /// `label`, matched by the `token` attribute.
    pub label: &'a str,
    /// `manufacturerID`, matched by `manufacturer`.
    pub manufacturer: &'a str,
    /// `model`, matched by `model`.
    pub model: &'a str,
    /// `serialNumber`, matched by `serial`.
    pub serial: &'a str,
}

/// What CK_SLOT_INFO says about a slot, plus its CK_SLOT_ID; blank padding is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotFields<'a> {
    /// `slotDescription`, matched by `slot-description`.
    pub description: &'a str,
    /// `manufacturerID`, matched by `slot-manufacturer`.
    pub manufacturer: &'a str,
    /// The slot id, matched by `slot-id`.
    pub id: u64,
}

/// What CK_INFO says about a library; blank padding is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibraryFields<'a> {
    /// `manufacturerID`, matched by `library-manufacturer`.
    pub manufacturer: &'a str,
    /// `libraryDescription`, matched by `library-description`.
    pub description: &'a str,
    /// `libraryVersion` as (major, minor), matched by `library-version`.
    pub version: (u8, u8),
}

/// An object's attributes, `None` where the object has no such attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectFields<'a> {
    /// CKA_LABEL, matched exactly by `object`.
    pub label: Option<&'a str>,
    /// CKA_ID, matched byte for byte by `id`.
    pub id: Option<&'a [u8]>,
    /// The type for CKA_CLASS ([`ObjectType::from_class`]), matched by `type`.
    pub object_type: Option<ObjectType>,
}

/// CK_*_INFO strings are padded with blanks to a fixed width, and a URI written by hand may
/// carry the padding or not: both sides are compared without trailing spaces.
fn unpadded(s: &str) -> &str {
    s.trim_end_matches(' ')
}

fn padded_eq(want: Option<&str>, have: &str) -> bool {
    want.is_none_or(|w| unpadded(w) == unpadded(have))
}

/// An attribute present in the URI matches only an object that has it with an equal value.
fn object_eq<T: PartialEq + ?Sized>(want: Option<&T>, have: Option<&T>) -> bool {
    match (want, have) {
        (None, _) => true,
        (Some(w), Some(h)) => w == h,
        (Some(_), None) => false,
    }
}

impl Pkcs11Uri {
    /// RFC 7512: a path attribute the consumer does not recognise makes the URI match nothing.
    fn matches_anything(&self) -> bool {
        self.vendor_path.is_empty()
    }

    /// Whether `token`, `manufacturer`, `model` and `serial` (those present) equal the token's
    /// fields, ignoring blank padding. Other attributes are not consulted, except that an
    /// unrecognised path attribute makes this `false`.
    pub fn matches_token(&self, t: &TokenFields<'_>) -> bool {
        self.matches_anything()
            && padded_eq(self.token.as_deref(), t.label)
            && padded_eq(self.manufacturer.as_deref(), t.manufacturer)
            && padded_eq(self.model.as_deref(), t.model)
            && padded_eq(self.serial.as_deref(), t.serial)
    }

    /// Whether `slot-description`, `slot-manufacturer` and `slot-id` (those present) equal the
    /// slot's, ignoring blank padding; `false` with an unrecognised path attribute.
    pub fn matches_slot(&self, s: &SlotFields<'_>) -> bool {
        self.matches_anything()
            && padded_eq(self.slot_description.as_deref(), s.description)
            && padded_eq(self.slot_manufacturer.as_deref(), s.manufacturer)
            && self.slot_id.is_none_or(|id| id == s.id)
    }

    /// Whether `library-manufacturer`, `library-description` and `library-version` (those
    /// present) equal the library's, ignoring blank padding; `false` with an unrecognised path
    /// attribute.
    pub fn matches_library(&self, l: &LibraryFields<'_>) -> bool {
        self.matches_anything()
            && padded_eq(self.library_manufacturer.as_deref(), l.manufacturer)
            && padded_eq(self.library_description.as_deref(), l.description)
            && self.library_version.is_none_or(|v| v == l.version)
    }

    /// Whether `object` (exactly: labels are not padded), `id` (byte for byte) and `type`
    /// (those present) equal the object's; an object lacking an attribute the URI names does
    /// not match. `false` with an unrecognised path attribute.
    pub fn matches_object(&self, o: &ObjectFields<'_>) -> bool {
        self.matches_anything()
            && object_eq(self.object.as_deref(), o.label)
            && object_eq(self.id.as_deref(), o.id)
            && object_eq(self.object_type.as_ref(), o.object_type.as_ref())
    }
}
