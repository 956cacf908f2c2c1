//! Tests: every call and answer through the codec and over a socket, framing faults, lost
//! connections, overlapping calls, and a real engine driven over the wire.

use cryptoki_sys::*;
use keyward_core::types::*;
use zeroize::Zeroizing;

use crate::wire::Bytes;

/// A representative value of each wire type, for the generated per-variant tests.
pub(crate) trait Sample {
    fn sample() -> Self;
}

impl Sample for () {
    fn sample() {}
}
impl Sample for bool {
    fn sample() -> bool {
        true
    }
}
impl Sample for CK_ULONG {
    fn sample() -> CK_ULONG {
        0x8000_0001
    }
}
impl Sample for usize {
    fn sample() -> usize {
        300
    }
}
impl Sample for Option<usize> {
    fn sample() -> Option<usize> {
        Some(4096)
    }
}
impl Sample for [u8; 32] {
    fn sample() -> [u8; 32] {
        *b"label with blanks                "
            .first_chunk()
            .unwrap_or(&[b' '; 32])
    }
}
impl Sample for Bytes {
    fn sample() -> Bytes {
        Bytes::from(&b"\x00\x01secret\xff"[..])
    }
}
impl Sample for Option<Bytes> {
    fn sample() -> Option<Bytes> {
        Some(Bytes::sample())
    }
}
impl Sample for Vec<u8> {
    fn sample() -> Vec<u8> {
        vec![7; 40]
    }
}
impl Sample for Zeroizing<Vec<u8>> {
    fn sample() -> Zeroizing<Vec<u8>> {
        Zeroizing::new(vec![0xa5; 33])
    }
}
impl Sample for Vec<CK_ULONG> {
    fn sample() -> Vec<CK_ULONG> {
        vec![1, CKM_ECDSA, CK_ULONG::MAX]
    }
}
impl Sample for (CK_ULONG, CK_ULONG) {
    fn sample() -> (CK_ULONG, CK_ULONG) {
        (0x11, 0x12)
    }
}
impl Sample for Vec<Attribute> {
    fn sample() -> Vec<Attribute> {
        vec![
            Attribute::bool(CKA_TOKEN, true),
            Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attribute::bytes(CKA_VALUE, vec![1, 2, 3]),
            Attribute {
                ty: CKA_WRAP_TEMPLATE,
                value: AttrValue::Template(vec![
                    Attribute::bool(CKA_SENSITIVE, false),
                    Attribute {
                        ty: CKA_DERIVE_TEMPLATE,
                        value: AttrValue::Template(vec![Attribute::bytes(CKA_LABEL, "x")]),
                    },
                ]),
            },
            Attribute {
                ty: CKA_ALLOWED_MECHANISMS,
                value: AttrValue::Mechanisms(vec![CKM_AES_GCM, CKM_SHA256_HMAC]),
            },
        ]
    }
}
impl Sample for Vec<AttrResult> {
    fn sample() -> Vec<AttrResult> {
        vec![
            AttrResult::Value(AttrValue::bytes(vec![9; 20])),
            AttrResult::Sensitive,
            AttrResult::Invalid,
            AttrResult::Value(AttrValue::Ulong(CKK_EC)),
        ]
    }
}
impl Sample for Mechanism {
    fn sample() -> Mechanism {
        Mechanism {
            mech: CKM_AES_GCM,
            params: MechParams::Gcm {
                iv: vec![1; 12],
                iv_bits: 96,
                aad: b"header".to_vec(),
                tag_bits: 128,
            },
        }
    }
}
impl Sample for MechParams {
    fn sample() -> MechParams {
        MechParams::AeadMessage {
            iv: vec![0; 12],
            iv_fixed_bits: 32,
            generator: CKG_GENERATE_COUNTER,
            tag: vec![0; 16],
            data_len: 0,
        }
    }
}
impl Sample for Output {
    fn sample() -> Output {
        Output::Data(Zeroizing::new(b"ciphertext".to_vec()))
    }
}
impl Sample for SlotInfo {
    fn sample() -> SlotInfo {
        SlotInfo {
            description: "slot".into(),
            manufacturer: "keyward".into(),
            flags: CKF_TOKEN_PRESENT,
            hardware_version: (1, 2),
            firmware_version: (3, 4),
        }
    }
}
impl Sample for TokenInfo {
    fn sample() -> TokenInfo {
        TokenInfo {
            label: "token".into(),
            manufacturer: "keyward".into(),
            model: "soft".into(),
            serial: "0123456789abcdef".into(),
            flags: CKF_TOKEN_INITIALIZED | CKF_RNG,
            max_session_count: CK_EFFECTIVELY_INFINITE,
            session_count: 1,
            max_rw_session_count: CK_EFFECTIVELY_INFINITE,
            rw_session_count: 0,
            max_pin_len: 256,
            min_pin_len: 4,
            total_public_memory: CK_UNAVAILABLE_INFORMATION,
            free_public_memory: CK_UNAVAILABLE_INFORMATION,
            total_private_memory: CK_UNAVAILABLE_INFORMATION,
            free_private_memory: CK_UNAVAILABLE_INFORMATION,
            hardware_version: (0, 1),
            firmware_version: (0, 1),
            utc_time: "2025010112000000".into(),
        }
    }
}
impl Sample for SessionInfo {
    fn sample() -> SessionInfo {
        SessionInfo {
            slot: 3,
            state: CKS_RW_USER_FUNCTIONS,
            flags: CKF_RW_SESSION | CKF_SERIAL_SESSION,
            device_error: 0,
        }
    }
}
impl Sample for MechanismInfo {
    fn sample() -> MechanismInfo {
        MechanismInfo {
            min_key_size: 256,
            max_key_size: 521,
            flags: CKF_SIGN | CKF_VERIFY | CKF_EC_F_P,
        }
    }
}

/// What the fake API writes into in/out parameters: different from the sample it receives.
pub(crate) fn changed_params() -> MechParams {
    MechParams::AeadMessage {
        iv: vec![0xee; 12],
        iv_fixed_bits: 32,
        generator: CKG_GENERATE_COUNTER,
        tag: vec![0x77; 16],
        data_len: 0,
    }
}
