//! The output: where a recording's bytes go and what the files are called.
//!
//! The writer thread (`writer.rs`) owns the file being written (`file.rs`: `OUT.partial` until
//! it is finished, then `OUT`); `naming.rs` makes default names.

mod file;
pub(crate) mod naming;
mod writer;

pub use file::partial_path;
pub(crate) use file::refuse_existing;
pub use writer::Outcome;
pub(crate) use writer::{Message, SendError, Writer};
