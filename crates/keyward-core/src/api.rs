//! The PKCS#11 operations of one application, with Rust types.
//!
//! One [`Api`] value is one PKCS#11 application (a process in embedded mode, a connection in
//! daemon mode): its sessions, handles and login state belong to it alone. The C ABI layer and
//! the daemon call only this trait, so embedded and daemon mode differ in one place. Functions
//! follow the spec's names and return codes; argument checks that need the C layout (NULL
//! pointers, lengths) happen in the ABI layer before a call reaches this trait.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::Result;
use crate::types::*;

/// Handle of a session, unique within the application, never 0.
pub type SessionHandle = CK_SESSION_HANDLE;
/// Handle of an object, stable for the life of the application, never 0.
pub type ObjectHandle = CK_OBJECT_HANDLE;

/// The PKCS#11 3.0 function set of one application.
pub trait Api: Send + Sync {
    // ---- slots and tokens (PKCS#11 3.0 §5.5) ----
    /// C_GetSlotList.
    fn slot_list(&self, token_present: bool) -> Result<Vec<CK_SLOT_ID>>;
    /// C_GetSlotInfo.
    fn slot_info(&self, slot: CK_SLOT_ID) -> Result<SlotInfo>;
    /// C_GetTokenInfo.
    fn token_info(&self, slot: CK_SLOT_ID) -> Result<TokenInfo>;
    /// C_GetMechanismList.
    fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>>;
    /// C_GetMechanismInfo.
    fn mechanism_info(&self, slot: CK_SLOT_ID, mech: CK_MECHANISM_TYPE) -> Result<MechanismInfo>;
    /// C_InitToken; `label` is the 32-byte blank-padded label.
    fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()>;
    /// C_InitPIN.
    fn init_pin(&self, session: SessionHandle, pin: &[u8]) -> Result<()>;
    /// C_SetPIN.
    fn set_pin(&self, session: SessionHandle, old_pin: &[u8], new_pin: &[u8]) -> Result<()>;

    // ---- sessions (§5.6) ----
    /// C_OpenSession (notification callbacks are not used by the engine).
    fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<SessionHandle>;
    /// C_CloseSession.
    fn close_session(&self, session: SessionHandle) -> Result<()>;
    /// C_CloseAllSessions.
    fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()>;
    /// C_GetSessionInfo.
    fn session_info(&self, session: SessionHandle) -> Result<SessionInfo>;
    /// C_SessionCancel: cancel the active operations named by `flags` (CKF_ENCRYPT, ...).
    fn session_cancel(&self, session: SessionHandle, flags: CK_FLAGS) -> Result<()>;
    /// C_GetOperationState.
    fn get_operation_state(&self, session: SessionHandle) -> Result<Vec<u8>>;
    /// C_SetOperationState.
    fn set_operation_state(
        &self,
        session: SessionHandle,
        state: &[u8],
        encryption_key: ObjectHandle,
        authentication_key: ObjectHandle,
    ) -> Result<()>;
    /// C_Login.
    fn login(&self, session: SessionHandle, user: CK_USER_TYPE, pin: &[u8]) -> Result<()>;
    /// C_LoginUser.
    fn login_user(
        &self,
        session: SessionHandle,
        user: CK_USER_TYPE,
        pin: &[u8],
        username: &[u8],
    ) -> Result<()>;
    /// C_Logout.
    fn logout(&self, session: SessionHandle) -> Result<()>;

    // ---- objects (§5.7) ----
    /// C_CreateObject.
    fn create_object(
        &self,
        session: SessionHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle>;
    /// C_CopyObject.
    fn copy_object(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle>;
    /// C_DestroyObject.
    fn destroy_object(&self, session: SessionHandle, object: ObjectHandle) -> Result<()>;
    /// C_GetObjectSize.
    fn object_size(&self, session: SessionHandle, object: ObjectHandle) -> Result<CK_ULONG>;
    /// C_GetAttributeValue: one result per requested type, in order. Errors that concern the
    /// whole call (session, handle) are `Err`; per-attribute outcomes are in the vector.
    fn get_attribute_value(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttrResult>>;
    /// C_SetAttributeValue (all or nothing).
    fn set_attribute_value(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<()>;
    /// C_FindObjectsInit.
    fn find_objects_init(&self, session: SessionHandle, template: Vec<Attribute>) -> Result<()>;
    /// C_FindObjects: at most `max` handles.
    fn find_objects(&self, session: SessionHandle, max: usize) -> Result<Vec<ObjectHandle>>;
    /// C_FindObjectsFinal.
    fn find_objects_final(&self, session: SessionHandle) -> Result<()>;

    // ---- encryption and decryption (§5.8, §5.9) ----
    /// C_EncryptInit.
    fn encrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_Encrypt.
    fn encrypt(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output>;
    /// C_EncryptUpdate.
    fn encrypt_update(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output>;
    /// C_EncryptFinal.
    fn encrypt_final(&self, session: SessionHandle, cap: OutCap) -> Result<Output>;
    /// C_DecryptInit.
    fn decrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_Decrypt.
    fn decrypt(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output>;
    /// C_DecryptUpdate.
    fn decrypt_update(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output>;
    /// C_DecryptFinal.
    fn decrypt_final(&self, session: SessionHandle, cap: OutCap) -> Result<Output>;

    // ---- digests (§5.10) ----
    /// C_DigestInit.
    fn digest_init(&self, session: SessionHandle, mech: &Mechanism) -> Result<()>;
    /// C_Digest.
    fn digest(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output>;
    /// C_DigestUpdate.
    fn digest_update(&self, session: SessionHandle, data: &[u8]) -> Result<()>;
    /// C_DigestKey.
    fn digest_key(&self, session: SessionHandle, key: ObjectHandle) -> Result<()>;
    /// C_DigestFinal.
    fn digest_final(&self, session: SessionHandle, cap: OutCap) -> Result<Output>;

    // ---- signatures and MACs (§5.11, §5.12) ----
    /// C_SignInit.
    fn sign_init(&self, session: SessionHandle, mech: &Mechanism, key: ObjectHandle) -> Result<()>;
    /// C_Sign.
    fn sign(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output>;
    /// C_SignUpdate.
    fn sign_update(&self, session: SessionHandle, data: &[u8]) -> Result<()>;
    /// C_SignFinal.
    fn sign_final(&self, session: SessionHandle, cap: OutCap) -> Result<Output>;
    /// C_SignRecoverInit.
    fn sign_recover_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_SignRecover.
    fn sign_recover(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output>;
    /// C_VerifyInit.
    fn verify_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_Verify.
    fn verify(&self, session: SessionHandle, data: &[u8], signature: &[u8]) -> Result<()>;
    /// C_VerifyUpdate.
    fn verify_update(&self, session: SessionHandle, data: &[u8]) -> Result<()>;
    /// C_VerifyFinal.
    fn verify_final(&self, session: SessionHandle, signature: &[u8]) -> Result<()>;
    /// C_VerifyRecoverInit.
    fn verify_recover_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_VerifyRecover.
    fn verify_recover(
        &self,
        session: SessionHandle,
        signature: &[u8],
        cap: OutCap,
    ) -> Result<Output>;

    // ---- key management (§5.13) ----
    /// C_GenerateKey.
    fn generate_key(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle>;
    /// C_GenerateKeyPair: (public, private).
    fn generate_key_pair(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        public_template: Vec<Attribute>,
        private_template: Vec<Attribute>,
    ) -> Result<(ObjectHandle, ObjectHandle)>;
    /// C_WrapKey.
    fn wrap_key(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        wrapping_key: ObjectHandle,
        key: ObjectHandle,
        cap: OutCap,
    ) -> Result<Output>;
    /// C_UnwrapKey.
    fn unwrap_key(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        unwrapping_key: ObjectHandle,
        wrapped: &[u8],
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle>;
    /// C_DeriveKey.
    fn derive_key(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        base_key: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle>;

    // ---- random numbers (§5.14) ----
    /// C_SeedRandom.
    fn seed_random(&self, session: SessionHandle, seed: &[u8]) -> Result<()>;
    /// C_GenerateRandom.
    fn generate_random(&self, session: SessionHandle, len: usize) -> Result<Zeroizing<Vec<u8>>>;

    // ---- message-based functions (3.0 §5.15-5.18) ----
    /// C_MessageEncryptInit.
    fn message_encrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_EncryptMessage; `params` is in/out (a generated IV or tag is written back).
    fn encrypt_message(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        aad: &[u8],
        plaintext: &[u8],
        cap: OutCap,
    ) -> Result<Output>;
    /// C_EncryptMessageBegin.
    fn encrypt_message_begin(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        aad: &[u8],
    ) -> Result<()>;
    /// C_EncryptMessageNext; `last` is CKF_END_OF_MESSAGE.
    fn encrypt_message_next(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        part: &[u8],
        last: bool,
        cap: OutCap,
    ) -> Result<Output>;
    /// C_MessageEncryptFinal.
    fn message_encrypt_final(&self, session: SessionHandle) -> Result<()>;
    /// C_MessageDecryptInit.
    fn message_decrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_DecryptMessage.
    fn decrypt_message(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        aad: &[u8],
        ciphertext: &[u8],
        cap: OutCap,
    ) -> Result<Output>;
    /// C_DecryptMessageBegin.
    fn decrypt_message_begin(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        aad: &[u8],
    ) -> Result<()>;
    /// C_DecryptMessageNext.
    fn decrypt_message_next(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        part: &[u8],
        last: bool,
        cap: OutCap,
    ) -> Result<Output>;
    /// C_MessageDecryptFinal.
    fn message_decrypt_final(&self, session: SessionHandle) -> Result<()>;
    /// C_MessageSignInit.
    fn message_sign_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_SignMessage.
    fn sign_message(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        data: &[u8],
        cap: OutCap,
    ) -> Result<Output>;
    /// C_SignMessageBegin.
    fn sign_message_begin(&self, session: SessionHandle, params: &mut MechParams) -> Result<()>;
    /// C_SignMessageNext; `cap` is `Some(0)` and ignored unless `last`.
    fn sign_message_next(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        data: &[u8],
        last: bool,
        cap: OutCap,
    ) -> Result<Output>;
    /// C_MessageSignFinal.
    fn message_sign_final(&self, session: SessionHandle) -> Result<()>;
    /// C_MessageVerifyInit.
    fn message_verify_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()>;
    /// C_VerifyMessage.
    fn verify_message(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        data: &[u8],
        signature: &[u8],
    ) -> Result<()>;
    /// C_VerifyMessageBegin.
    fn verify_message_begin(&self, session: SessionHandle, params: &mut MechParams) -> Result<()>;
    /// C_VerifyMessageNext; `signature` is `Some` on the last part.
    fn verify_message_next(
        &self,
        session: SessionHandle,
        params: &mut MechParams,
        data: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<()>;
    /// C_MessageVerifyFinal.
    fn message_verify_final(&self, session: SessionHandle) -> Result<()>;
}
