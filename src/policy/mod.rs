//! Policies a verified key must also pass: the space it is bound to, and the scopes a
//! route requires.

pub(crate) mod scope;
pub(crate) mod space;

pub use scope::{RequireScopeFuture, RequireScopeLayer, RequireScopeService};
pub use space::SpaceResolver;
