//! The BGP speaker: a supervised `gobgpd` child, configured and driven over
//! GoBGP's gRPC API. BGP itself is gobgpd's job; this module is its controller.

pub mod api;
pub mod client;
pub mod path;
pub mod process;
pub mod speaker;

pub use client::{BgpClient, Error};
