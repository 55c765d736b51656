//! The recorder's side of RTSP (RFC 2326), through retina: a bounded first look at the camera,
//! opening a session, and choosing the camera's streams.

pub(crate) mod connect;
mod first_look;
pub(crate) mod select;
