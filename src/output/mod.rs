//! The output: where a recording's bytes go, what the files are called, and what happens to
//! finished ones.
//!
//! The plan (`plan.rs`) is checked before anything connects. The writer thread (`writer.rs`)
//! muxes into the recording's series of files (`series.rs`), each written as `OUT.partial`
//! until finished, then `OUT` (`file.rs`), named (`naming.rs`) plainly or by a strftime template
//! (`template.rs`), or streamed to stdout for OUT `-` (`pipe.rs`); finished files go to the hook
//! (`hook.rs`) and retention (`retention.rs`). A `.partial` a killed recorder left is finished
//! by `repair.rs`; one being written is locked (`flock`), so that nothing repairs it.

mod file;
mod hook;
pub(crate) mod naming;
mod pipe;
mod plan;
mod progress;
pub mod repair;
mod retention;
mod series;
pub(crate) mod template;
mod writer;

pub(crate) use file::link_into_place;
pub use file::partial_path;
pub(crate) use plan::OutputPlan;
pub(crate) use plan::plan;
pub use plan::recordings_dir;
pub use progress::{Progress, Snapshot};
pub use writer::Outcome;
pub(crate) use writer::{Message, SendError, Writer};
