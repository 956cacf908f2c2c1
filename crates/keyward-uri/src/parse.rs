//! The RFC 7512 parser: splits the components and their attributes, decodes values, and holds
//! each attribute to its grammar rule, naming the offending part when one breaks it.

use zeroize::Zeroizing;

use crate::encode::{is_name_char, is_path_char, is_query_char};
use crate::{ObjectType, Pkcs11Uri, UriError};

const SCHEME: &str = "pkcs11:";

const PATH_NAMES: [&str; 13] = [
    "token",
    "manufacturer",
    "serial",
    "model",
    "library-manufacturer",
    "library-description",
    "library-version",
    "object",
    "type",
    "id",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
];

const QUERY_NAMES: [&str; 4] = ["pin-source", "pin-value", "module-name", "module-path"];

/// Names longer than this are cut in messages, which stay readable for any input.
const SHOWN_NAME: usize = 40;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Query,
}

impl Part {
    fn word(self) -> &'static str {
        match self {
            Part::Path => "path",
            Part::Query => "query",
        }
    }

    fn keep(self) -> fn(u8) -> bool {
        match self {
            Part::Path => is_path_char,
            Part::Query => is_query_char,
        }
    }
}

/// One `name=value` attribute as written, with where its name and value start in the input.
struct Attr<'a> {
    name: &'a str,
    raw: &'a str,
    at: usize,
    value_at: usize,
    part: Part,
}

/// A name for messages. Only names made of `pk11-v-attr-nm-char` get here, so the text is
/// ASCII and cutting it by bytes is safe.
fn shown(name: &str) -> String {
    match name.get(..SHOWN_NAME) {
        Some(cut) if name.len() > SHOWN_NAME => format!("{cut}..."),
        _ => name.to_owned(),
    }
}

pub(crate) fn parse(input: &str) -> Result<Pkcs11Uri, UriError> {
    let rest = match input.get(..SCHEME.len()) {
        Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => {
            input.get(SCHEME.len()..).unwrap_or_default()
        }
        _ => return Err(UriError::new(0, "the URI must start with 'pkcs11:'")),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };

    let mut uri = Pkcs11Uri::new();
    for attr in split(path, SCHEME.len(), Part::Path)? {
        path_attribute(&mut uri, &attr)?;
    }
    if let Some(query) = query {
        for attr in split(query, SCHEME.len() + path.len() + 1, Part::Query)? {
            query_attribute(&mut uri, &attr)?;
        }
    }
    Ok(uri)
}

/// Splits a component into attributes and checks each name's characters.
fn split(component: &str, base: usize, part: Part) -> Result<Vec<Attr<'_>>, UriError> {
    let mut attrs = Vec::new();
    if component.is_empty() {
        return Ok(attrs);
    }
    let sep = match part {
        Part::Path => ';',
        Part::Query => '&',
    };
    let mut at = base;
    for piece in component.split(sep) {
        let word = part.word();
        if piece.is_empty() {
            return Err(UriError::new(
                at,
                format!("empty {word} attribute (a '{sep}' with nothing on one side)"),
            ));
        }
        // The piece itself is never quoted: it may be a PIN typed in the wrong place.
        let Some((name, raw)) = piece.split_once('=') else {
            return Err(UriError::new(
                at,
                format!("a {word} attribute without '=' (attributes are name=value)"),
            ));
        };
        if name.is_empty() {
            return Err(UriError::new(
                at,
                format!("a {word} attribute with an empty name"),
            ));
        }
        if !name.bytes().all(is_name_char) {
            return Err(UriError::new(
                at,
                format!(
                    "a {word} attribute name with a character other than letters, digits, '-' and '_'"
                ),
            ));
        }
        attrs.push(Attr {
            name,
            raw,
            at,
            value_at: at + name.len() + 1,
            part,
        });
        at += piece.len() + 1;
    }
    Ok(attrs)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// How to write a character that must be escaped, for a message.
fn describe(raw: &str, i: usize) -> String {
    let Some(c) = raw.get(i..).and_then(|s| s.chars().next()) else {
        return "a character".to_owned();
    };
    let mut utf8 = [0u8; 4];
    let escaped: String = c
        .encode_utf8(&mut utf8)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    if c == ' ' {
        format!("a space (write {escaped})")
    } else if c.is_control() {
        format!("control character U+{:04X} (write {escaped})", u32::from(c))
    } else {
        format!("'{c}' (write {escaped})")
    }
}

impl Attr<'_> {
    fn is_secret(&self) -> bool {
        self.part == Part::Query && self.name == "pin-value"
    }

    fn error(&self, message: String) -> UriError {
        UriError::new(self.at, message)
    }

    /// The value with its escapes decoded, after checking every unescaped character against
    /// the component's grammar.
    fn decode(&self) -> Result<Zeroizing<Vec<u8>>, UriError> {
        let keep = self.part.keep();
        let bytes = self.raw.as_bytes();
        let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == b'%' {
                let hi = bytes.get(i + 1).copied().and_then(hex_digit);
                let lo = bytes.get(i + 2).copied().and_then(hex_digit);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(UriError::new(
                        self.value_at + i,
                        format!(
                            "malformed percent-escape in the value of '{}': '%' must be followed by two hex digits",
                            shown(self.name)
                        ),
                    ));
                };
                out.push(hi << 4 | lo);
                i += 3;
            } else if keep(b) {
                out.push(b);
                i += 1;
            } else {
                let what = if self.is_secret() {
                    "a character".to_owned()
                } else {
                    describe(self.raw, i)
                };
                return Err(UriError::new(
                    self.value_at + i,
                    format!(
                        "{what} in the value of {} attribute '{}' must be percent-encoded",
                        self.part.word(),
                        shown(self.name)
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// A text value: decoded, then required to be UTF-8.
    fn text(&self) -> Result<String, UriError> {
        let bytes = self.decode()?;
        std::str::from_utf8(&bytes).map(str::to_owned).map_err(|_| {
            self.error(format!(
                "the value of '{}' is not UTF-8 once decoded",
                shown(self.name)
            ))
        })
    }

    /// A value the grammar writes as literal digits; escapes are not allowed there.
    fn digits(&self) -> Option<&str> {
        (!self.raw.is_empty() && self.raw.bytes().all(|b| b.is_ascii_digit())).then_some(self.raw)
    }

    fn library_version(&self) -> Result<(u8, u8), UriError> {
        let (major, minor) = match self.raw.split_once('.') {
            Some((major, minor)) => (major, Some(minor)),
            None => (self.raw, None),
        };
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u8>().ok())
                .flatten()
        };
        let major = number(major);
        let minor = match minor {
            Some(minor) => number(minor),
            None => Some(0),
        };
        match (major, minor) {
            (Some(major), Some(minor)) => Ok((major, minor)),
            _ => Err(self.error(
                "library-version must be MAJOR or MAJOR.MINOR, decimal numbers from 0 to 255"
                    .to_owned(),
            )),
        }
    }

    fn slot_id(&self) -> Result<u64, UriError> {
        self.digits()
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| {
                self.error("slot-id must be a decimal number that fits in 64 bits".to_owned())
            })
    }

    fn object_type(&self) -> Result<ObjectType, UriError> {
        self.raw.parse::<ObjectType>().map_err(|_| {
            self.error("type must be one of public, private, cert, secret-key or data".to_owned())
        })
    }

    fn twice(&self) -> UriError {
        self.error(format!(
            "{} attribute '{}' given twice",
            self.part.word(),
            shown(self.name)
        ))
    }

    /// Stores a value in a slot that must still be empty.
    fn once<T>(&self, slot: &mut Option<T>, value: T) -> Result<(), UriError> {
        if slot.is_some() {
            return Err(self.twice());
        }
        *slot = Some(value);
        Ok(())
    }

    fn set_text(&self, slot: &mut Option<String>) -> Result<(), UriError> {
        if slot.is_some() {
            return Err(self.twice());
        }
        *slot = Some(self.text()?);
        Ok(())
    }

    /// An attribute name outside this component's standard set: refused when it is the other
    /// component's standard name or a standard name in another case, else a vendor name.
    fn check_unknown(&self) -> Result<(), UriError> {
        let name = self.name;
        let (own, other, other_part, place) = match self.part {
            Part::Path => (&PATH_NAMES[..], &QUERY_NAMES[..], "a query", "after '?'"),
            Part::Query => (&QUERY_NAMES[..], &PATH_NAMES[..], "a path", "before '?'"),
        };
        if other.contains(&name) {
            return Err(self.error(format!(
                "'{name}' is {other_part} attribute; it belongs {place}"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if own.contains(&lower.as_str()) || other.contains(&lower.as_str()) {
            return Err(self.error(format!(
                "attribute names are lowercase: write '{lower}', not '{name}'"
            )));
        }
        Ok(())
    }
}

fn path_attribute(uri: &mut Pkcs11Uri, a: &Attr<'_>) -> Result<(), UriError> {
    match a.name {
        "token" => a.set_text(&mut uri.token),
        "manufacturer" => a.set_text(&mut uri.manufacturer),
        "serial" => a.set_text(&mut uri.serial),
        "model" => a.set_text(&mut uri.model),
        "library-manufacturer" => a.set_text(&mut uri.library_manufacturer),
        "library-description" => a.set_text(&mut uri.library_description),
        "library-version" => a.once(&mut uri.library_version, a.library_version()?),
        "object" => a.set_text(&mut uri.object),
        "type" => a.once(&mut uri.object_type, a.object_type()?),
        "id" => a.once(&mut uri.id, a.decode()?.to_vec()),
        "slot-description" => a.set_text(&mut uri.slot_description),
        "slot-manufacturer" => a.set_text(&mut uri.slot_manufacturer),
        "slot-id" => a.once(&mut uri.slot_id, a.slot_id()?),
        _ => {
            a.check_unknown()?;
            if uri.vendor_path.iter().any(|(n, _)| n == a.name) {
                return Err(a.twice());
            }
            let value = a.text()?;
            uri.vendor_path.push((a.name.to_owned(), value));
            Ok(())
        }
    }
}

fn query_attribute(uri: &mut Pkcs11Uri, a: &Attr<'_>) -> Result<(), UriError> {
    let both_pins = || a.error("pin-source and pin-value must not both be given".to_owned());
    match a.name {
        "pin-source" => {
            if uri.pin_value.is_some() {
                return Err(both_pins());
            }
            a.set_text(&mut uri.pin_source)
        }
        "pin-value" => {
            if uri.pin_source.is_some() {
                return Err(both_pins());
            }
            if uri.pin_value.is_some() {
                return Err(a.twice());
            }
            uri.pin_value = Some(Zeroizing::new(a.text()?));
            Ok(())
        }
        "module-name" | "module-path" => {
            if a.raw.is_empty() {
                return Err(a.error(format!("{} must not be empty", a.name)));
            }
            let slot = if a.name == "module-name" {
                &mut uri.module_name
            } else {
                &mut uri.module_path
            };
            a.set_text(slot)
        }
        _ => {
            a.check_unknown()?;
            let value = a.text()?;
            uri.vendor_query.push((a.name.to_owned(), value));
            Ok(())
        }
    }
}

/// The naming rule for vendor attributes added through a builder: `pk11-v-attr-nm-char`, and
/// no name RFC 7512 defines, in any case.
pub(crate) fn check_vendor_name(name: &str, at: usize) -> Result<(), UriError> {
    if name.is_empty() {
        return Err(UriError::new(at, "a vendor attribute needs a name"));
    }
    if !name.bytes().all(is_name_char) {
        return Err(UriError::new(
            at,
            "a vendor attribute name has only letters, digits, '-' and '_'",
        ));
    }
    let lower = name.to_ascii_lowercase();
    if PATH_NAMES.contains(&lower.as_str()) || QUERY_NAMES.contains(&lower.as_str()) {
        return Err(UriError::new(
            at,
            format!(
                "'{}' is an RFC 7512 attribute, not a vendor one",
                shown(name)
            ),
        ));
    }
    Ok(())
}
