//! Rejections: why a request was refused ([`Rejection`]), and the RFC 6750 response each
//! reason gets.

pub(crate) mod rejection;
pub(crate) mod responder;

pub use rejection::{Insufficient, InvalidKey, Rejection};
