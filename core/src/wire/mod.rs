//! The MySQL client/server protocol, both directions, as pure functions over byte slices.
//!
//! Nothing here does I/O: decoders take a payload slice, encoders append to a caller-owned
//! buffer. Malformed input is always a [`codec::DecodeError`], never a panic.

pub mod auth;
pub mod binary;
pub mod codec;
pub mod column;
pub mod consts;
pub mod generic;
pub mod handshake;
pub mod packet;
pub mod value;

pub use codec::{DecodeError, Reader};
pub use column::ColumnDef;
pub use consts::ColumnType;
pub use generic::OkInfo;
pub use packet::{Packet, PacketDecoder, PacketOut};
pub use value::Value;
