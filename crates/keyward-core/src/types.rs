//! Rust-typed PKCS#11 values shared by the engine, the C ABI layer and the daemon protocol.
//!
//! Integer aliases and constants come from cryptoki-sys; no struct here carries a pointer.

use std::collections::BTreeMap;
use std::fmt;

use cryptoki_sys::*;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Code, Result};

/// How an attribute's value is encoded in a CK_ATTRIBUTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// CK_BBOOL: exactly one byte.
    Bool,
    /// CK_ULONG (and its aliases): exactly `sizeof(CK_ULONG)` bytes.
    Ulong,
    /// A byte string (also UTF-8 text, big integers, DER, CK_DATE).
    Bytes,
    /// An array of CK_ATTRIBUTE (CKA_WRAP_TEMPLATE and friends).
    Template,
    /// An array of CK_MECHANISM_TYPE (CKA_ALLOWED_MECHANISMS).
    Mechanisms,
}

/// The encoding of every attribute type the token understands; unknown types are `Bytes`
/// here and refused by the object rules where they matter.
pub fn attr_kind(ty: CK_ATTRIBUTE_TYPE) -> AttrKind {
    match ty {
        CKA_TOKEN
        | CKA_PRIVATE
        | CKA_TRUSTED
        | CKA_SENSITIVE
        | CKA_ENCRYPT
        | CKA_DECRYPT
        | CKA_WRAP
        | CKA_UNWRAP
        | CKA_SIGN
        | CKA_SIGN_RECOVER
        | CKA_VERIFY
        | CKA_VERIFY_RECOVER
        | CKA_DERIVE
        | CKA_EXTRACTABLE
        | CKA_LOCAL
        | CKA_NEVER_EXTRACTABLE
        | CKA_ALWAYS_SENSITIVE
        | CKA_MODIFIABLE
        | CKA_COPYABLE
        | CKA_DESTROYABLE
        | CKA_ALWAYS_AUTHENTICATE
        | CKA_WRAP_WITH_TRUSTED
        | CKA_RESET_ON_INIT
        | CKA_HAS_RESET
        | CKA_COLOR
        | CKA_OTP_USER_FRIENDLY_MODE => AttrKind::Bool,
        CKA_CLASS
        | CKA_KEY_TYPE
        | CKA_CERTIFICATE_TYPE
        | CKA_CERTIFICATE_CATEGORY
        | CKA_JAVA_MIDP_SECURITY_DOMAIN
        | CKA_NAME_HASH_ALGORITHM
        | CKA_MODULUS_BITS
        | CKA_VALUE_BITS
        | CKA_VALUE_LEN
        | CKA_KEY_GEN_MECHANISM
        | CKA_PRIME_BITS
        | CKA_SUB_PRIME_BITS
        | CKA_HW_FEATURE_TYPE
        | CKA_MECHANISM_TYPE
        | CKA_PROFILE_ID
        | CKA_PIXEL_X
        | CKA_PIXEL_Y
        | CKA_RESOLUTION
        | CKA_CHAR_ROWS
        | CKA_CHAR_COLUMNS
        | CKA_BITS_PER_PIXEL => AttrKind::Ulong,
        CKA_WRAP_TEMPLATE | CKA_UNWRAP_TEMPLATE | CKA_DERIVE_TEMPLATE => AttrKind::Template,
        CKA_ALLOWED_MECHANISMS => AttrKind::Mechanisms,
        _ => AttrKind::Bytes,
    }
}

/// An attribute value, decoded by kind.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttrValue {
    /// CK_BBOOL.
    Bool(bool),
    /// CK_ULONG.
    Ulong(CK_ULONG),
    /// Bytes; zeroized on drop because they may be key material.
    Bytes(#[serde(with = "wire_bytes")] Zeroizing<Vec<u8>>),
    /// A nested template.
    Template(#[serde(deserialize_with = "wire_template::deserialize")] Vec<Attribute>),
    /// A list of mechanisms.
    Mechanisms(Vec<CK_MECHANISM_TYPE>),
}

impl AttrValue {
    /// A byte-string value.
    pub fn bytes(b: impl Into<Vec<u8>>) -> AttrValue {
        AttrValue::Bytes(Zeroizing::new(b.into()))
    }
}

/// Values are never printed: they may be secret.
impl fmt::Debug for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Bool(b) => write!(f, "Bool({b})"),
            AttrValue::Ulong(u) => write!(f, "Ulong({u:#x})"),
            AttrValue::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            AttrValue::Template(t) => write!(f, "Template({t:?})"),
            AttrValue::Mechanisms(m) => write!(f, "Mechanisms({m:x?})"),
        }
    }
}

/// One attribute: type and value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// CKA_ type.
    pub ty: CK_ATTRIBUTE_TYPE,
    /// Its value.
    pub value: AttrValue,
}

impl Attribute {
    /// A boolean attribute.
    pub fn bool(ty: CK_ATTRIBUTE_TYPE, v: bool) -> Attribute {
        Attribute {
            ty,
            value: AttrValue::Bool(v),
        }
    }
    /// A CK_ULONG attribute.
    pub fn ulong(ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Attribute {
        Attribute {
            ty,
            value: AttrValue::Ulong(v),
        }
    }
    /// A byte-string attribute.
    pub fn bytes(ty: CK_ATTRIBUTE_TYPE, v: impl Into<Vec<u8>>) -> Attribute {
        Attribute {
            ty,
            value: AttrValue::bytes(v),
        }
    }
}

/// A set of attributes keyed by type: the contents of an object, or a validated template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs(pub BTreeMap<CK_ATTRIBUTE_TYPE, AttrValue>);

impl Attrs {
    /// An empty set.
    pub fn new() -> Attrs {
        Attrs(BTreeMap::new())
    }

    /// Build from a template; a type given twice with different values is
    /// CKR_TEMPLATE_INCONSISTENT, twice with the same value counts once.
    pub fn from_template(template: Vec<Attribute>) -> Result<Attrs> {
        let mut map = BTreeMap::new();
        for a in template {
            if let Some(prev) = map.get(&a.ty) {
                if *prev != a.value {
                    return Err(Code::TemplateInconsistent.err(format!(
                        "attribute {:#x} given twice with different values",
                        a.ty
                    )));
                }
                continue;
            }
            map.insert(a.ty, a.value);
        }
        Ok(Attrs(map))
    }

    /// The value of `ty`, if present.
    pub fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&AttrValue> {
        self.0.get(&ty)
    }
    /// Set `ty`.
    pub fn set(&mut self, ty: CK_ATTRIBUTE_TYPE, v: AttrValue) {
        self.0.insert(ty, v);
    }
    /// Whether `ty` is present.
    pub fn has(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.0.contains_key(&ty)
    }
    /// A boolean attribute; `None` when absent or of another kind.
    pub fn get_bool(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<bool> {
        match self.0.get(&ty) {
            Some(AttrValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    /// A CK_ULONG attribute; `None` when absent or of another kind.
    pub fn get_ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        match self.0.get(&ty) {
            Some(AttrValue::Ulong(u)) => Some(*u),
            _ => None,
        }
    }
    /// A byte-string attribute; `None` when absent or of another kind.
    pub fn get_bytes(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        match self.0.get(&ty) {
            Some(AttrValue::Bytes(b)) => Some(b.as_slice()),
            _ => None,
        }
    }
    /// Iterate over (type, value).
    pub fn iter(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &AttrValue)> {
        self.0.iter().map(|(t, v)| (*t, v))
    }
    /// Whether every attribute of `template` is present here with an equal value (C_FindObjects).
    pub fn matches(&self, template: &Attrs) -> bool {
        template.0.iter().all(|(t, v)| self.0.get(t) == Some(v))
    }
}

/// Mechanism parameters, decoded from the C structures by the ABI layer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MechParams {
    /// No parameter (pParameter NULL, length 0).
    None,
    /// A plain byte string: an IV (CBC, CTR counter block), or data for *_ENCRYPT_DATA.
    Bytes(#[serde(with = "wire_bytes")] Vec<u8>),
    /// CK_GCM_PARAMS.
    Gcm {
        /// Initialisation vector.
        iv: Vec<u8>,
        /// ulIvBits as given (informational; `iv` length rules).
        iv_bits: CK_ULONG,
        /// Additional authenticated data.
        #[serde(with = "wire_bytes")]
        aad: Vec<u8>,
        /// Tag length in bits.
        tag_bits: CK_ULONG,
    },
    /// CK_CCM_PARAMS.
    Ccm {
        /// ulDataLen.
        data_len: CK_ULONG,
        /// Nonce.
        nonce: Vec<u8>,
        /// AAD.
        #[serde(with = "wire_bytes")]
        aad: Vec<u8>,
        /// Tag length in bytes.
        mac_len: CK_ULONG,
    },
    /// CK_RSA_PKCS_PSS_PARAMS.
    Pss {
        /// Hash mechanism.
        hash: CK_MECHANISM_TYPE,
        /// CKG_MGF1_*.
        mgf: CK_ULONG,
        /// Salt length in bytes.
        salt_len: CK_ULONG,
    },
    /// CK_RSA_PKCS_OAEP_PARAMS.
    Oaep {
        /// Hash mechanism.
        hash: CK_MECHANISM_TYPE,
        /// CKG_MGF1_*.
        mgf: CK_ULONG,
        /// The label (CKZ_DATA_SPECIFIED source data), possibly empty.
        label: Vec<u8>,
    },
    /// CK_ECDH1_DERIVE_PARAMS.
    Ecdh {
        /// CKD_*.
        kdf: CK_ULONG,
        /// Shared data for the KDF.
        shared_data: Vec<u8>,
        /// The peer's public value.
        public_data: Vec<u8>,
    },
    /// CK_EDDSA_PARAMS.
    EdDsa {
        /// phFlag.
        prehash: bool,
        /// Context data.
        context: Vec<u8>,
    },
    /// A CK_ULONG parameter (CK_MAC_GENERAL_PARAMS and similar).
    Ulong(CK_ULONG),
    /// Per-message AEAD parameters of the message-based functions (CK_GCM_MESSAGE_PARAMS,
    /// CK_CCM_MESSAGE_PARAMS, CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS). In/out: the engine
    /// may replace `iv` (same length) when it generates the IV, and fills `tag` when
    /// encrypting; the ABI layer copies both back to the caller.
    AeadMessage {
        /// The IV or nonce (its fixed part is input when `generator` is not CKG_NO_GENERATE).
        iv: Vec<u8>,
        /// ulIvFixedBits / ulNonceFixedBits.
        iv_fixed_bits: CK_ULONG,
        /// CKG_* IV generator.
        generator: CK_GENERATOR_FUNCTION,
        /// The tag: input when decrypting, zeroes of the tag length when encrypting.
        tag: Vec<u8>,
        /// CCM's ulDataLen; 0 for the others.
        data_len: CK_ULONG,
    },
    /// CK_HKDF_PARAMS (CKM_HKDF_DERIVE, CKM_HKDF_DATA).
    Hkdf {
        /// bExtract.
        extract: bool,
        /// bExpand.
        expand: bool,
        /// prfHashMechanism (CKM_SHA256 and the like).
        prf: CK_MECHANISM_TYPE,
        /// The salt of the extract step (`HkdfSalt::Null` when `extract` is false).
        salt: HkdfSalt,
        /// pInfo of the expand step.
        info: Vec<u8>,
    },
    /// CK_PKCS5_PBKD2_PARAMS2, or the older CK_PKCS5_PBKD2_PARAMS (CKM_PKCS5_PBKD2).
    Pbkdf2 {
        /// saltSource (CKZ_SALT_SPECIFIED).
        salt_source: CK_ULONG,
        /// The salt.
        salt: Vec<u8>,
        /// The iteration count.
        iterations: CK_ULONG,
        /// CKP_PKCS5_PBKD2_HMAC_*.
        prf: CK_ULONG,
        /// The password; secret.
        #[serde(with = "wire_bytes")]
        password: Zeroizing<Vec<u8>>,
    },
    /// CK_SP800_108_KDF_PARAMS of the counter-mode KDF, without additional derived keys.
    Sp800108 {
        /// prfType (CKM_SHA*_HMAC, CKM_AES_CMAC).
        prf: CK_MECHANISM_TYPE,
        /// The PRF input layout, in order.
        data: Vec<PrfData>,
    },
    /// CK_AES_CBC_ENCRYPT_DATA_PARAMS (CKM_AES_CBC_ENCRYPT_DATA).
    EncryptData {
        /// The 16-byte IV.
        iv: Vec<u8>,
        /// The data to encrypt.
        #[serde(with = "wire_bytes")]
        data: Vec<u8>,
    },
}

/// Where HKDF's extract step takes its salt from (CKF_HKDF_SALT_*).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HkdfSalt {
    /// CKF_HKDF_SALT_NULL: HashLen zero bytes.
    Null,
    /// CKF_HKDF_SALT_DATA: these bytes.
    Data(Vec<u8>),
    /// CKF_HKDF_SALT_KEY: the value of this secret key.
    Key(CK_OBJECT_HANDLE),
}

/// One CK_PRF_DATA_PARAM of an SP 800-108 KDF: a piece of the PRF input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrfData {
    /// CK_SP800_108_ITERATION_VARIABLE with its CK_SP800_108_COUNTER_FORMAT.
    Counter {
        /// bLittleEndian.
        little_endian: bool,
        /// ulWidthInBits.
        bits: CK_ULONG,
    },
    /// CK_SP800_108_DKM_LENGTH with its CK_SP800_108_DKM_LENGTH_FORMAT.
    DkmLength {
        /// CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS or _SUM_OF_SEGMENTS.
        method: CK_ULONG,
        /// bLittleEndian.
        little_endian: bool,
        /// ulWidthInBits.
        bits: CK_ULONG,
    },
    /// CK_SP800_108_BYTE_ARRAY.
    Bytes(Vec<u8>),
    /// CK_SP800_108_KEY_HANDLE: the value of this secret key.
    Key(CK_OBJECT_HANDLE),
}

/// Parameters may hold IVs and labels but not keys; printed by shape only.
impl fmt::Debug for MechParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MechParams::None => f.write_str("None"),
            MechParams::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            MechParams::Gcm {
                iv, tag_bits, aad, ..
            } => {
                write!(
                    f,
                    "Gcm(iv {} bytes, aad {} bytes, tag {tag_bits} bits)",
                    iv.len(),
                    aad.len()
                )
            }
            MechParams::Ccm { nonce, mac_len, .. } => {
                write!(f, "Ccm(nonce {} bytes, mac {mac_len} bytes)", nonce.len())
            }
            MechParams::Pss {
                hash,
                mgf,
                salt_len,
            } => {
                write!(f, "Pss(hash {hash:#x}, mgf {mgf:#x}, salt {salt_len})")
            }
            MechParams::Oaep { hash, mgf, label } => {
                write!(
                    f,
                    "Oaep(hash {hash:#x}, mgf {mgf:#x}, label {} bytes)",
                    label.len()
                )
            }
            MechParams::Ecdh { kdf, .. } => write!(f, "Ecdh(kdf {kdf:#x})"),
            MechParams::EdDsa { prehash, context } => {
                write!(f, "EdDsa(ph {prehash}, ctx {} bytes)", context.len())
            }
            MechParams::Ulong(u) => write!(f, "Ulong({u})"),
            MechParams::AeadMessage { iv, tag, .. } => {
                write!(
                    f,
                    "AeadMessage(iv {} bytes, tag {} bytes)",
                    iv.len(),
                    tag.len()
                )
            }
            MechParams::Hkdf {
                extract,
                expand,
                prf,
                salt,
                info,
            } => {
                let salt = match salt {
                    HkdfSalt::Null => "null".to_string(),
                    HkdfSalt::Data(d) => format!("{} bytes", d.len()),
                    HkdfSalt::Key(h) => format!("key {h}"),
                };
                write!(
                    f,
                    "Hkdf(extract {extract}, expand {expand}, prf {prf:#x}, salt {salt}, info {} bytes)",
                    info.len()
                )
            }
            // Never the password.
            MechParams::Pbkdf2 {
                salt,
                iterations,
                prf,
                ..
            } => write!(
                f,
                "Pbkdf2(prf {prf:#x}, {iterations} iterations, salt {} bytes)",
                salt.len()
            ),
            MechParams::Sp800108 { prf, data } => {
                write!(f, "Sp800108(prf {prf:#x}, {} data params)", data.len())
            }
            MechParams::EncryptData { iv, data } => {
                write!(
                    f,
                    "EncryptData(iv {} bytes, data {} bytes)",
                    iv.len(),
                    data.len()
                )
            }
        }
    }
}

/// A mechanism with its decoded parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mechanism {
    /// CKM_ type.
    pub mech: CK_MECHANISM_TYPE,
    /// Its parameters.
    pub params: MechParams,
}

impl Mechanism {
    /// A mechanism without parameters.
    pub fn new(mech: CK_MECHANISM_TYPE) -> Mechanism {
        Mechanism {
            mech,
            params: MechParams::None,
        }
    }
}

/// The outcome of a call with variable-length output (PKCS#11 §5.2 "Conventions for functions
/// returning output in a variable-length buffer").
#[derive(PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// The caller passed no buffer: this is the length it needs (possibly an upper bound).
    /// The operation stays active.
    Len(usize),
    /// The caller's buffer was too small: this is the exact length needed. The operation stays
    /// active and the same call can be repeated.
    TooSmall(usize),
    /// The output; the operation step is complete.
    Data(#[serde(with = "wire_bytes")] Zeroizing<Vec<u8>>),
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Len(n) => write!(f, "Len({n})"),
            Output::TooSmall(n) => write!(f, "TooSmall({n})"),
            Output::Data(d) => write!(f, "Data(<{} bytes>)", d.len()),
        }
    }
}

/// How much room the caller gave for output: `None` is a NULL buffer (length query).
pub type OutCap = Option<usize>;

/// CK_SLOT_INFO without the C layout; strings are blank-padded by the ABI layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    /// slotDescription.
    pub description: String,
    /// manufacturerID.
    pub manufacturer: String,
    /// CKF_TOKEN_PRESENT etc.
    pub flags: CK_FLAGS,
    /// hardwareVersion (major, minor).
    pub hardware_version: (u8, u8),
    /// firmwareVersion (major, minor).
    pub firmware_version: (u8, u8),
}

/// CK_TOKEN_INFO without the C layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// label (at most 32 bytes).
    pub label: String,
    /// manufacturerID.
    pub manufacturer: String,
    /// model.
    pub model: String,
    /// serialNumber (at most 16 bytes).
    pub serial: String,
    /// CKF_* token flags.
    pub flags: CK_FLAGS,
    /// ulMaxSessionCount (CK_EFFECTIVELY_INFINITE allowed).
    pub max_session_count: CK_ULONG,
    /// ulSessionCount.
    pub session_count: CK_ULONG,
    /// ulMaxRwSessionCount.
    pub max_rw_session_count: CK_ULONG,
    /// ulRwSessionCount.
    pub rw_session_count: CK_ULONG,
    /// ulMaxPinLen.
    pub max_pin_len: CK_ULONG,
    /// ulMinPinLen.
    pub min_pin_len: CK_ULONG,
    /// ulTotalPublicMemory.
    pub total_public_memory: CK_ULONG,
    /// ulFreePublicMemory.
    pub free_public_memory: CK_ULONG,
    /// ulTotalPrivateMemory.
    pub total_private_memory: CK_ULONG,
    /// ulFreePrivateMemory.
    pub free_private_memory: CK_ULONG,
    /// hardwareVersion.
    pub hardware_version: (u8, u8),
    /// firmwareVersion.
    pub firmware_version: (u8, u8),
    /// utcTime (16 chars, "YYYYMMDDhhmmss00"), blank if the token has no clock.
    pub utc_time: String,
}

/// CK_SESSION_INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The slot.
    pub slot: CK_SLOT_ID,
    /// CKS_* state.
    pub state: CK_STATE,
    /// CKF_RW_SESSION | CKF_SERIAL_SESSION.
    pub flags: CK_FLAGS,
    /// ulDeviceError.
    pub device_error: CK_ULONG,
}

/// CK_MECHANISM_INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MechanismInfo {
    /// ulMinKeySize (bits or bytes as the mechanism defines).
    pub min_key_size: CK_ULONG,
    /// ulMaxKeySize.
    pub max_key_size: CK_ULONG,
    /// CKF_* mechanism flags.
    pub flags: CK_FLAGS,
}

/// Per-attribute outcome of C_GetAttributeValue; the ABI layer applies the buffer rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttrResult {
    /// The attribute's value.
    Value(AttrValue),
    /// The attribute is sensitive or unextractable (CKR_ATTRIBUTE_SENSITIVE).
    Sensitive,
    /// The object has no such attribute (CKR_ATTRIBUTE_TYPE_INVALID).
    Invalid,
}

/// Serde helpers for byte strings: one bytes value on the wire (a length and the bytes, read
/// with a single copy) instead of a sequence of integers; works for `Vec<u8>` and
/// `Zeroizing<Vec<u8>>`, so a secret is decoded straight into its zeroizing buffer.
pub mod wire_bytes {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Write `v` as one bytes value.
    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v.as_ref())
    }

    /// Read one bytes value (or, from formats without one, a sequence of bytes).
    pub fn deserialize<'de, D: Deserializer<'de>, T: From<Vec<u8>>>(d: D) -> Result<T, D::Error> {
        d.deserialize_byte_buf(BytesVisitor(PhantomData))
    }

    struct BytesVisitor<T>(PhantomData<T>);

    impl<'de, T: From<Vec<u8>>> Visitor<'de> for BytesVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E>(self, v: &[u8]) -> Result<T, E> {
            Ok(T::from(v.to_vec()))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            // Sized up front (bounded) so that the buffer does not move while it fills.
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element::<u8>()? {
                v.push(b);
            }
            Ok(T::from(v))
        }
    }
}

/// Decoding of nested templates with a depth bound: a hostile frame of nested templates must
/// fail to decode, not overflow the decoder's stack.
mod wire_template {
    use std::cell::Cell;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    use super::Attribute;

    /// Deepest nesting of templates inside attribute values accepted from the wire.
    const MAX_DEPTH: u32 = 8;

    thread_local! {
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    struct Level;

    impl Drop for Level {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Attribute>, D::Error> {
        let depth = DEPTH.with(|c| {
            let v = c.get() + 1;
            c.set(v);
            v
        });
        let _level = Level;
        if depth > MAX_DEPTH {
            return Err(D::Error::custom("attribute templates nested too deeply"));
        }
        Vec::<Attribute>::deserialize(d)
    }
}
