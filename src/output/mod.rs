//! The output: where a recording's bytes go and what the files are called.
//!
//! The [writer](writer) thread owns the [file](file) being written (`OUT.partial` until it is
//! finished, then `OUT`); [naming] makes default names.

mod file;
pub(crate) mod naming;
mod writer;

pub use file::partial_path;
pub(crate) use file::refuse_existing;
pub use writer::Outcome;
pub(crate) use writer::{Message, SendError, Writer};
