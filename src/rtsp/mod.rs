//! The recorder's side of RTSP (RFC 2326), through retina: opening a session and choosing the
//! camera's streams.

pub(crate) mod connect;
pub(crate) mod select;
