//! One module per subcommand: each turns its flags into the library's configs and runs them.

pub(crate) mod camera;
pub(crate) mod demo;
pub(crate) mod docs;
pub(crate) mod probe;
pub(crate) mod record;

pub(crate) mod timing;
