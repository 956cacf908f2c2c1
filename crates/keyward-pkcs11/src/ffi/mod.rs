//! The only code that touches caller memory: pointer checks, output buffers, templates and
//! mechanism parameters, plus the panic-catching entry wrapper.

pub(crate) mod entry;
pub(crate) mod mechanism;
pub(crate) mod out;
pub(crate) mod ptr;
pub(crate) mod template;

pub(crate) use entry::{entry, guarded};
