//! PKCS#11 URIs (RFC 7512): parsing, canonical formatting, and matching against token, slot,
//! library and object information.
//!
//! ```
//! use keyward_uri::{ObjectType, Pkcs11Uri};
//!
//! let uri: Pkcs11Uri = "pkcs11:token=dev;object=id%20key;type=private?pin-source=file:/x".parse()?;
//! assert_eq!(uri.token(), Some("dev"));
//! assert_eq!(uri.object(), Some("id key"));
//! assert_eq!(uri.object_type(), Some(ObjectType::Private));
//! assert_eq!(uri.pin_source(), Some("file:/x"));
//!
//! let built = Pkcs11Uri::new().with_token("dev").with_id([0x01, 0xab]);
//! assert_eq!(built.to_string(), "pkcs11:token=dev;id=%01%AB");
//! # Ok::<(), keyward_uri::UriError>(())
//! ```
//!
//! The parser follows the grammar of RFC 7512 section 2.3 strictly: attribute names are the
//! lowercase names the RFC defines (or a vendor name of letters, digits, `-` and `_`), values
//! hold only the characters the grammar allows unencoded plus `%XX` escapes, a path attribute
//! appears at most once, and so do the four standard query attributes. Every error names the
//! offending part and its byte offset, and never echoes a PIN.
//!
//! Attributes this crate does not know are kept (in [`Pkcs11Uri::vendor_path`] and
//! [`Pkcs11Uri::vendor_query`]) and written out again, so a URI survives a round trip. As the
//! RFC requires, an unrecognised *path* attribute makes a URI match nothing (the `matches_*`
//! methods return `false`), while unrecognised query attributes are ignored.

#![forbid(unsafe_code)]

mod encode;
mod matching;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

pub use matching::{LibraryFields, ObjectFields, SlotFields, TokenFields};

/// A parsed PKCS#11 URI. Absent attributes are `None`; an attribute given with an empty value
/// (`serial=`) is `Some("")`.
///
/// `Display` writes the canonical form: attributes in the order of RFC 7512's grammar, then the
/// vendor attributes in the order they were given, values percent-encoded only where the
/// grammar requires it (and `id` always fully as `%XX`). Parsing that text gives back an equal
/// value. The text includes `pin-value` when one is set; `Debug` does not.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    token: Option<String>,
    manufacturer: Option<String>,
    serial: Option<String>,
    model: Option<String>,
    library_manufacturer: Option<String>,
    library_description: Option<String>,
    library_version: Option<(u8, u8)>,
    object: Option<String>,
    object_type: Option<ObjectType>,
    id: Option<Vec<u8>>,
    slot_description: Option<String>,
    slot_manufacturer: Option<String>,
    slot_id: Option<u64>,
    vendor_path: Vec<(String, String)>,
    pin_source: Option<String>,
    pin_value: Option<Zeroizing<String>>,
    module_name: Option<String>,
    module_path: Option<String>,
    vendor_query: Vec<(String, String)>,
}

/// The `type` path attribute: the class of object a URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// `cert`: CKO_CERTIFICATE.
    Cert,
    /// `data`: CKO_DATA.
    Data,
    /// `private`: CKO_PRIVATE_KEY.
    Private,
    /// `public`: CKO_PUBLIC_KEY.
    Public,
    /// `secret-key`: CKO_SECRET_KEY.
    SecretKey,
}

/// Why a URI (or a vendor attribute name given to a builder) was refused: a message naming the
/// offending part, and the byte offset in the input where that part starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriError {
    position: usize,
    message: String,
}

impl UriError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> UriError {
        UriError {
            position,
            message: message.into(),
        }
    }

    /// Byte offset in the input of the offending part (0 for errors about the whole input or
    /// about a builder argument).
    pub fn position(&self) -> usize {
        self.position
    }

    /// The message, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid PKCS#11 URI: {} (at byte {})",
            self.message, self.position
        )
    }
}

impl std::error::Error for UriError {}

impl ObjectType {
    /// Every type, in the order of RFC 7512's grammar.
    pub const ALL: [ObjectType; 5] = [
        ObjectType::Public,
        ObjectType::Private,
        ObjectType::Cert,
        ObjectType::SecretKey,
        ObjectType::Data,
    ];

    /// The URI spelling: `cert`, `data`, `private`, `public` or `secret-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Cert => "cert",
            ObjectType::Data => "data",
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::SecretKey => "secret-key",
        }
    }

    /// The CKA_CLASS value (CKO_*) of objects of this type.
    pub fn class(self) -> u64 {
        match self {
            ObjectType::Data => 0,
            ObjectType::Cert => 1,
            ObjectType::Public => 2,
            ObjectType::Private => 3,
            ObjectType::SecretKey => 4,
        }
    }

    /// The type for a CKA_CLASS value, if the URI scheme has one for it.
    pub fn from_class(class: u64) -> Option<ObjectType> {
        ObjectType::ALL.into_iter().find(|t| t.class() == class)
    }
}

impl FromStr for ObjectType {
    type Err = UriError;

    /// Accepts exactly the lowercase spellings of [`ObjectType::as_str`].
    fn from_str(s: &str) -> Result<ObjectType, UriError> {
        ObjectType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                UriError::new(
                    0,
                    "an object type is one of public, private, cert, secret-key or data",
                )
            })
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A getter and a builder-style setter for a text attribute.
macro_rules! text_attribute {
    ($name:literal, $field:ident, $with:ident) => {
        #[doc = concat!("The `", $name, "` attribute, percent-decoded.")]
        pub fn $field(&self) -> Option<&str> {
            self.$field.as_deref()
        }

        #[doc = concat!("Sets the `", $name, "` attribute.")]
        #[must_use]
        pub fn $with(mut self, value: impl Into<String>) -> Self {
            self.$field = Some(value.into());
            self
        }
    };
}

impl Pkcs11Uri {
    /// The empty URI, `pkcs11:`, which matches every token, slot, library and object.
    pub fn new() -> Pkcs11Uri {
        Pkcs11Uri::default()
    }

    text_attribute!("token", token, with_token);
    text_attribute!("manufacturer", manufacturer, with_manufacturer);
    text_attribute!("serial", serial, with_serial);
    text_attribute!("model", model, with_model);
    text_attribute!(
        "library-manufacturer",
        library_manufacturer,
        with_library_manufacturer
    );
    text_attribute!(
        "library-description",
        library_description,
        with_library_description
    );
    text_attribute!("slot-description", slot_description, with_slot_description);
    text_attribute!(
        "slot-manufacturer",
        slot_manufacturer,
        with_slot_manufacturer
    );
    text_attribute!("object", object, with_object);

    /// The `pin-source` query attribute, percent-decoded.
    pub fn pin_source(&self) -> Option<&str> {
        self.pin_source.as_deref()
    }

    /// The `module-name` query attribute, percent-decoded.
    pub fn module_name(&self) -> Option<&str> {
        self.module_name.as_deref()
    }

    /// The `module-path` query attribute, percent-decoded.
    pub fn module_path(&self) -> Option<&str> {
        self.module_path.as_deref()
    }

    /// The `library-version` attribute as (major, minor); `library-version=1` is `(1, 0)`.
    pub fn library_version(&self) -> Option<(u8, u8)> {
        self.library_version
    }

    /// Sets the `library-version` attribute.
    #[must_use]
    pub fn with_library_version(mut self, version: (u8, u8)) -> Self {
        self.library_version = Some(version);
        self
    }

    /// The `slot-id` attribute.
    pub fn slot_id(&self) -> Option<u64> {
        self.slot_id
    }

    /// Sets the `slot-id` attribute.
    #[must_use]
    pub fn with_slot_id(mut self, id: u64) -> Self {
        self.slot_id = Some(id);
        self
    }

    /// The `type` attribute.
    pub fn object_type(&self) -> Option<ObjectType> {
        self.object_type
    }

    /// Sets the `type` attribute.
    #[must_use]
    pub fn with_object_type(mut self, object_type: ObjectType) -> Self {
        self.object_type = Some(object_type);
        self
    }

    /// The `id` attribute (CKA_ID) as raw bytes.
    pub fn id(&self) -> Option<&[u8]> {
        self.id.as_deref()
    }

    /// Sets the `id` attribute (CKA_ID).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The `pin-value` query attribute, percent-decoded.
    pub fn pin_value(&self) -> Option<&str> {
        self.pin_value.as_deref().map(String::as_str)
    }

    /// Sets the `pin-value` query attribute and removes any `pin-source`, since the RFC refuses
    /// a URI with both.
    #[must_use]
    pub fn with_pin_value(mut self, pin: impl Into<String>) -> Self {
        self.pin_value = Some(Zeroizing::new(pin.into()));
        self.pin_source = None;
        self
    }

    /// Sets the `pin-source` query attribute and removes any `pin-value`, since the RFC refuses
    /// a URI with both.
    #[must_use]
    pub fn with_pin_source(mut self, source: impl Into<String>) -> Self {
        self.pin_source = Some(source.into());
        self.pin_value = None;
        self
    }

    /// Sets the `module-name` query attribute; an empty name (which the grammar does not allow)
    /// removes it.
    #[must_use]
    pub fn with_module_name(mut self, name: impl Into<String>) -> Self {
        self.module_name = Some(name.into()).filter(|n| !n.is_empty());
        self
    }

    /// Sets the `module-path` query attribute; an empty path (which the grammar does not allow)
    /// removes it.
    #[must_use]
    pub fn with_module_path(mut self, path: impl Into<String>) -> Self {
        self.module_path = Some(path.into()).filter(|p| !p.is_empty());
        self
    }

    /// The same URI without its query component (PIN, module and vendor query attributes):
    /// what to print when naming an object.
    #[must_use]
    pub fn without_query(mut self) -> Self {
        self.pin_source = None;
        self.pin_value = None;
        self.module_name = None;
        self.module_path = None;
        self.vendor_query.clear();
        self
    }

    /// Path attributes this crate does not define (vendor `x-…` ones and any other), as
    /// (name, percent-decoded value) in the order given. Their presence makes every
    /// `matches_*` method return `false` (RFC 7512: an unrecognised path attribute matches no
    /// resource).
    pub fn vendor_path(&self) -> &[(String, String)] {
        &self.vendor_path
    }

    /// Query attributes this crate does not define, as (name, percent-decoded value) in the
    /// order given; a name may repeat. Matching ignores them.
    pub fn vendor_query(&self) -> &[(String, String)] {
        &self.vendor_query
    }

    /// Adds a path attribute this crate does not define. The name must be letters, digits,
    /// `-` and `_` (RFC 7512 recommends an `x-` prefix), must not be an RFC 7512 name in any
    /// case, and must not be present already.
    pub fn with_vendor_path(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, UriError> {
        let name = name.into();
        parse::check_vendor_name(&name, 0)?;
        if self.vendor_path.iter().any(|(n, _)| *n == name) {
            return Err(UriError::new(
                0,
                format!("path attribute '{name}' is present already"),
            ));
        }
        self.vendor_path.push((name, value.into()));
        Ok(self)
    }

    /// Adds a query attribute this crate does not define, under the naming rules of
    /// [`Pkcs11Uri::with_vendor_path`]; query names may repeat.
    pub fn with_vendor_query(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, UriError> {
        let name = name.into();
        parse::check_vendor_name(&name, 0)?;
        self.vendor_query.push((name, value.into()));
        Ok(self)
    }
}

impl FromStr for Pkcs11Uri {
    type Err = UriError;

    /// Parses a URI such as `pkcs11:token=dev;object=id?pin-source=file:/x`. The scheme name is
    /// case-insensitive; nothing else is, and no white space is allowed.
    fn from_str(s: &str) -> Result<Pkcs11Uri, UriError> {
        parse::parse(s)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        encode::write_uri(self, f)
    }
}

impl fmt::Debug for Pkcs11Uri {
    /// Like `Display`, but a `pin-value` is shown as `<redacted>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pin_value.is_none() {
            return write!(f, "Pkcs11Uri({self})");
        }
        let mut shown = self.clone();
        shown.pin_value = None;
        let sep = if shown.has_query() { '&' } else { '?' };
        write!(f, "Pkcs11Uri({shown}{sep}pin-value=<redacted>)")
    }
}

impl Pkcs11Uri {
    fn has_query(&self) -> bool {
        self.pin_source.is_some()
            || self.pin_value.is_some()
            || self.module_name.is_some()
            || self.module_path.is_some()
            || !self.vendor_query.is_empty()
    }
}
