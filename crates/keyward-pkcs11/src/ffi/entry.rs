//! The one wrapper every exported C function runs through: initialisation check, panic
//! containment and the mapping of a `Result` to a CK_RV (STYLE B§3, SECURITY ABI-02).

use std::panic::{AssertUnwindSafe, catch_unwind};

use cryptoki_sys::{CK_RV, CKR_GENERAL_ERROR, CKR_OK};
use keyward_core::api::Api;
use keyward_core::{Code, Result};

use crate::backend;

/// Run `f` with this process's backend. Before C_Initialize (or in a forked child that has not
/// called it again) the result is CKR_CRYPTOKI_NOT_INITIALIZED and `f` does not run.
pub(crate) fn entry(name: &'static str, f: impl FnOnce(&dyn Api) -> Result<()>) -> CK_RV {
    guarded(name, || backend::with(f))
}

/// Run `f` under `catch_unwind`: a panic never crosses the C ABI, it becomes
/// CKR_GENERAL_ERROR with a log line.
pub(crate) fn guarded(name: &'static str, f: impl FnOnce() -> Result<()>) -> CK_RV {
    // AssertUnwindSafe: after a panic we only return an error code; shared engine state is
    // behind locks whose poisoning the engine handles.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            match e.code() {
                Code::GeneralError | Code::DeviceError | Code::FunctionFailed => {
                    tracing::warn!(function = name, rv = e.code().name(), "{}", e.detail());
                }
                _ => tracing::debug!(function = name, rv = e.code().name(), "{}", e.detail()),
            }
            e.rv()
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("non-string panic payload");
            tracing::error!(
                function = name,
                panic = what,
                "internal panic; returning CKR_GENERAL_ERROR"
            );
            CKR_GENERAL_ERROR
        }
    }
}
