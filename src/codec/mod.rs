//! Codec knowledge, in one place: H.264/H.265 NAL units ([`h26x`]), G.711 (`g711.rs`), and how
//! audio frames become samples (`audio.rs`). Everything above this module asks it rather than
//! looking at bits itself.

pub(crate) mod audio;
pub(crate) mod g711;
pub mod h26x;

pub use h26x::VideoCodec;
