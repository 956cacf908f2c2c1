//! A small in-process mock of the engine: fixed answers, a call log, and a panic in
//! `sign` to prove panics never cross the C ABI.

use std::sync::Mutex;

use cryptoki_sys::*;
use keyward_core::api::{Api, ObjectHandle, SessionHandle};
use keyward_core::types::*;
use keyward_core::{Code, Result};
use zeroize::Zeroizing;

pub(crate) const SESSION: SessionHandle = 7;

#[derive(Default)]
pub(crate) struct Mock {
    pub(crate) calls: Mutex<Vec<String>>,
}

impl Mock {
    fn check(&self, session: SessionHandle) -> Result<()> {
        if session == SESSION {
            Ok(())
        } else {
            Err(Code::SessionHandleInvalid.err("mock"))
        }
    }
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
}

/// The output convention for an answer of `n` bytes (0x11 each).
fn sized(cap: OutCap, n: usize) -> Output {
    match cap {
        None => Output::Len(n),
        Some(c) if c < n => Output::TooSmall(n),
        Some(_) => Output::Data(Zeroizing::new(vec![0x11; n])),
    }
}

fn token_info() -> TokenInfo {
    TokenInfo {
        label: "mock token".into(),
        manufacturer: "Keyward".into(),
        model: "soft".into(),
        serial: "0123456789abcdef0123".into(),
        flags: CKF_TOKEN_INITIALIZED,
        max_session_count: CK_EFFECTIVELY_INFINITE,
        session_count: 0,
        max_rw_session_count: CK_EFFECTIVELY_INFINITE,
        rw_session_count: 0,
        max_pin_len: 64,
        min_pin_len: 4,
        total_public_memory: CK_UNAVAILABLE_INFORMATION,
        free_public_memory: CK_UNAVAILABLE_INFORMATION,
        total_private_memory: CK_UNAVAILABLE_INFORMATION,
        free_private_memory: CK_UNAVAILABLE_INFORMATION,
        hardware_version: (0, 1),
        firmware_version: (0, 1),
        utc_time: String::new(),
    }
}

impl Api for Mock {
    fn init_token(&self, _slot: CK_SLOT_ID, _so_pin: &[u8], _label: &[u8; 32]) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn slot_list(&self, _token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
        Ok(vec![1])
    }
    fn slot_info(&self, _slot: CK_SLOT_ID) -> Result<SlotInfo> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn token_info(&self, slot: CK_SLOT_ID) -> Result<TokenInfo> {
        if slot != 1 {
            return Err(Code::SlotIdInvalid.err("mock"));
        }
        Ok(token_info())
    }
    fn mechanism_list(&self, _slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn mechanism_info(&self, _slot: CK_SLOT_ID, _mech: CK_MECHANISM_TYPE) -> Result<MechanismInfo> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn init_pin(&self, _session: SessionHandle, _pin: &[u8]) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn set_pin(&self, _session: SessionHandle, _old_pin: &[u8], _new_pin: &[u8]) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn open_session(&self, slot: CK_SLOT_ID, _flags: CK_FLAGS) -> Result<SessionHandle> {
        if slot != 1 {
            return Err(Code::SlotIdInvalid.err("mock"));
        }
        Ok(SESSION)
    }
    fn close_session(&self, session: SessionHandle) -> Result<()> {
        self.check(session)
    }
    fn close_all_sessions(&self, _slot: CK_SLOT_ID) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn session_info(&self, session: SessionHandle) -> Result<SessionInfo> {
        self.check(session)?;
        Ok(SessionInfo {
            slot: 1,
            state: CKS_RW_PUBLIC_SESSION,
            flags: CKF_SERIAL_SESSION | CKF_RW_SESSION,
            device_error: 0,
        })
    }
    fn session_cancel(&self, _session: SessionHandle, _flags: CK_FLAGS) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn get_operation_state(&self, _session: SessionHandle) -> Result<Vec<u8>> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn set_operation_state(
        &self,
        _session: SessionHandle,
        _state: &[u8],
        _encryption_key: ObjectHandle,
        _authentication_key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn login(&self, session: SessionHandle, user: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        self.check(session)?;
        self.log(format!("login {user} {}", pin.len()));
        Ok(())
    }
    fn login_user(
        &self,
        _session: SessionHandle,
        _user: CK_USER_TYPE,
        _pin: &[u8],
        _username: &[u8],
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn logout(&self, _session: SessionHandle) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn create_object(
        &self,
        session: SessionHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        self.check(session)?;
        self.log(format!("create {template:?}"));
        Ok(42)
    }
    fn copy_object(
        &self,
        _session: SessionHandle,
        _object: ObjectHandle,
        _template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn destroy_object(&self, _session: SessionHandle, _object: ObjectHandle) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn object_size(&self, _session: SessionHandle, _object: ObjectHandle) -> Result<CK_ULONG> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn get_attribute_value(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttrResult>> {
        self.check(session)?;
        if object != 42 {
            return Err(Code::ObjectHandleInvalid.err("mock"));
        }
        Ok(types
            .iter()
            .map(|t| match *t {
                CKA_LABEL => AttrResult::Value(AttrValue::bytes(b"key".to_vec())),
                CKA_VALUE => AttrResult::Sensitive,
                _ => AttrResult::Invalid,
            })
            .collect())
    }
    fn set_attribute_value(
        &self,
        _session: SessionHandle,
        _object: ObjectHandle,
        _template: Vec<Attribute>,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn find_objects_init(&self, _session: SessionHandle, _template: Vec<Attribute>) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn find_objects(&self, session: SessionHandle, max: usize) -> Result<Vec<ObjectHandle>> {
        self.check(session)?;
        Ok([1, 2, 3].into_iter().take(max).collect())
    }
    fn find_objects_final(&self, _session: SessionHandle) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn encrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.check(session)?;
        self.log(format!(
            "encrypt_init {:#x} {:?} {key}",
            mech.mech, mech.params
        ));
        Ok(())
    }
    fn encrypt(&self, session: SessionHandle, _data: &[u8], cap: OutCap) -> Result<Output> {
        self.check(session)?;
        Ok(sized(cap, 10))
    }
    fn encrypt_update(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output> {
        self.check(session)?;
        Ok(sized(cap, data.len()))
    }
    fn encrypt_final(&self, _session: SessionHandle, _cap: OutCap) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn decrypt_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn decrypt(&self, _session: SessionHandle, _data: &[u8], _cap: OutCap) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn decrypt_update(
        &self,
        _session: SessionHandle,
        _data: &[u8],
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn decrypt_final(&self, _session: SessionHandle, _cap: OutCap) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn digest_init(&self, _session: SessionHandle, _mech: &Mechanism) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn digest(&self, _session: SessionHandle, _data: &[u8], _cap: OutCap) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn digest_update(&self, session: SessionHandle, data: &[u8]) -> Result<()> {
        self.check(session)?;
        self.log(format!("digest_update {}", data.len()));
        Ok(())
    }
    fn digest_key(&self, _session: SessionHandle, _key: ObjectHandle) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn digest_final(&self, _session: SessionHandle, _cap: OutCap) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn sign_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn sign(&self, session: SessionHandle, _data: &[u8], _cap: OutCap) -> Result<Output> {
        self.check(session)?;
        panic!("mock engine failure")
    }
    fn sign_update(&self, _session: SessionHandle, _data: &[u8]) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn sign_final(&self, _session: SessionHandle, _cap: OutCap) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn sign_recover_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn sign_recover(&self, _session: SessionHandle, _data: &[u8], _cap: OutCap) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify(&self, _session: SessionHandle, _data: &[u8], _signature: &[u8]) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify_update(&self, _session: SessionHandle, _data: &[u8]) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify_final(&self, _session: SessionHandle, _signature: &[u8]) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify_recover_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify_recover(
        &self,
        _session: SessionHandle,
        _signature: &[u8],
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn generate_key(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn generate_key_pair(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _public_template: Vec<Attribute>,
        _private_template: Vec<Attribute>,
    ) -> Result<(ObjectHandle, ObjectHandle)> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn wrap_key(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _wrapping_key: ObjectHandle,
        _key: ObjectHandle,
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn unwrap_key(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _unwrapping_key: ObjectHandle,
        _wrapped: &[u8],
        _template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn derive_key(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _base_key: ObjectHandle,
        _template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn seed_random(&self, _session: SessionHandle, _seed: &[u8]) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn generate_random(&self, session: SessionHandle, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        self.check(session)?;
        Ok(Zeroizing::new(vec![0x5A; len]))
    }
    fn message_encrypt_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn encrypt_message(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _aad: &[u8],
        _plaintext: &[u8],
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn encrypt_message_begin(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _aad: &[u8],
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn encrypt_message_next(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _part: &[u8],
        _last: bool,
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn message_encrypt_final(&self, _session: SessionHandle) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn message_decrypt_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn decrypt_message(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _aad: &[u8],
        _ciphertext: &[u8],
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn decrypt_message_begin(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _aad: &[u8],
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn decrypt_message_next(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _part: &[u8],
        _last: bool,
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn message_decrypt_final(&self, _session: SessionHandle) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn message_sign_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn sign_message(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _data: &[u8],
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn sign_message_begin(&self, _session: SessionHandle, _params: &mut MechParams) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn sign_message_next(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _data: &[u8],
        _last: bool,
        _cap: OutCap,
    ) -> Result<Output> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn message_sign_final(&self, _session: SessionHandle) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn message_verify_init(
        &self,
        _session: SessionHandle,
        _mech: &Mechanism,
        _key: ObjectHandle,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify_message(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _data: &[u8],
        _signature: &[u8],
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify_message_begin(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn verify_message_next(
        &self,
        _session: SessionHandle,
        _params: &mut MechParams,
        _data: &[u8],
        _signature: Option<&[u8]>,
    ) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
    fn message_verify_final(&self, _session: SessionHandle) -> Result<()> {
        Err(Code::FunctionNotSupported.err("mock"))
    }
}
