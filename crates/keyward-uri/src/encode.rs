//! The character classes of RFC 7512's grammar and the canonical text form of a URI.

use std::fmt::{self, Write};

use crate::Pkcs11Uri;

/// RFC 3986 `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `pk11-res-avail`: reserved characters that delimit nothing inside either component.
fn is_res_avail(b: u8) -> bool {
    matches!(
        b,
        b':' | b'[' | b']' | b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
    )
}

/// `pk11-pchar` without `pct-encoded`: what a path value may hold unencoded. `&` delimits
/// nothing in the path, so it may stay.
pub(crate) fn is_path_char(b: u8) -> bool {
    is_unreserved(b) || is_res_avail(b) || b == b'&'
}

/// `pk11-qchar` without `pct-encoded`: what a query value may hold unencoded (`/`, `?` and `|`
/// keep file names and `pin-source=|command` readable).
pub(crate) fn is_query_char(b: u8) -> bool {
    is_unreserved(b) || is_res_avail(b) || matches!(b, b'/' | b'?' | b'|')
}

/// `pk11-v-attr-nm-char`: the characters of an attribute name.
pub(crate) fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn write_escape(f: &mut fmt::Formatter<'_>, b: u8) -> fmt::Result {
    f.write_char('%')?;
    f.write_char(char::from(HEX[usize::from(b >> 4)]))?;
    f.write_char(char::from(HEX[usize::from(b & 0x0f)]))
}

/// Writes `bytes` with every byte outside `keep` as an uppercase `%XX` escape.
fn write_value(f: &mut fmt::Formatter<'_>, bytes: &[u8], keep: fn(u8) -> bool) -> fmt::Result {
    for &b in bytes {
        if keep(b) {
            f.write_char(char::from(b))?;
        } else {
            write_escape(f, b)?;
        }
    }
    Ok(())
}

/// Writes the `name=value` pairs of one component, each preceded by `sep` except the first,
/// which is preceded by `first` (nothing for the path, which follows "pkcs11:" directly).
struct Component<'a, 'f> {
    f: &'a mut fmt::Formatter<'f>,
    first: Option<char>,
    sep: char,
    started: bool,
    keep: fn(u8) -> bool,
}

impl<'a, 'f> Component<'a, 'f> {
    fn new(
        f: &'a mut fmt::Formatter<'f>,
        first: Option<char>,
        sep: char,
        keep: fn(u8) -> bool,
    ) -> Self {
        Component {
            f,
            first,
            sep,
            started: false,
            keep,
        }
    }

    fn name(&mut self, name: &str) -> fmt::Result {
        let lead = if self.started {
            Some(self.sep)
        } else {
            self.first
        };
        self.started = true;
        if let Some(c) = lead {
            self.f.write_char(c)?;
        }
        self.f.write_str(name)?;
        self.f.write_char('=')
    }

    /// A text value, escaped where the component's grammar requires.
    fn text(&mut self, name: &str, value: Option<&str>) -> fmt::Result {
        let Some(v) = value else { return Ok(()) };
        self.name(name)?;
        write_value(self.f, v.as_bytes(), self.keep)
    }

    /// A value whose text never needs escaping (numbers, type names).
    fn plain(&mut self, name: &str, value: Option<impl fmt::Display>) -> fmt::Result {
        let Some(v) = value else { return Ok(()) };
        self.name(name)?;
        write!(self.f, "{v}")
    }

    /// Bytes, every one escaped: `id` is binary and unambiguous only that way.
    fn escaped(&mut self, name: &str, value: Option<&[u8]>) -> fmt::Result {
        let Some(v) = value else { return Ok(()) };
        self.name(name)?;
        v.iter().try_for_each(|&b| write_escape(self.f, b))
    }
}

/// The canonical form: RFC 7512's attribute order, then vendor attributes as given.
pub(crate) fn write_uri(uri: &Pkcs11Uri, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("pkcs11:")?;
    let mut path = Component::new(f, None, ';', is_path_char);
    path.text("token", uri.token.as_deref())?;
    path.text("manufacturer", uri.manufacturer.as_deref())?;
    path.text("serial", uri.serial.as_deref())?;
    path.text("model", uri.model.as_deref())?;
    path.text("library-manufacturer", uri.library_manufacturer.as_deref())?;
    path.text("library-description", uri.library_description.as_deref())?;
    path.plain(
        "library-version",
        uri.library_version
            .map(|(major, minor)| format!("{major}.{minor}")),
    )?;
    path.text("object", uri.object.as_deref())?;
    path.plain("type", uri.object_type.map(|t| t.as_str()))?;
    path.escaped("id", uri.id.as_deref())?;
    path.text("slot-description", uri.slot_description.as_deref())?;
    path.text("slot-manufacturer", uri.slot_manufacturer.as_deref())?;
    path.plain("slot-id", uri.slot_id)?;
    for (name, value) in &uri.vendor_path {
        path.text(name, Some(value))?;
    }

    let mut query = Component::new(path.f, Some('?'), '&', is_query_char);
    query.text("pin-source", uri.pin_source.as_deref())?;
    query.text("pin-value", uri.pin_value.as_deref().map(String::as_str))?;
    query.text("module-name", uri.module_name.as_deref())?;
    query.text("module-path", uri.module_path.as_deref())?;
    for (name, value) in &uri.vendor_query {
        query.text(name, Some(value))?;
    }
    Ok(())
}
