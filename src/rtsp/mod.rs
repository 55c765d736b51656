//! The recorder's side of RTSP (RFC 2326), through retina: a bounded first look at the camera,
//! opening a session, choosing the camera's streams, working around what real cameras and
//! relays do, and saying retina's errors as sentences.

pub(crate) mod connect;
mod first_look;
pub mod retina_messages;
pub(crate) mod select;
pub mod tls;
pub mod workarounds;
